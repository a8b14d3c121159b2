// common/local_server.cpp — sessions, hellos and the hello deadline of a
// daemon's Unix socket.
#include "common/local_server.hpp"

#include <unistd.h>

#include "common/net.hpp"
#include "proto/limits.hpp"

namespace peershare::common {

using proto::ErrorCode;

LocalServer::LocalServer(uv_loop_t* loop, Greeting greeting, Handlers handlers)
    : loop_(loop), greeting_(std::move(greeting)), handlers_(std::move(handlers)) {}

LocalServer::~LocalServer() { stop(); }

proto::Result<bool> LocalServer::start(const std::string& path, int mode, std::uint64_t frame_deadline_ms) {
    frame_deadline_ms_ = frame_deadline_ms;
    auto listener = listen_unix(loop_, path, mode, on_connection, this);
    if (!listener) return listener.error();
    path_ = path;
    listener_ = std::make_unique<Pipe>(std::move(*listener));
    return true;
}

void LocalServer::stop() {
    if (listener_) {
        listener_.reset();
        unlink(path_.c_str());
    }
    sessions_.clear();   // each connection closes itself without calling back
}

LocalServer::Session* LocalServer::find(std::uint64_t session_id) {
    auto it = sessions_.find(session_id);
    return it == sessions_.end() ? nullptr : it->second.get();
}

void LocalServer::on_connection(uv_stream_t* listener, int status) {
    auto* self = static_cast<LocalServer*>(listener->data);
    if (!self || status < 0) return;
    Pipe client(self->loop_);
    if (uv_accept(listener, client.stream()) != 0) return;
    const auto id = self->next_session_++;
    auto session = std::make_unique<Session>(id, std::move(client), self->loop_);
    Session& s = *session;
    self->sessions_.emplace(id, std::move(session));
    s.hello_timer.get()->data = &s;
    uv_timer_start(
        s.hello_timer.get(),
        [](uv_timer_t* t) {
            auto* late = static_cast<Session*>(t->data);
            if (!late) return;
            late->conn.abort("no hello within " + std::to_string(proto::kHelloTimeoutMs / 1000) + " s");
        },
        proto::kHelloTimeoutMs, 0);
    s.conn.set_frame_deadline(self->frame_deadline_ms_);
    s.conn.start([self, &s](proto::Envelope&& env) { self->on_frame(s, std::move(env)); },
                 [self, id](const std::string&) { self->on_closed(id); });
}

void LocalServer::on_closed(std::uint64_t session_id) {
    auto it = sessions_.find(session_id);
    if (it == sessions_.end()) return;
    sessions_.erase(it);
    if (handlers_.closed) handlers_.closed(session_id);
}

void LocalServer::on_frame(Session& s, proto::Envelope&& env) {
    if (s.greeted) return handlers_.request(s, env);
    on_hello(s, env);
}

void LocalServer::on_hello(Session& s, const proto::Envelope& env) {
    if (env.type == proto::Hello::kType && proto::hello_version(env.body) != proto::kProtocolVersion) {
        s.conn.send_error(ErrorCode::version_mismatch,
                          proto::version_mismatch_message(env.body, greeting_.server, greeting_.client),
                          env.id);
        s.conn.close("protocol version mismatch");
        return;
    }
    auto hello = proto::expect<proto::Hello>(env);
    if (!hello || hello->role != "admin") {
        s.conn.send_error(ErrorCode::bad_request, greeting_.no_hello, env.id);
        s.conn.close(greeting_.no_hello_reason);
        return;
    }
    s.greeted = true;
    s.hello_timer.close();
    s.conn.send(handlers_.welcome(), env.id);
}

}  // namespace peershare::common
