// tracker/peer_server.cpp — peer sessions, liveness and pings.
#include "tracker/peer_server.hpp"

#include <chrono>

#include "proto/reach.hpp"
#include "tracker/relay/relay_server.hpp"
#include "tracker/reverse/reverse_request.hpp"

namespace peershare::tracker {

using proto::ErrorCode;

namespace {

constexpr std::uint64_t kSweepIntervalMs = 250;
// reach_check: a peer asking again within this long gets the last outcome,
// and at most this many of its requests wait for one check.
constexpr std::uint64_t kReachRecheckMs = 1'000;
constexpr std::size_t kMaxReachWaiters = 4;

std::uint64_t now_ms(uv_loop_t* loop) { return uv_now(loop); }

double elapsed_ms(std::chrono::steady_clock::time_point since) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

struct PeerServer::Session {
    Session(std::uint64_t session_id, common::Tcp&& stream, std::uint64_t now)
        : id(session_id),
          conn(std::move(stream)),
          opened_ms(now),
          last_seen_ms(now),
          reverse_budget([] { return uv_hrtime(); }) {}
    std::uint64_t id;
    common::FramedConnection conn;
    std::optional<PeerId> peer;
    std::uint64_t opened_ms;
    std::uint64_t last_seen_ms;
    std::optional<ReachProber::CheckId> reach_check;   // in flight
    std::vector<std::uint64_t> reach_waiters;          // reach_check request ids it answers
    std::optional<proto::Reachability> last_reach;
    std::uint64_t last_reach_ms = 0;
    ReverseRequestBudget reverse_budget;
};

struct PeerServer::PendingPing {
    PendingPing(uv_loop_t* loop) : timer(loop) {}
    PeerServer* server = nullptr;
    std::uint64_t id = 0;
    std::uint64_t session = 0;
    std::chrono::steady_clock::time_point sent;
    PingCallback done;
    common::Timer timer;
};

PeerServer::PeerServer(uv_loop_t* loop, State& state)
    : loop_(loop), state_(state), sweep_timer_(loop), prober_(loop, state.log) {
    sweep_timer_.get()->data = this;
}

PeerServer::~PeerServer() { stop(); }

proto::Result<bool> PeerServer::start() {
    auto listener = common::listen_tcp(loop_, state_.config.listen, on_connection, this);
    if (!listener) return listener.error();
    listener_ = std::make_unique<common::Tcp>(std::move(*listener));
    uv_timer_start(
        sweep_timer_.get(), [](uv_timer_t* t) { static_cast<PeerServer*>(t->data)->sweep(); },
        kSweepIntervalMs, kSweepIntervalMs);
    return true;
}

std::uint16_t PeerServer::port() const { return listener_ ? common::bound_port(*listener_) : 0; }

void PeerServer::stop() {
    listener_.reset();
    uv_timer_stop(sweep_timer_.get());
    for (auto& [id, pending] : pings_) {
        state_.metrics.count_ping("stopped");
        pending->done(false, 0, "tracker stopping");
    }
    pings_.clear();
    for (auto& [id, s] : sessions_) {
        if (s->peer) state_.index.remove_peer(*s->peer);
    }
    session_of_peer_.clear();
    sessions_.clear();   // each connection closes itself without calling back
}

void PeerServer::on_connection(uv_stream_t* listener, int status) {
    auto* self = static_cast<PeerServer*>(listener->data);
    if (!self) return;
    if (status < 0) {
        self->state_.log.warning("accept failed: " + common::uv_error(status));
        return;
    }
    self->accept_one();
}

void PeerServer::accept_one() {
    common::Tcp client(loop_);
    if (uv_accept(listener_->stream(), client.stream()) != 0) return;
    uv_tcp_nodelay(client.get(), 1);
    const auto id = next_session_++;
    const auto now = now_ms(loop_);
    auto session = std::make_unique<Session>(id, std::move(client), now);
    Session& s = *session;
    sessions_.emplace(id, std::move(session));
    s.conn.count_into(&state_.metrics.traffic);
    s.conn.set_frame_deadline(std::uint64_t{state_.config.request_timeout_s} * 1000);
    s.conn.start([this, &s](proto::Envelope&& env) { on_frame(s, std::move(env)); },
                 [this, id](const std::string& reason) { on_closed(id, reason); });
}

void PeerServer::on_frame(Session& s, proto::Envelope&& env) {
    s.last_seen_ms = now_ms(loop_);
    const auto began = uv_hrtime();
    if (!s.peer) {
        on_hello(s, env);
    } else {
        on_peer_request(s, env);
    }
    state_.metrics.request_seconds.observe(static_cast<double>(uv_hrtime() - began) / 1e9);
}

void PeerServer::on_hello(Session& s, const proto::Envelope& env) {
    if (env.type != proto::Hello::kType) {
        state_.metrics.count_rejected("no_hello");
        s.conn.send_error(ErrorCode::bad_request, "the first frame must be a hello", env.id);
        s.conn.close("no hello");
        return;
    }
    // The version is checked first: a newer peer's hello may not parse as ours.
    if (proto::hello_version(env.body) != proto::kProtocolVersion) {
        state_.metrics.count_rejected("version_mismatch");
        s.conn.send_error(ErrorCode::version_mismatch, proto::version_mismatch_message(env.body, "this tracker", "the peer"),
                          env.id);
        s.conn.close("protocol version mismatch");
        return;
    }
    auto hello = proto::Hello::from_json(env.body);
    if (!hello) {
        state_.metrics.count_rejected("bad_hello");
        s.conn.send_error(ErrorCode::bad_request, hello.error().message, env.id);
        s.conn.close("bad hello: " + hello.error().message);
        return;
    }
    if (hello->role != "peer") {
        state_.metrics.count_rejected("admin_hello");
        s.conn.send_error(ErrorCode::bad_request, "admin sessions use the admin socket", env.id);
        s.conn.close("admin hello on the peer port");
        return;
    }
    // Refused outright, trusted or not: nobody can be fetched from there.
    if (auto why = hello->advertise.empty() ? std::nullopt : common::refused_host(hello->advertise)) {
        s.conn.send_error(ErrorCode::bad_request, "field 'advertise': " + *why + ": no peer can be fetched from there",
                          env.id);
        s.conn.close("bad hello: advertises " + hello->advertise);
        return;
    }
    state_.count_request("hello");
    if (auto existing = state_.index.peer_by_name(hello->name)) {
        const PeerRecord* record = state_.index.peer(*existing);
        if (record->key != hello->key) {
            s.conn.send_error(ErrorCode::name_taken,
                              "the name '" + hello->name + "' is in use by another live peer; "
                              "choose another with --name",
                              env.id);
            s.conn.close("name taken");
            return;
        }
        // The same peer came back (restart, new connection): the new session wins.
        auto old = sessions_.find(session_of_peer_.at(*existing));
        if (old != sessions_.end()) {
            old->second->conn.abort("replaced by a new session");
            if (old->second->reach_check) prober_.cancel(*old->second->reach_check);
            old->second->reach_check.reset();
        }
        state_.index.remove_peer(*existing);
        session_of_peer_.erase(*existing);
        if (old != sessions_.end()) old->second->peer.reset();
        state_.events.record("left", hello->name, {}, "replaced by a new session");
    } else if (state_.index.peer_count() >= state_.config.max_peers) {
        s.conn.send_error(ErrorCode::limit, "the tracker is full (" +
                                                std::to_string(state_.config.max_peers) + " peers)",
                          env.id);
        s.conn.close("tracker full");
        return;
    }
    const std::string observed = s.conn.remote_address();
    const bool use_advertised = !hello->advertise.empty() && state_.config.trust_advertise;
    if (!hello->advertise.empty() && !use_advertised) {
        state_.log.info("peer " + hello->name + " advertises " + hello->advertise + "; giving out " + observed +
                        ", the address it connects from (trackerd --trust-advertise to use advertised ones)");
    }
    const std::string address = use_advertised ? hello->advertise : observed;
    s.peer = state_.index.add_peer({hello->name, hello->key, address, hello->port,
                                    static_cast<std::int64_t>(std::time(nullptr)), {}, std::nullopt, {}});
    session_of_peer_[*s.peer] = s.id;
    s.conn.send(proto::Welcome{proto::kProtocolVersion, address, state_.config.heartbeat_s,
                               state_.config.peer_timeout_s, state_.config.reach_check, state_.relay != nullptr},
                env.id);
    state_.events.record("joined", hello->name, {}, address + ":" + std::to_string(hello->port));
    start_reach_check(s);
}

void PeerServer::start_reach_check(Session& s) {
    const PeerId peer = *s.peer;
    const PeerRecord& record = *state_.index.peer(peer);
    if (!state_.config.reach_check) {
        state_.index.set_reach(peer, std::nullopt, "not checked (trackerd --no-reach-check)");
        return;
    }
    if (s.reach_check) return;   // the one in flight answers
    state_.index.set_reach(peer, std::nullopt, "checking");
    const auto nonce = proto::random_reach_nonce();
    s.reach_check = prober_.check(record.address, record.port, nonce, proto::reach_proof(record.key, nonce),
                                  [this, sid = s.id, peer](bool reachable, const std::string& reason) {
                                      reach_checked(sid, peer, reachable, reason);
                                  });
}

void PeerServer::reach_checked(std::uint64_t session_id, PeerId peer, bool reachable, const std::string& reason) {
    auto it = sessions_.find(session_id);
    if (it == sessions_.end() || it->second->peer != peer) return;
    Session& s = *it->second;
    s.reach_check.reset();
    const PeerRecord& record = *state_.index.peer(peer);
    state_.index.set_reach(peer, reachable, reason);
    state_.metrics.count_reach(reachable ? "reachable" : "unreachable");
    if (!reachable) state_.log.info("peer " + record.name + " is not reachable: " + reason);
    proto::Reachability outcome{reachable, reason, record.address, record.port};
    s.last_reach = outcome;
    s.last_reach_ms = now_ms(loop_);
    auto waiters = std::move(s.reach_waiters);
    s.reach_waiters.clear();
    if (waiters.empty()) s.conn.send(outcome);
    for (auto id : waiters) s.conn.send(outcome, id);
}

void PeerServer::on_reach_check(Session& s, const proto::Envelope& env) {
    if (!state_.config.reach_check) {
        s.conn.send_error(ErrorCode::unavailable, "this tracker does not check reachability (trackerd --no-reach-check)",
                          env.id);
        return;
    }
    if (!env.id) return;   // nobody to answer
    if (!s.reach_check && s.last_reach && now_ms(loop_) - s.last_reach_ms < kReachRecheckMs) {
        s.conn.send(*s.last_reach, env.id);
        return;
    }
    if (s.reach_waiters.size() >= kMaxReachWaiters) {
        s.conn.send_error(ErrorCode::busy, "a reachability check of this peer is already running", env.id);
        return;
    }
    s.reach_waiters.push_back(*env.id);
    start_reach_check(s);
}

void PeerServer::on_relay_request(Session& s, const proto::RelayRequest& m, std::uint64_t id) {
    if (!state_.relay) {
        s.conn.send_error(ErrorCode::unavailable, "this tracker runs no relay (trackerd --relay-listen)", id);
        return;
    }
    const std::string& fetcher = state_.index.peer(*s.peer)->name;
    const auto holder = state_.index.peer_by_name(m.holder);
    if (!holder) {
        s.conn.send_error(ErrorCode::not_found, "no live peer named '" + m.holder + "'", id);
        return;
    }
    if (*holder == *s.peer) {
        s.conn.send_error(ErrorCode::bad_request, "a peer cannot relay to itself", id);
        return;
    }
    auto ticket = state_.relay->issue(fetcher, m.holder);
    if (!ticket) {
        s.conn.send_error(ticket.error().code, ticket.error().message, id);
        return;
    }
    // Each side is sent to the relay at the address it reaches the tracker
    // at, unless --relay-listen names one address.
    Session& holder_session = *sessions_.at(session_of_peer_.at(*holder));
    const auto& at = *state_.config.relay_listen;
    const auto relay_host = [&](const Session& side) {
        return common::unspecified_host(at.host) ? side.conn.local_address() : at.host;
    };
    const std::uint16_t port = state_.relay->port();
    holder_session.conn.send(proto::RelayOffer{{relay_host(holder_session), port, ticket->holder_token, fetcher}});
    s.conn.send(proto::RelayTicket{relay_host(s), port, ticket->fetcher_token, m.holder}, id);
}

void PeerServer::on_reverse_request(Session& s, const proto::ReverseRequest& m, std::uint64_t id) {
    const auto refuse = [&](ErrorCode code, const std::string& message) {
        state_.metrics.count_reverse(proto::to_string(code));
        s.conn.send_error(code, message, id);
    };
    if (!s.reverse_budget.spend()) {
        return refuse(ErrorCode::busy, "too many reverse_requests: at most " +
                                           std::to_string(ReverseRequestBudget::kPerSecond) + " a second");
    }
    auto verdict = judge_reverse_request(state_.config.reach_check, state_.index, *s.peer, m);
    if (auto* error = std::get_if<proto::Error>(&verdict)) return refuse(error->code, error->message);
    const auto& forward = std::get<ForwardConnectBack>(verdict);
    Session& holder_session = *sessions_.at(session_of_peer_.at(forward.holder));
    holder_session.conn.send(forward.message);
    state_.metrics.count_reverse("forwarded");
    s.conn.send(proto::Ok{}, id);
    state_.events.record("reverse", forward.message.peer, {},
                         "from " + m.holder + ", connecting back to " + forward.message.address + ":" +
                             std::to_string(forward.message.port));
}

void PeerServer::on_peer_request(Session& s, const proto::Envelope& env) {
    const PeerId peer = *s.peer;
    const std::string& name = state_.index.peer(peer)->name;
    // A known type with bad fields is a malformed frame: answer, then close.
    const auto reject = [&](const proto::Error& e) {
        state_.metrics.count_rejected("malformed_message");
        s.conn.send_error(ErrorCode::bad_request, e.message, env.id);
        s.conn.close("malformed " + env.type + ": " + e.message);
    };
    if (env.type == proto::Lookup::kType) {
        state_.count_request(env.type);
        auto m = proto::Lookup::from_json(env.body);
        if (!m) return reject(m.error());
        s.conn.send_bytes(proto::make_holders_frame({m->name, state_.index.lookup(m->name)}, env.id));
        state_.events.record("looked_up", name, m->name);
    } else if (env.type == proto::Heartbeat::kType) {
        state_.count_request(env.type);   // last_seen already moved
    } else if (env.type == proto::Publish::kType) {
        state_.count_request(env.type);
        auto m = proto::Publish::from_json(env.body);
        if (!m) return reject(m.error());
        m->file.published_at = static_cast<std::int64_t>(std::time(nullptr));
        auto done = state_.index.publish(peer, m->file);
        if (!done) {
            s.conn.send_error(done.error().code, done.error().message, env.id);
            return;
        }
        s.conn.send(proto::Ok{}, env.id);
        state_.events.record("published", name, m->file.name);
    } else if (env.type == proto::Unpublish::kType) {
        state_.count_request(env.type);
        auto m = proto::Unpublish::from_json(env.body);
        if (!m) return reject(m.error());
        if (!state_.index.unpublish(peer, m->name)) {
            s.conn.send_error(ErrorCode::not_found, "you do not publish '" + m->name + "'", env.id);
            return;
        }
        s.conn.send(proto::Ok{}, env.id);
        state_.events.record("unpublished", name, m->name);
    } else if (env.type == proto::Fetched::kType) {
        state_.count_request(env.type);
        auto m = proto::Fetched::from_json(env.body);
        if (!m) return reject(m.error());
        std::string from;
        for (const auto& source : m->sources) from += (from.empty() ? "from " : ", ") + source;
        s.conn.send(proto::Ok{}, env.id);
        state_.events.record("fetched", name, m->name, from);
    } else if (env.type == proto::Search::kType) {
        state_.count_request(env.type);
        auto m = proto::Search::from_json(env.body);
        if (!m) return reject(m.error());
        proto::IndexReply reply;
        reply.entries = state_.index.search(m->text, proto::kMaxListedItems, &reply.truncated);
        s.conn.send_bytes(proto::make_bounded_frame(std::move(reply), &proto::IndexReply::entries, env.id));
    } else if (env.type == proto::ReachCheck::kType) {
        state_.count_request(env.type);
        if (auto m = proto::ReachCheck::from_json(env.body); !m) return reject(m.error());
        on_reach_check(s, env);
    } else if (env.type == proto::RelayRequest::kType) {
        state_.count_request(env.type);
        auto m = proto::RelayRequest::from_json(env.body);
        if (!m) return reject(m.error());
        if (!env.id) return;   // nobody to give the ticket to
        on_relay_request(s, *m, *env.id);
    } else if (env.type == proto::ReverseRequest::kType) {
        state_.count_request(env.type);
        auto m = proto::ReverseRequest::from_json(env.body);
        if (!m) {
            state_.metrics.count_reverse("bad_request");
            return reject(m.error());
        }
        if (!env.id) return;   // nobody to answer
        on_reverse_request(s, *m, *env.id);
    } else if (env.type == proto::Pong::kType) {
        // Only the session the ping went down may answer it: ids are guessable.
        auto it = env.id ? pings_.find(*env.id) : pings_.end();
        if (it != pings_.end() && it->second->session == s.id) finish_ping(*env.id, true, "live", {});
    } else {
        state_.metrics.count_rejected("unknown_type");
        s.conn.send_error(ErrorCode::bad_request, "unknown message type '" + env.type + "'", env.id);
    }
}

void PeerServer::on_closed(std::uint64_t session_id, const std::string& reason) {
    auto it = sessions_.find(session_id);
    if (it == sessions_.end()) return;
    if (it->second->reach_check) prober_.cancel(*it->second->reach_check);
    if (auto peer = it->second->peer) {
        const std::string name = state_.index.peer(*peer)->name;
        state_.index.remove_peer(*peer);
        session_of_peer_.erase(*peer);
        state_.events.record("left", name, {}, reason);
    }
    std::vector<std::uint64_t> orphaned;
    for (const auto& [id, pending] : pings_) {
        if (pending->session == session_id) orphaned.push_back(id);
    }
    for (auto id : orphaned) finish_ping(id, false, "left", "the peer left");
    sessions_.erase(it);
}

void PeerServer::sweep() {
    const auto now = now_ms(loop_);
    const std::uint64_t silent_limit = std::uint64_t{state_.config.peer_timeout_s} * 1000;
    for (auto& [id, s] : sessions_) {
        if (s->conn.closing()) continue;
        if (!s->peer && now - s->opened_ms > proto::kHelloTimeoutMs) {
            s->conn.abort("no hello within " + std::to_string(proto::kHelloTimeoutMs / 1000) + " s");
        } else if (s->peer && now - s->last_seen_ms > silent_limit) {
            s->conn.abort("timed out: silent for " + std::to_string(state_.config.peer_timeout_s) + " s");
        }
    }
}

void PeerServer::ping(const std::string& peer_name, std::uint32_t timeout_ms, PingCallback done) {
    auto peer = state_.index.peer_by_name(peer_name);
    if (!peer) {
        state_.metrics.count_ping("unknown");
        done(false, 0, "unknown: no live peer of that name");
        return;
    }
    auto pending = std::make_unique<PendingPing>(loop_);
    pending->server = this;
    pending->id = next_ping_++;
    pending->session = session_of_peer_.at(*peer);
    pending->sent = std::chrono::steady_clock::now();
    pending->done = std::move(done);
    pending->timer.get()->data = pending.get();
    uv_timer_start(
        pending->timer.get(),
        [](uv_timer_t* t) {
            auto* p = static_cast<PendingPing*>(t->data);
            p->server->finish_ping(p->id, false, "timeout", "timeout: no answer");
        },
        timeout_ms, 0);
    sessions_.at(pending->session)->conn.send(proto::Ping{}, pending->id);
    pings_.emplace(pending->id, std::move(pending));
}

void PeerServer::finish_ping(std::uint64_t ping_id, bool live, std::string_view result,
                             const std::string& reason) {
    auto it = pings_.find(ping_id);
    if (it == pings_.end()) return;   // answered late, after its timeout
    auto pending = std::move(it->second);
    pings_.erase(it);
    const double rtt_ms = live ? elapsed_ms(pending->sent) : 0;
    state_.metrics.count_ping(result);
    if (live) state_.metrics.ping_rtt_seconds.observe(rtt_ms / 1000);
    pending->done(live, rtt_ms, reason);
}

}  // namespace peershare::tracker
