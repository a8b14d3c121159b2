// daemon/tracker_link.hpp — peerd's session with the tracker. Connects (the
// tracker may be down or restart at any time), says hello with the persisted
// peer key, announces every publication, sends heartbeats, answers pings.
// On loss it reconnects with capped exponential backoff plus jitter and
// announces everything again. It keeps what the tracker last said about our
// reachability (the tracker dials our upload address back on each hello and
// on reach_check; docs/protocol.md §7.10). A refused name is kept as the link's error (shown
// by `peerctl status`) and retried, since the other holder may leave.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <random>
#include <string>

#include "common/framed_connection.hpp"
#include "common/log.hpp"
#include "common/net.hpp"
#include "common/uv.hpp"
#include "daemon/catalog.hpp"
#include "proto/messages.hpp"

namespace peershare::peerd {

struct LinkConfig {
    common::Endpoint tracker;   // host may be a name, resolved at each attempt
    std::string name;
    std::string key;
    std::uint16_t port = 0;     // our upload port
    std::string advertise;
};

class TrackerLink {
public:
    using ReplyFn = std::function<void(proto::Result<proto::Envelope>)>;

    TrackerLink(uv_loop_t* loop, const common::Log& log, LinkConfig config, const Catalog& catalog);
    ~TrackerLink();

    void start();
    void stop();

    bool connected() const { return welcomed_; }
    // Called on the loop each time the tracker welcomes us (after the
    // publications are announced again): work that waited for the tracker
    // can go on. One callback; a new one replaces it.
    void on_connected(std::function<void()> callback) { on_connected_ = std::move(callback); }
    // Called on the loop for each `connect_back` the tracker sends (a
    // fetcher wants us to dial it; docs/protocol.md §7.12), already parsed
    // and checked field by field; a malformed one is logged and dropped. One
    // callback; a new one replaces it.
    void on_connect_back(std::function<void(const proto::ConnectBack&)> callback) {
        on_connect_back_ = std::move(callback);
    }
    // Called on the loop for each `relay_offer` the tracker sends (a fetcher
    // wants us to meet it at the relay; docs/protocol.md §7.11), already
    // parsed and checked field by field; a malformed one is logged and
    // dropped. One callback; a new one replaces it.
    void on_relay_offer(std::function<void(const proto::RelayOffer&)> callback) {
        on_relay_offer_ = std::move(callback);
    }
    // Called on the loop each time the tracker sends its verdict on our
    // reachability (after each hello, and for `reach_check`). One callback; a
    // new one replaces it.
    void on_reach_verdict(std::function<void()> callback) { on_reach_verdict_ = std::move(callback); }
    // Whether the tracker runs a relay (welcome.relay; docs/protocol.md §7.11,
    // §15), as it said when it last welcomed us; false while not connected.
    bool tracker_relay() const { return welcomed_ && relay_; }
    const std::string& error() const { return error_; }
    const std::string& observed_address() const { return address_; }
    const LinkConfig& config() const { return config_; }

    // Whether fetchers can reach our upload server, as the tracker last found
    // (nothing while unknown: not connected, or the check still running).
    struct Reach {
        std::optional<bool> reachable;
        std::string reason;
        // The tracker said in its welcome that it checks, and has not
        // answered yet (at most proto::kReachDeadlineMs after the hello).
        bool checking = false;
    };
    const Reach& reach() const { return reach_; }
    // Asks the tracker to check again now; `done` gets its answer (and reach() is updated).
    void check_reach(std::function<void(proto::Result<proto::Reachability>)> done);

    // Announces a publication. While disconnected it is announced on the next
    // connect and `done` (if any) gets success at once; otherwise `done` gets
    // the tracker's answer.
    using AnnounceDone = std::function<void(proto::Result<bool>)>;
    void announce(const Publication& p, AnnounceDone done = nullptr);
    void withdraw(const std::string& name);
    // A request whose reply (or error) comes back to `done`; fails at once when
    // disconnected, and with `unavailable` if the link drops before the reply.
    template <class M>
    void request(const M& message, ReplyFn done) {
        if (!welcomed_) return done(proto::Error{proto::ErrorCode::unavailable, not_connected_message()});
        const auto id = next_id_++;
        pending_.emplace(id, std::move(done));
        conn_->send(message, id);
    }
    template <class M>
    void notify(const M& message) {   // fire and forget; the reply is ignored
        if (welcomed_) conn_->send(message, next_id_++);
    }

private:
    struct Attempt;

    void connect();
    void on_resolved(int status, const sockaddr* addr);
    void on_connected(int status);
    void on_frame(proto::Envelope&& env);
    void on_welcome(const proto::Envelope& env);
    void on_reachability(const proto::Envelope& env);
    void on_closed(const std::string& reason);
    void retry_later();
    void fail_pending(const std::string& why);
    std::string not_connected_message() const;

    uv_loop_t* loop_;
    const common::Log& log_;
    LinkConfig config_;
    const Catalog& catalog_;
    std::unique_ptr<common::FramedConnection> conn_;
    std::shared_ptr<Attempt> attempt_;   // the resolve/connect in progress
    common::Timer retry_timer_;
    common::Timer heartbeat_timer_;
    std::uint64_t backoff_ms_;
    std::mt19937 jitter_;
    bool stopped_ = true;
    bool welcomed_ = false;
    std::string error_ = "connecting";
    std::string address_;
    std::uint64_t next_id_ = 1;
    std::uint64_t hello_id_ = 0;
    std::map<std::uint64_t, ReplyFn> pending_;
    std::function<void()> on_connected_;
    std::function<void(const proto::ConnectBack&)> on_connect_back_;
    std::function<void(const proto::RelayOffer&)> on_relay_offer_;
    std::function<void()> on_reach_verdict_;
    Reach reach_{std::nullopt, "not connected to the tracker"};
    bool relay_ = false;   // welcome.relay
};

}  // namespace peershare::peerd
