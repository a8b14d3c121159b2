// daemon/tracker_link.cpp — connecting, announcing, reconnecting.
#include "daemon/tracker_link.hpp"

#include <algorithm>

namespace peershare::peerd {

using proto::ErrorCode;

namespace {
constexpr std::uint64_t kFirstBackoffMs = 500;
constexpr std::uint64_t kMaxBackoffMs = 30'000;
}  // namespace

// One resolve + connect. The loop may call back after the link moved on (or
// was destroyed), so callbacks reach the link only through `link`, cleared
// when the attempt is abandoned.
struct TrackerLink::Attempt {
    TrackerLink* link = nullptr;
    uv_getaddrinfo_t resolve{};
    uv_connect_t connect{};
    std::shared_ptr<Attempt> self;   // alive while libuv holds a request
};

TrackerLink::TrackerLink(uv_loop_t* loop, const common::Log& log, LinkConfig config, const Catalog& catalog)
    : loop_(loop), log_(log), config_(std::move(config)), catalog_(catalog), retry_timer_(loop),
      heartbeat_timer_(loop), backoff_ms_(kFirstBackoffMs), jitter_(std::random_device{}()) {
    retry_timer_.get()->data = this;
    heartbeat_timer_.get()->data = this;
}

TrackerLink::~TrackerLink() { stop(); }

void TrackerLink::start() {
    stopped_ = false;
    connect();
}

void TrackerLink::stop() {
    stopped_ = true;
    if (attempt_) attempt_->link = nullptr;
    attempt_.reset();
    uv_timer_stop(retry_timer_.get());
    uv_timer_stop(heartbeat_timer_.get());
    welcomed_ = false;
    conn_.reset();   // closes without calling back
    fail_pending("peerd is stopping");
}

std::string TrackerLink::not_connected_message() const {
    return "not connected to the tracker at " + common::to_string(config_.tracker) + " (" + error_ + ")";
}

void TrackerLink::connect() {
    if (stopped_) return;
    auto attempt = std::make_shared<Attempt>();
    attempt->link = this;
    attempt->self = attempt;
    attempt->resolve.data = attempt.get();
    attempt_ = attempt;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    const std::string port = std::to_string(config_.tracker.port);
    const int rc = uv_getaddrinfo(
        loop_, &attempt->resolve,
        [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
            auto* a = static_cast<Attempt*>(req->data);
            auto keep = std::move(a->self);
            if (a->link) a->link->on_resolved(status, status == 0 && res ? res->ai_addr : nullptr);
            uv_freeaddrinfo(res);
        },
        config_.tracker.host.c_str(), port.c_str(), &hints);
    if (rc < 0) {
        attempt->self.reset();
        error_ = "cannot resolve " + config_.tracker.host + ": " + common::uv_error(rc);
        retry_later();
    }
}

void TrackerLink::on_resolved(int status, const sockaddr* addr) {
    if (status < 0 || !addr) {
        error_ = "cannot resolve " + config_.tracker.host + ": " + common::uv_error(status);
        return retry_later();
    }
    common::Tcp tcp(loop_);
    uv_tcp_t* raw = tcp.get();
    uv_tcp_nodelay(raw, 1);
    uv_tcp_keepalive(raw, 1, 30);
    conn_ = std::make_unique<common::FramedConnection>(std::move(tcp));
    auto attempt = attempt_;
    attempt->self = attempt;
    attempt->connect.data = attempt.get();
    const int rc = uv_tcp_connect(&attempt->connect, raw, addr, [](uv_connect_t* req, int st) {
        auto* a = static_cast<Attempt*>(req->data);
        auto keep = std::move(a->self);
        if (a->link) a->link->on_connected(st);
    });
    if (rc < 0) {
        attempt->self.reset();
        on_connected(rc);
    }
}

void TrackerLink::on_connected(int status) {
    attempt_.reset();
    if (status < 0) {
        error_ = "cannot connect to " + common::to_string(config_.tracker) + ": " + common::uv_error(status);
        conn_.reset();
        return retry_later();
    }
    conn_->start([this](proto::Envelope&& env) { on_frame(std::move(env)); },
                 [this](const std::string& reason) { on_closed(reason); });
    proto::Hello hello;
    hello.name = config_.name;
    hello.port = config_.port;
    hello.key = config_.key;
    hello.advertise = config_.advertise;
    hello_id_ = next_id_++;
    conn_->send(hello, hello_id_);
}

void TrackerLink::on_frame(proto::Envelope&& env) {
    if (!welcomed_) return on_welcome(env);
    if (env.type == proto::Ping::kType) {
        conn_->send(proto::Pong{}, env.id);
        return;
    }
    if (env.type == proto::Reachability::kType) on_reachability(env);   // unasked, or a reply below
    if (env.type == proto::ConnectBack::kType && !env.id) {
        auto m = proto::ConnectBack::from_json(env.body);
        if (!m) return log_.warning("the tracker sent a bad connect_back: " + m.error().message);
        if (on_connect_back_) on_connect_back_(*m);
        return;
    }
    if (env.type == proto::RelayOffer::kType && !env.id) {
        auto m = proto::RelayOffer::from_json(env.body);
        if (!m) return log_.warning("the tracker sent a bad relay_offer: " + m.error().message);
        if (on_relay_offer_) on_relay_offer_(*m);
        return;
    }
    if (!env.id) return;
    auto it = pending_.find(*env.id);
    if (it == pending_.end()) return;   // a reply to a notify
    auto done = std::move(it->second);
    pending_.erase(it);
    done(std::move(env));
}

void TrackerLink::on_welcome(const proto::Envelope& env) {
    auto welcome = proto::expect<proto::Welcome>(env);
    if (!welcome) {
        error_ = "the tracker refused us: " + welcome.error().message;
        log_.error(error_);
        conn_->close("refused");
        return;
    }
    welcomed_ = true;
    error_.clear();
    reach_ = {std::nullopt, welcome->reach_check ? "checking" : "not checked by this tracker", welcome->reach_check};
    backoff_ms_ = kFirstBackoffMs;
    address_ = welcome->address;
    relay_ = welcome->relay;
    log_.info("connected to the tracker at " + common::to_string(config_.tracker) + " as " + config_.name +
              " (seen as " + address_ + "), announcing " + std::to_string(catalog_.all().size()) + " files");
    for (const auto& [id, held] : catalog_.partials()) {   // first: a publication of the name replaces it
        if (held.partial() && !catalog_.by_name(held.name)) announce(held);
    }
    for (const auto& [name, p] : catalog_.all()) {
        if (!p.changed) announce(p);
    }
    const std::uint64_t beat_ms = std::uint64_t{std::max<std::uint32_t>(welcome->heartbeat_s, 1)} * 1000;
    uv_timer_start(
        heartbeat_timer_.get(),
        [](uv_timer_t* t) { static_cast<TrackerLink*>(t->data)->notify(proto::Heartbeat{}); }, beat_ms,
        beat_ms);
    if (on_connected_) on_connected_();
}

void TrackerLink::on_reachability(const proto::Envelope& env) {
    auto m = proto::Reachability::from_json(env.body);
    if (!m) return log_.warning("the tracker sent a malformed reachability message: " + m.error().message);
    const bool news = reach_.reachable != m->reachable || reach_.reason != m->reason;
    reach_ = {m->reachable, m->reason, false};
    if (news && m->reachable) {
        log_.info("the tracker reaches our upload server (" + m->reason + ")");
    } else if (news) {
        log_.warning("the tracker cannot reach our upload server: " + m->reason +
                     "; other peers cannot download from us. Open port " + std::to_string(m->port) +
                     " to them (firewall, router port forwarding), or run peerd --advertise with an address "
                     "that reaches this machine");
    }
    if (on_reach_verdict_) on_reach_verdict_();   // last: it may start fetches
}

void TrackerLink::check_reach(std::function<void(proto::Result<proto::Reachability>)> done) {
    request(proto::ReachCheck{}, [done = std::move(done)](proto::Result<proto::Envelope> reply) {
        if (!reply) return done(reply.error());
        done(proto::expect<proto::Reachability>(*reply));   // reach_ was updated in on_frame
    });
}

void TrackerLink::announce(const Publication& p, AnnounceDone done) {
    if (!welcomed_) {
        if (done) done(true);
        return;
    }
    request(proto::Publish{p.info()}, [this, name = p.name, done](proto::Result<proto::Envelope> reply) {
        // A link lost meanwhile re-announces on reconnect: not a refusal.
        proto::Result<bool> outcome = true;
        if (reply) {
            if (auto ok = proto::expect<proto::Ok>(*reply); !ok) {
                log_.warning("the tracker refused '" + name + "': " + ok.error().message);
                outcome = proto::Error{ok.error().code, "the tracker refused '" + name + "': " + ok.error().message};
            }
        }
        if (done) done(std::move(outcome));
    });
}

void TrackerLink::withdraw(const std::string& name) { notify(proto::Unpublish{name}); }

void TrackerLink::on_closed(const std::string& reason) {
    const bool was_welcomed = welcomed_;
    welcomed_ = false;
    reach_ = {std::nullopt, "not connected to the tracker"};
    uv_timer_stop(heartbeat_timer_.get());
    conn_.reset();
    if (was_welcomed) {
        error_ = "lost the tracker: " + reason;
        log_.warning(error_ + "; reconnecting");
    } else if (error_.empty() || error_ == "connecting") {
        error_ = "the tracker closed the connection: " + reason;
    }
    fail_pending(error_);
    retry_later();
}

void TrackerLink::retry_later() {
    if (stopped_) return;
    // Full jitter over the upper half, so restarted peers do not reconnect in lockstep.
    std::uniform_int_distribution<std::uint64_t> spread(backoff_ms_ / 2, backoff_ms_);
    const auto wait = spread(jitter_);
    backoff_ms_ = std::min(backoff_ms_ * 2, kMaxBackoffMs);
    log_.debug(error_ + "; retrying in " + std::to_string(wait) + " ms");
    uv_timer_start(retry_timer_.get(), [](uv_timer_t* t) { static_cast<TrackerLink*>(t->data)->connect(); },
                   wait, 0);
}

void TrackerLink::fail_pending(const std::string& why) {
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& [id, done] : pending) done(proto::Error{ErrorCode::unavailable, why});
}

}  // namespace peershare::peerd
