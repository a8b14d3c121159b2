// tracker/admin_server.cpp — trackerctl's requests.
#include "tracker/admin_server.hpp"

namespace peershare::tracker {

using proto::ErrorCode;

namespace {
constexpr int kAdminSocketMode = 0660;   // owner and the service's group
}

AdminServer::AdminServer(uv_loop_t* loop, State& state, PeerServer& peers)
    : state_(state),
      peers_(peers),
      server_(loop,
              {"this tracker", "trackerctl", "the first frame must be an admin hello", "no admin hello"},
              {[this] {
                   return proto::Welcome{proto::kProtocolVersion, {}, state_.config.heartbeat_s,
                                         state_.config.peer_timeout_s};
               },
               [this](Session& s, const proto::Envelope& env) { on_request(s, env); },
               [this](std::uint64_t session_id) { on_closed(session_id); }}) {}

AdminServer::~AdminServer() { stop(); }

proto::Result<bool> AdminServer::start() {
    return server_.start(state_.config.admin_socket, kAdminSocketMode,
                         std::uint64_t{state_.config.request_timeout_s} * 1000);
}

void AdminServer::stop() {
    for (const auto& [session_id, token] : follow_tokens_) state_.events.unfollow(token);
    follow_tokens_.clear();
    server_.stop();
}

void AdminServer::on_closed(std::uint64_t session_id) {
    auto it = follow_tokens_.find(session_id);
    if (it == follow_tokens_.end()) return;
    state_.events.unfollow(it->second);
    follow_tokens_.erase(it);
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
                    if (auto* live_session = server_.find(session_id)) {
                        live_session->conn.send(proto::PingResult{host, live, rtt_ms, reason}, id);
                    }
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
    if (m->follow && !follow_tokens_.contains(s.id)) {
        follow_tokens_[s.id] = state_.events.follow(
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
