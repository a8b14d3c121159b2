// tracker/admin_server.cpp — trackerctl's requests.
#include "tracker/admin_server.hpp"

#include <unistd.h>

namespace peershare::tracker {

using proto::ErrorCode;

namespace {
constexpr int kAdminSocketMode = 0660;   // owner and the service's group
}

struct AdminServer::Session {
    Session(std::uint64_t session_id, common::Pipe&& stream) : id(session_id), conn(std::move(stream)) {}
    std::uint64_t id;
    common::FramedConnection conn;
    bool greeted = false;
    std::optional<std::uint64_t> follow_token;
};

AdminServer::AdminServer(uv_loop_t* loop, State& state, PeerServer& peers)
    : loop_(loop), state_(state), peers_(peers) {}

AdminServer::~AdminServer() { stop(); }

proto::Result<bool> AdminServer::start() {
    auto listener = common::listen_unix(loop_, state_.config.admin_socket, kAdminSocketMode,
                                        on_connection, this);
    if (!listener) return listener.error();
    listener_ = std::make_unique<common::Pipe>(std::move(*listener));
    return true;
}

void AdminServer::stop() {
    if (listener_) {
        listener_.reset();
        unlink(state_.config.admin_socket.c_str());
    }
    for (auto& [id, s] : sessions_) {
        if (s->follow_token) state_.events.unfollow(*s->follow_token);
    }
    sessions_.clear();
}

void AdminServer::on_connection(uv_stream_t* listener, int status) {
    auto* self = static_cast<AdminServer*>(listener->data);
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

void AdminServer::on_closed(std::uint64_t session_id) {
    auto it = sessions_.find(session_id);
    if (it == sessions_.end()) return;
    if (it->second->follow_token) state_.events.unfollow(*it->second->follow_token);
    sessions_.erase(it);
}

void AdminServer::on_frame(Session& s, proto::Envelope&& env) {
    if (s.greeted) return on_request(s, env);
    if (env.type == proto::Hello::kType && proto::hello_version(env.body) != proto::kProtocolVersion) {
        s.conn.send_error(ErrorCode::version_mismatch, proto::version_mismatch_message(env.body, "this tracker", "trackerctl"),
                          env.id);
        s.conn.close("protocol version mismatch");
        return;
    }
    auto hello = proto::expect<proto::Hello>(env);
    if (!hello || hello->role != "admin") {
        s.conn.send_error(ErrorCode::bad_request, "the first frame must be an admin hello", env.id);
        s.conn.close("no admin hello");
        return;
    }
    s.greeted = true;
    s.conn.send(proto::Welcome{proto::kProtocolVersion, {}, state_.config.heartbeat_s,
                               state_.config.peer_timeout_s},
                env.id);
}

void AdminServer::on_request(Session& s, const proto::Envelope& env) {
    state_.count_request(env.type);
    const auto reject = [&](const proto::Error& e) {
        s.conn.send_error(ErrorCode::bad_request, e.message, env.id);
        s.conn.close("malformed " + env.type);
    };
    if (env.type == proto::Discover::kType) {
        auto m = proto::Discover::from_json(env.body);
        if (!m) return reject(m.error());
        auto peer = state_.index.peer_by_name(m->host);
        if (!peer) {
            s.conn.send_error(ErrorCode::not_found, "no live peer named '" + m->host + "'", env.id);
            return;
        }
        proto::Files reply{m->host, {}, false};
        reply.files = state_.index.files_of(*peer, proto::kMaxListedItems, &reply.truncated);
        s.conn.send_bytes(proto::make_bounded_frame(std::move(reply), &proto::Files::files, env.id));
    } else if (env.type == proto::PingPeer::kType) {
        start_ping(s, env);
    } else if (env.type == proto::ListPeers::kType) {
        proto::Peers reply;
        reply.peers = state_.index.peers(proto::kMaxListedItems, &reply.truncated);
        s.conn.send_bytes(proto::make_bounded_frame(std::move(reply), &proto::Peers::peers, env.id));
    } else if (env.type == proto::Search::kType) {
        auto m = proto::Search::from_json(env.body);
        if (!m) return reject(m.error());
        proto::IndexReply reply;
        reply.entries = state_.index.search(m->text, proto::kMaxListedItems, &reply.truncated);
        s.conn.send_bytes(proto::make_bounded_frame(std::move(reply), &proto::IndexReply::entries, env.id));
    } else if (env.type == proto::ListEvents::kType) {
        start_events(s, env);
    } else if (env.type == proto::GetStats::kType) {
        s.conn.send(stats(), env.id);
    } else {
        s.conn.send_error(ErrorCode::bad_request, "unknown message type '" + env.type + "'", env.id);
    }
}

void AdminServer::start_ping(Session& s, const proto::Envelope& env) {
    auto m = proto::PingPeer::from_json(env.body);
    if (!m) {
        s.conn.send_error(ErrorCode::bad_request, m.error().message, env.id);
        s.conn.close("malformed ping_peer");
        return;
    }
    // The admin session may be gone when the answer comes: find it by id then.
    peers_.ping(m->host, m->timeout_ms,
                [this, session_id = s.id, host = m->host, id = env.id](
                    bool live, double rtt_ms, const std::string& reason) {
                    auto it = sessions_.find(session_id);
                    if (it == sessions_.end()) return;
                    it->second->conn.send(proto::PingResult{host, live, rtt_ms, reason}, id);
                });
}

void AdminServer::start_events(Session& s, const proto::Envelope& env) {
    auto m = proto::ListEvents::from_json(env.body);
    if (!m) {
        s.conn.send_error(ErrorCode::bad_request, m.error().message, env.id);
        s.conn.close("malformed list_events");
        return;
    }
    const auto& history = state_.events.history();
    // Newest first, so that trimming to fit a frame drops the oldest.
    proto::Events reply{{history.rbegin(), history.rend()}, false};
    s.conn.send_bytes(proto::make_bounded_frame(std::move(reply), &proto::Events::events, env.id));
    if (m->follow && !s.follow_token) {
        s.follow_token = state_.events.follow(
            [&s, id = env.id](const proto::Event& e) { s.conn.send(proto::EventNotice{e}, id); });
    }
}

proto::Stats AdminServer::stats() const {
    proto::Stats s;
    s.peers = state_.index.peer_count();
    s.files = state_.index.file_count();
    s.names = state_.index.name_count();
    s.connections = peers_.connection_count();
    s.uptime_s = static_cast<std::uint64_t>(std::time(nullptr) - state_.started);
    s.requests = state_.requests;
    return s;
}

}  // namespace peershare::tracker
