// daemon/control_server.cpp — peerctl's requests.
#include "daemon/control_server.hpp"

#include <unistd.h>

#include <set>

#include "common/net.hpp"

namespace peershare::peerd {

using proto::ErrorCode;

namespace {
constexpr int kControlSocketMode = 0600;   // only the owner drives their daemon
}

struct ControlServer::Session {
    Session(std::uint64_t session_id, common::Pipe&& stream) : id(session_id), conn(std::move(stream)) {}
    std::uint64_t id;
    common::FramedConnection conn;
    bool greeted = false;
    std::set<std::uint64_t> transfers;   // fetches to cancel if the session goes
};

ControlServer::ControlServer(uv_loop_t* loop, const common::Log& log, Peer& peer)
    : loop_(loop), log_(log), peer_(peer) {}

ControlServer::~ControlServer() { stop(); }

proto::Result<bool> ControlServer::start(const std::string& socket_path) {
    auto listener = common::listen_unix(loop_, socket_path, kControlSocketMode, on_connection, this);
    if (!listener) return listener.error();
    socket_path_ = socket_path;
    listener_ = std::make_unique<common::Pipe>(std::move(*listener));
    return true;
}

void ControlServer::stop() {
    if (listener_) {
        listener_.reset();
        unlink(socket_path_.c_str());
    }
    sessions_.clear();
}

template <class F>
void ControlServer::with_session(std::uint64_t session_id, F&& send) {
    auto it = sessions_.find(session_id);
    if (it != sessions_.end()) send(*it->second);
}

void ControlServer::on_connection(uv_stream_t* listener, int status) {
    auto* self = static_cast<ControlServer*>(listener->data);
    if (!self || status < 0) return;
    common::Pipe client(self->loop_);
    if (uv_accept(listener, client.stream()) != 0) return;
    const auto id = self->next_session_++;
    auto session = std::make_unique<Session>(id, std::move(client));
    Session& s = *session;
    self->sessions_.emplace(id, std::move(session));
    s.conn.start([self, &s](proto::Envelope&& env) { self->on_frame(s, std::move(env)); },
                 [self, id](const std::string&) { self->on_closed(id); });
}

void ControlServer::on_closed(std::uint64_t session_id) {
    auto it = sessions_.find(session_id);
    if (it == sessions_.end()) return;
    auto transfers = std::move(it->second->transfers);
    sessions_.erase(it);
    for (auto t : transfers) {
        log_.info("fetch cancelled: peerctl went away");
        peer_.cancel_fetch(t);
    }
}

void ControlServer::on_frame(Session& s, proto::Envelope&& env) {
    if (s.greeted) return on_request(s, env);
    if (env.type == proto::Hello::kType && proto::hello_version(env.body) != proto::kProtocolVersion) {
        s.conn.send_error(ErrorCode::version_mismatch, proto::version_mismatch_message(env.body, "this peerd", "peerctl"), env.id);
        s.conn.close("protocol version mismatch");
        return;
    }
    auto hello = proto::expect<proto::Hello>(env);
    if (!hello || hello->role != "admin") {
        s.conn.send_error(ErrorCode::bad_request, "the first frame must be a hello with role admin", env.id);
        s.conn.close("no hello");
        return;
    }
    s.greeted = true;
    s.conn.send(proto::Welcome{proto::kProtocolVersion, {}, 0, 0}, env.id);
}

void ControlServer::on_request(Session& s, const proto::Envelope& env) {
    const auto reject = [&](const proto::Error& e) {
        s.conn.send_error(ErrorCode::bad_request, e.message, env.id);
        s.conn.close("malformed " + env.type);
    };
    const auto reply_error = [&](const proto::Error& e) { s.conn.send_error(e.code, e.message, env.id); };
    if (env.type == proto::PublishFile::kType) {
        auto m = proto::PublishFile::from_json(env.body);
        if (!m) return reject(m.error());
        peer_.publish(m->path, m->name, [this, sid = s.id, id = env.id](proto::Result<proto::Published> r) {
            with_session(sid, [&](Session& live) {
                if (r) live.conn.send(*r, id);
                else live.conn.send_error(r.error().code, r.error().message, id);
            });
        });
    } else if (env.type == proto::UnpublishFile::kType) {
        auto m = proto::UnpublishFile::from_json(env.body);
        if (!m) return reject(m.error());
        auto r = peer_.unpublish(m->name);
        if (!r) return reply_error(r.error());
        s.conn.send(proto::Ok{}, env.id);
    } else if (env.type == proto::ListFiles::kType) {
        peer_.list([this, sid = s.id, id = env.id](proto::Publications files) {
            with_session(sid, [&](Session& live) { live.conn.send(files, id); });
        });
    } else if (env.type == proto::Search::kType) {
        auto m = proto::Search::from_json(env.body);
        if (!m) return reject(m.error());
        peer_.search(m->text, [this, sid = s.id, id = env.id](proto::Result<proto::IndexReply> r) {
            with_session(sid, [&](Session& live) {
                if (r) live.conn.send(*r, id);
                else live.conn.send_error(r.error().code, r.error().message, id);
            });
        });
    } else if (env.type == proto::GetStatus::kType) {
        s.conn.send(peer_.status(), env.id);
    } else if (env.type == proto::FetchFile::kType) {
        start_fetch(s, env);
    } else {
        s.conn.send_error(ErrorCode::bad_request, "unknown message type '" + env.type + "'", env.id);
    }
}

void ControlServer::start_fetch(Session& s, const proto::Envelope& env) {
    auto m = proto::FetchFile::from_json(env.body);
    if (!m) {
        s.conn.send_error(ErrorCode::bad_request, m.error().message, env.id);
        s.conn.close("malformed fetch");
        return;
    }
    const auto sid = s.id;
    const auto id = env.id;
    auto transfer = std::make_shared<std::uint64_t>(0);
    Peer::FetchCallbacks callbacks;
    callbacks.progress = [this, sid, id](const proto::Progress& p) {
        with_session(sid, [&](Session& live) {
            // Progress is advisory: skip it for a reader that is behind.
            if (live.conn.queued_bytes() < 64 * 1024) live.conn.send(p, id);
        });
    };
    callbacks.choices = [this, sid, id, transfer](proto::Choices c) {
        with_session(sid, [&](Session& live) {
            live.transfers.erase(*transfer);
            live.conn.send(c, id);
        });
    };
    callbacks.done = [this, sid, id, transfer](proto::Result<proto::FetchedFile> r) {
        with_session(sid, [&](Session& live) {
            live.transfers.erase(*transfer);
            if (r) live.conn.send(*r, id);
            else live.conn.send_error(r.error().code, r.error().message, id);
        });
    };
    *transfer = peer_.fetch(*m, std::move(callbacks));
    with_session(sid, [&](Session& live) { live.transfers.insert(*transfer); });
}

}  // namespace peershare::peerd
