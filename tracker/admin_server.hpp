// tracker/admin_server.hpp — the operators' Unix socket (trackerctl): discover,
// ping, peers, files, events (with follow) and stats. Read-only towards the
// index; pings go through the PeerServer.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>

#include "common/framed_connection.hpp"
#include "common/uv.hpp"
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
    struct Session;

    static void on_connection(uv_stream_t* listener, int status);
    void on_frame(Session& s, proto::Envelope&& env);
    void on_request(Session& s, const proto::Envelope& env);
    void on_closed(std::uint64_t session_id);
    void start_ping(Session& s, const proto::Envelope& env);
    void start_events(Session& s, const proto::Envelope& env);
    proto::Stats stats() const;

    uv_loop_t* loop_;
    State& state_;
    PeerServer& peers_;
    std::unique_ptr<common::Pipe> listener_;
    std::uint64_t next_session_ = 1;
    std::unordered_map<std::uint64_t, std::unique_ptr<Session>> sessions_;
};

}  // namespace peershare::tracker
