// tracker/relay/relay_server.hpp — trackerd's optional relay (--relay-listen;
// issue 11, docs/protocol.md §15): a listener of its own on a thread and libuv
// loop of its own, so a busy relay never stalls the peer sessions. It joins
// two outbound connections whose prefaces (proto/relay.hpp) carry the two
// tokens of one pair (tracker/relay/tokens.hpp) and copies bytes both ways.
//
// Limits (tracker/relay/admission.hpp's RelayLimits): circuits open at once
// (a side waiting for its partner holds a place), a rate per circuit and one
// over all circuits (common::TokenBucket on uv_hrtime), a deadline for the
// preface and for the partner, a lifetime and a byte budget per circuit.
// Memory per circuit is bounded: one read of at most common::kReadBufferSize
// bytes in flight per direction; a side is not read again until what it sent
// was written to the other side and paid for (backpressure). Connections that
// have not sent their preface are capped too (kMaxUnjoined).
//
// Thread use: start(), stop(), issue(), take_notices() and counters() are for
// the tracker's loop thread; everything else runs on the relay's thread.
// issue() and take_notices() meet the relay thread under one mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/net.hpp"
#include "proto/errors.hpp"
#include "tracker/relay/admission.hpp"
#include "tracker/relay/tokens.hpp"

namespace peershare::tracker {

// Something the tracker's thread logs (and, for `opened`, records as an event).
struct RelayNotice {
    enum class Kind { opened, closed, refused } kind;
    std::string fetcher;   // empty for a refusal before the token was known
    std::string holder;
    std::string detail;    // in words
};

inline constexpr std::uint64_t kRelayNoticeMs = 250;   // how often the tracker's loop takes the notices

class RelayServer {
public:
    static constexpr std::size_t kMaxUnjoined = 256;   // connections before their preface, besides circuits

    explicit RelayServer(RelayLimits limits);
    ~RelayServer();   // stop()
    RelayServer(const RelayServer&) = delete;
    RelayServer& operator=(const RelayServer&) = delete;

    // Binds `at` (errors as common::listen_tcp) and starts the relay's thread.
    proto::Result<bool> start(const common::Endpoint& at);
    // Closes every connection and the listener and joins the thread; idempotent.
    void stop();
    std::uint16_t port() const { return port_; }

    // A token pair for fetcher → holder (RelayTokens::issue: busy when too many wait).
    proto::Result<RelayTicket> issue(const std::string& fetcher, const std::string& holder);
    // What happened since the last call, oldest first (bounded: kMaxNotices, the oldest dropped).
    std::vector<RelayNotice> take_notices();
    RelayCounts counts() const;

private:
    struct Impl;
    static constexpr std::size_t kMaxNotices = 1'024;
    void notify(RelayNotice notice);   // from the relay's thread

    std::unique_ptr<Impl> impl_;
    std::thread thread_;
    std::uint16_t port_ = 0;

    mutable std::mutex mutex_;   // guards tokens_, notices_ and counts_
    RelayTokens tokens_;
    std::vector<RelayNotice> notices_;
    RelayCounts counts_;
};

}  // namespace peershare::tracker
