// tracker/reach_prober.hpp — dials peers back to learn whether fetchers can
// reach them (issue 11; docs/protocol.md §7.10). One check: resolve the host
// (a name only when trackerd --trust-advertise gives one out), refuse the
// addresses nobody may be sent to (common::refused_address), connect to each
// address in turn until one accepts (as a fetcher's curl would), write
// proto::reach_request, read the answer until the peer closes, judge it with
// proto::reach_problem. All of it within proto::kReachDeadlineMs of starting,
// on the loop thread without blocking it (the resolve runs in libuv's pool).
// At most kMaxReachInFlight checks run at once; more wait their turn, so a
// tracker restarted under 10,000 peers does not open 10,000 sockets at once.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/log.hpp"

namespace peershare::tracker {

inline constexpr std::size_t kMaxReachInFlight = 128;

class ReachProber {
public:
    // reachable, and in words why or why not ("answered at 127.0.0.1:4000",
    // "connection refused at 127.0.0.2:4000", "no answer within 2 s at ...").
    using Done = std::function<void(bool reachable, const std::string& reason)>;
    using CheckId = std::uint64_t;

    ReachProber(uv_loop_t* loop, const common::Log& log);
    ~ReachProber();   // abandons every check: no callback runs afterwards
    ReachProber(const ReachProber&) = delete;
    ReachProber& operator=(const ReachProber&) = delete;

    // Checks that `host`:`port` answers the check for `nonce` with `proof`
    // (proto/reach.hpp). `done` runs later on the loop, exactly once, unless
    // the check is cancelled or the prober destroyed first.
    CheckId check(std::string host, std::uint16_t port, std::string nonce, std::string proof, Done done);
    void cancel(CheckId id);   // no callback; unknown or finished ids are ignored
    std::size_t in_flight() const { return running_.size(); }
    std::size_t waiting() const { return waiting_.size(); }

private:
    struct Check;
    void start(std::shared_ptr<Check> check);
    static void on_deadline(uv_timer_t* timer);   // the deadline, or an early failure
    void connect_next(const std::shared_ptr<Check>& check);
    void on_connected(const std::shared_ptr<Check>& check, int status);
    void on_read(Check& check, ssize_t nread, const uv_buf_t* buf);
    void finish(CheckId id, bool reachable, const std::string& reason);
    void start_waiting();

    uv_loop_t* loop_;
    const common::Log& log_;
    CheckId next_id_ = 1;
    std::unordered_map<CheckId, std::shared_ptr<Check>> running_;
    std::deque<std::shared_ptr<Check>> waiting_;
};

}  // namespace peershare::tracker
