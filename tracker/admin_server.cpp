// tracker/admin_server.cpp — trackerctl's requests.
#include "tracker/admin_server.hpp"

#include <algorithm>
#include <array>
#include <string_view>

#include "tracker/queries.hpp"

namespace peershare::tracker {

using proto::ErrorCode;

namespace {
constexpr int kAdminSocketMode = 0660;   // owner and the service's group

// The types answer() serves. Only these are counted in `requests` (stats,
// /metrics): a type a client made up is answered with an error, not counted,
// so it neither becomes a metric label nor crowds out the real types.
constexpr std::array<std::string_view, 6> kAdminTypes{proto::Discover::kType,  proto::PingPeer::kType,
                                                      proto::ListPeers::kType, proto::Search::kType,
                                                      proto::ListEvents::kType, proto::GetStats::kType};

bool served_here(std::string_view type) {
    return std::find(kAdminTypes.begin(), kAdminTypes.end(), type) != kAdminTypes.end();
}
}  // namespace

AdminServer::AdminServer(uv_loop_t* loop, State& state, PeerServer& peers)
    : state_(state),
      peers_(peers),
      server_(loop,
              {"this tracker", "trackerctl", "the first frame must be an admin hello", "no admin hello"},
              {[this] {
                   return proto::Welcome{proto::kProtocolVersion, {}, state_.config.heartbeat_s,
                                         state_.config.peer_timeout_s, false};
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
    const auto began = uv_hrtime();
    answer(s, env);
    state_.metrics.request_seconds.observe(static_cast<double>(uv_hrtime() - began) / 1e9);
}

void AdminServer::answer(Session& s, const proto::Envelope& env) {
    if (served_here(env.type)) state_.count_request(env.type);
    const auto reject = [&](const proto::Error& e) {
        s.conn.send_error(ErrorCode::bad_request, e.message, env.id);
        s.conn.close("malformed " + env.type);
    };
    if (env.type == proto::Discover::kType) {
        auto m = proto::Discover::from_json(env.body);
        if (!m) return reject(m.error());
        auto reply = peer_files(state_, m->host);
        if (!reply) {
            s.conn.send_error(ErrorCode::not_found, "no live peer named '" + m->host + "'", env.id);
            return;
        }
        s.conn.send_bytes(proto::make_bounded_frame(std::move(*reply), &proto::Files::files, env.id));
    } else if (env.type == proto::PingPeer::kType) {
        start_ping(s, env);
    } else if (env.type == proto::ListPeers::kType) {
        s.conn.send_bytes(proto::make_bounded_frame(live_peers(state_), &proto::Peers::peers, env.id));
    } else if (env.type == proto::Search::kType) {
        auto m = proto::Search::from_json(env.body);
        if (!m) return reject(m.error());
        s.conn.send_bytes(
            proto::make_bounded_frame(search_index(state_, m->text), &proto::IndexReply::entries, env.id));
    } else if (env.type == proto::ListEvents::kType) {
        start_events(s, env);
    } else if (env.type == proto::GetStats::kType) {
        s.conn.send(tracker_stats(state_, peers_.connection_count()), env.id);
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
    s.conn.send_bytes(proto::make_bounded_frame(recent_events(state_), &proto::Events::events, env.id));
    if (m->follow && !follow_tokens_.contains(s.id)) {
        follow_tokens_[s.id] = state_.events.follow(
            [&s, id = env.id](const proto::Event& e) { s.conn.send(proto::EventNotice{e}, id); });
    }
}

}  // namespace peershare::tracker
