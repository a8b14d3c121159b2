// common/local_server.hpp — the Unix-socket server through which a CLI drives
// its daemon (peerctl → peerd's control socket, trackerctl → trackerd's admin
// socket). It binds the socket with its mode, holds one session per
// connection, checks the hello (protocol version, role "admin"), answers it
// with the owner's welcome and hands every later frame to the owner. A client
// that has not completed its hello within proto::kHelloTimeoutMs (the limit of
// the tracker's peer port) is dropped, so connections that never speak cannot
// pile up. Owned by the loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/framed_connection.hpp"
#include "common/uv.hpp"
#include "proto/errors.hpp"

namespace peershare::common {

class LocalServer {
public:
    struct Session {
        Session(std::uint64_t session_id, Pipe&& stream, uv_loop_t* loop)
            : id(session_id), conn(std::move(stream)), hello_timer(loop) {}
        std::uint64_t id;
        FramedConnection conn;
        Timer hello_timer;   // runs until the hello; closed then
        bool greeted = false;
    };

    // The words of the hello checks, in errors and close reasons.
    struct Greeting {
        std::string server;     // "this peerd", in a version mismatch message
        std::string client;     // "peerctl"
        std::string no_hello;   // the bad_request message when the first frame is not an admin hello
        std::string no_hello_reason;   // the close reason then
    };

    struct Handlers {
        std::function<proto::Welcome()> welcome;   // the answer to a good hello
        std::function<void(Session&, const proto::Envelope&)> request;   // every frame after it
        // A session closed, and is gone (not called by stop()).
        std::function<void(std::uint64_t session_id)> closed;
    };

    LocalServer(uv_loop_t* loop, Greeting greeting, Handlers handlers);
    ~LocalServer();
    LocalServer(const LocalServer&) = delete;
    LocalServer& operator=(const LocalServer&) = delete;

    // Binds `path` with `mode` (a stale socket file is replaced). Each frame
    // of a session must arrive whole within `frame_deadline_ms` of its first
    // byte (FramedConnection::set_frame_deadline).
    proto::Result<bool> start(const std::string& path, int mode, std::uint64_t frame_deadline_ms);
    void stop();   // closes every session and removes the socket

    Session* find(std::uint64_t session_id);   // null once it closed

private:
    static void on_connection(uv_stream_t* listener, int status);
    void on_frame(Session& s, proto::Envelope&& env);
    void on_hello(Session& s, const proto::Envelope& env);
    void on_closed(std::uint64_t session_id);

    uv_loop_t* loop_;
    Greeting greeting_;
    Handlers handlers_;
    std::string path_;
    std::uint64_t frame_deadline_ms_ = 0;
    std::unique_ptr<Pipe> listener_;
    std::uint64_t next_session_ = 1;
    std::unordered_map<std::uint64_t, std::unique_ptr<Session>> sessions_;
};

}  // namespace peershare::common
