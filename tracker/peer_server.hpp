// tracker/peer_server.hpp — the peer-facing TCP server: one session per
// connected peer (hello → publish/unpublish/lookup/heartbeat/fetched/search),
// liveness (silent peers and connections that never say hello are dropped),
// pings the tracker sends down a peer's session for `trackerctl ping`, and
// reachability checks (on hello and on reach_check; tracker/reach_prober.hpp)
// whose outcome goes down the session as a `reachability` message; relay
// tickets (relay_request → relay_ticket, relay_offer to the holder) when
// trackerd runs a relay; reverse connections (reverse_request → ok,
// connect_back to the holder; tracker/reverse/reverse_request.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/framed_connection.hpp"
#include "common/net.hpp"
#include "common/uv.hpp"
#include "tracker/reach_prober.hpp"
#include "tracker/state.hpp"

namespace peershare::tracker {

class PeerServer {
public:
    // live, rtt in ms, and why not live, in words ("timeout: no answer", ...).
    using PingCallback = std::function<void(bool live, double rtt_ms, const std::string& reason)>;

    PeerServer(uv_loop_t* loop, State& state);
    ~PeerServer();

    proto::Result<bool> start();
    void stop();   // closes the listener and every session
    std::uint16_t port() const;
    std::size_t connection_count() const { return sessions_.size(); }

    void ping(const std::string& peer_name, std::uint32_t timeout_ms, PingCallback done);

private:
    struct Session;
    struct PendingPing;

    static void on_connection(uv_stream_t* listener, int status);
    void accept_one();
    void on_frame(Session& s, proto::Envelope&& env);
    void on_hello(Session& s, const proto::Envelope& env);
    void on_peer_request(Session& s, const proto::Envelope& env);
    void on_closed(std::uint64_t session_id, const std::string& reason);
    // Starts a check of the peer's address as given out; its outcome goes to
    // the index and down the session (to each waiting reach_check, else unasked).
    void start_reach_check(Session& s);
    void on_reach_check(Session& s, const proto::Envelope& env);
    // A fetcher asks for a relayed connection to a holder (§7.11): a token
    // pair, the holder's down its session, the fetcher's as the reply.
    void on_relay_request(Session& s, const proto::RelayRequest& m, std::uint64_t id);
    // A fetcher asks for a holder to connect back to it (§7.12).
    void on_reverse_request(Session& s, const proto::ReverseRequest& m, std::uint64_t id);
    void reach_checked(std::uint64_t session_id, PeerId peer, bool reachable, const std::string& reason);
    void sweep();
    // result: the metrics label (live, timeout, left); reason: words for the operator.
    void finish_ping(std::uint64_t ping_id, bool live, std::string_view result, const std::string& reason);

    uv_loop_t* loop_;
    State& state_;
    std::unique_ptr<common::Tcp> listener_;
    common::Timer sweep_timer_;
    std::uint64_t next_session_ = 1;
    std::unordered_map<std::uint64_t, std::unique_ptr<Session>> sessions_;
    std::unordered_map<PeerId, std::uint64_t> session_of_peer_;
    std::uint64_t next_ping_ = 1;
    std::unordered_map<std::uint64_t, std::unique_ptr<PendingPing>> pings_;
    ReachProber prober_;
};

}  // namespace peershare::tracker
