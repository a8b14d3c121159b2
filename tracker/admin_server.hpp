// tracker/admin_server.hpp — the operators' Unix socket (trackerctl), hello
// first (common::LocalServer): discover, ping, peers, files, events (with
// follow) and stats. Read-only towards the
// index; pings go through the PeerServer.
#pragma once

#include <cstdint>
#include <unordered_map>

#include "common/local_server.hpp"
#include "tracker/peer_server.hpp"
#include "tracker/state.hpp"

namespace peershare::tracker {

class AdminServer {
public:
    AdminServer(uv_loop_t* loop, State& state, PeerServer& peers);
    ~AdminServer();

    proto::Result<bool> start();   // binds the admin socket, mode 0660
    void stop();                   // closes every session and removes the socket

private:
    using Session = common::LocalServer::Session;

    void on_request(Session& s, const proto::Envelope& env);   // answer(), timed
    void answer(Session& s, const proto::Envelope& env);
    void on_closed(std::uint64_t session_id);
    void start_ping(Session& s, const proto::Envelope& env);
    void start_events(Session& s, const proto::Envelope& env);

    State& state_;
    PeerServer& peers_;
    common::LocalServer server_;
    std::unordered_map<std::uint64_t, std::uint64_t> follow_tokens_;   // by session, for events --follow
};

}  // namespace peershare::tracker
