// daemon/control_server.hpp — peerd's Unix control socket (mode 0600) for
// peerctl: one session per connection, hello first (common::LocalServer), then
// requests that map onto the Peer engine and its transfer registry. A fetch
// that is followed streams progress frames on its session, and closing the
// session (Ctrl-C in peerctl) pauses the transfer (daemon/transfers/).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <unordered_map>

#include "common/local_server.hpp"
#include "daemon/peer.hpp"

namespace peershare::peerd {

class ControlServer {
public:
    ControlServer(uv_loop_t* loop, const common::Log& log, Peer& peer);
    ~ControlServer();

    // Each request must arrive whole within `request_timeout_ms` of its first byte.
    proto::Result<bool> start(const std::string& socket_path, std::uint64_t request_timeout_ms);
    void stop();   // closes every session and removes the socket

private:
    using Session = common::LocalServer::Session;

    void on_request(Session& s, const proto::Envelope& env);
    void on_closed(std::uint64_t session_id);
    void start_fetch(Session& s, const proto::Envelope& env);
    // list_transfers, pause_transfer, resume_transfer, cancel_transfer; false
    // if env is none of them.
    bool on_transfer_request(Session& s, const proto::Envelope& env);
    void answer_limits(Session& s, const proto::Envelope& env);   // get_limits, set_limits
    // Runs `send` on the session if it still exists (replies come back later).
    template <class F>
    void with_session(std::uint64_t session_id, F&& send);

    const common::Log& log_;
    Peer& peer_;
    common::LocalServer server_;
    // Follower tokens of each session's fetches, to let go of (and pause
    // their transfers) if the session goes.
    std::unordered_map<std::uint64_t, std::set<std::uint64_t>> followers_;
};

}  // namespace peershare::peerd
