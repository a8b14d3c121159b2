// tracker/http_api.cpp — routes of the HTTP listener.
#include "tracker/http_api.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <chrono>
#include <memory>
#include <stdexcept>

#include "proto/documents.hpp"
#include "proto/hex.hpp"
#include "proto/limits.hpp"
#include "proto/prometheus.hpp"
#include "tracker/metrics.hpp"
#include "tracker/queries.hpp"
#include "tracker/web_assets.hpp"

namespace peershare::tracker {
namespace {

constexpr std::string_view kApiPrefix = "/api/v1/";
constexpr std::string_view kTokenPlaceholder = "__PEERSHARE_TOKEN__";
constexpr std::string_view kJson = "application/json";
// The page loads only its own files, cannot be framed (the ping button), sends no referrer.
constexpr std::string_view kPageHeaders =
    "Content-Security-Policy: default-src 'self'; img-src 'self' data:; frame-ancestors 'none'\r\n"
    "X-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\n"
    "Cache-Control: no-store\r\n";

std::string random_token() {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("no random bytes for the page token");
    return proto::to_hex({bytes, sizeof bytes});
}

bool same_token(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

double now_s() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::uint64_t total_requests(const State& state) {
    std::uint64_t n = 0;
    for (const auto& [type, count] : state.requests) n += count;
    return n;
}

}  // namespace

HttpApi::HttpApi(uv_loop_t* loop, State& state, PeerServer& peers)
    : state_(state),
      peers_(peers),
      http_(loop, state.log, {},
            {[this](Id id, const proto::HttpRequest& r) { on_request(id, r); },
             [this](Id id) { stream_.forget(id); }}),
      stream_(loop, state.events, http_),
      history_(kHistorySamples),
      sampler_(loop),
      token_(random_token()) {
    sampler_.get()->data = this;
}

HttpApi::~HttpApi() { stop(); }

proto::Result<bool> HttpApi::start(const common::Endpoint& at) {
    auto ok = http_.start(at);
    if (!ok) return ok;
    loopback_ = proto::loopback_host(at.host);
    sample();
    uv_timer_start(
        sampler_.get(), [](uv_timer_t* t) { static_cast<HttpApi*>(t->data)->sample(); }, kHistoryPeriodMs,
        kHistoryPeriodMs);
    return true;
}

void HttpApi::stop() {
    uv_timer_stop(sampler_.get());
    stream_.stop();
    http_.stop();
}

void HttpApi::sample() {
    history_.add({now_s(), state_.index.peer_count(), state_.index.file_count(), total_requests(state_)});
}

void HttpApi::on_request(Id id, const proto::HttpRequest& r) {
    if (loopback_ && !r.host.empty() && !proto::loopback_host(r.host)) {
        // A browser that resolved another name to 127.0.0.1 (DNS rebinding) sends that name.
        return respond_error(id, 421, "this tracker answers only Host: 127.0.0.1, [::1] or localhost");
    }
    const std::string_view path = r.path;
    if (path.starts_with(kApiPrefix)) return serve_api(id, r, path.substr(kApiPrefix.size()));
    if (r.method != "GET") return respond_error(id, 405, "only GET is served here", "Allow: GET, HEAD\r\n");
    if (path == "/metrics") {
        ServerGauges gauges{peers_.connection_count(), http_.connection_count(), http_.stream_count(),
                            &http_.counters()};
        http_.respond(id, {200, std::string(proto::kMetricsContentType), render_metrics(state_, gauges), {}});
        return;
    }
    serve_asset(id, path == "/" ? "/index.html" : path);
}

void HttpApi::serve_asset(Id id, std::string_view path) {
    for (const auto& asset : web_assets()) {
        if (asset.path != path) continue;
        std::string body(asset.bytes);
        if (path == "/index.html") {   // the page carries the token its POSTs must show
            const auto at = body.find(kTokenPlaceholder);
            if (at != std::string::npos) body.replace(at, kTokenPlaceholder.size(), token_);
        }
        http_.respond(id, {200, std::string(asset.content_type), std::move(body), std::string(kPageHeaders)});
        return;
    }
    respond_error(id, 404, "no such page");
}

void HttpApi::serve_api(Id id, const proto::HttpRequest& r, std::string_view route) {
    if (route.starts_with("peers/")) return serve_peer(id, r, route.substr(6));
    if (r.method != "GET") return respond_error(id, 405, "only GET is served here", "Allow: GET, HEAD\r\n");
    if (route == "peers") return respond_json(id, 200, proto::peers_document(live_peers(state_)));
    if (route == "files") {
        std::string text;
        if (!r.query.empty()) {
            auto value = proto::query_value(r.query, "text");
            if (!value && r.query.find("text=") != std::string::npos) {
                return respond_error(id, 400, "text: bad percent-encoding");
            }
            text = value.value_or("");
        }
        if (text.size() > proto::kMaxSearchText) {
            return respond_error(id, 400, "text: longer than " + std::to_string(proto::kMaxSearchText) + " bytes");
        }
        return respond_json(id, 200, proto::index_document(search_index(state_, text)));
    }
    if (route == "events") return respond_json(id, 200, proto::events_document(recent_events(state_)));
    if (route == "events/stream") return stream_.subscribe(id);
    if (route == "stats") {
        return respond_json(id, 200, proto::stats_document(tracker_stats(state_, peers_.connection_count())));
    }
    // The page's token again, for a page that outlived a restart of the tracker (a new token):
    // readable only by a page of this origin, like the token in "/" itself.
    if (route == "token") return respond_json(id, 200, proto::json{{"token", token_}});
    if (route == "history") return respond_json(id, 200, history_.to_json(kHistoryPeriodMs / 1000.0));
    respond_error(id, 404, "no such API route");
}

// /api/v1/peers/<name> (GET: discover) and /api/v1/peers/<name>/ping (POST).
void HttpApi::serve_peer(Id id, const proto::HttpRequest& r, std::string_view rest) {
    constexpr std::string_view kPing = "/ping";
    const bool is_ping = rest.ends_with(kPing);
    if (is_ping) rest.remove_suffix(kPing.size());
    auto name = proto::percent_decode(rest, false);
    if (!name || name->empty() || name->size() > proto::kMaxNameBytes || name->find('/') != std::string::npos) {
        return respond_error(id, 400, "bad peer name in the path");
    }
    if (is_ping) {
        if (r.method != "POST") return respond_error(id, 405, "ping is a POST", "Allow: POST\r\n");
        return ping(id, r, *name);
    }
    if (r.method != "GET") return respond_error(id, 405, "only GET is served here", "Allow: GET, HEAD\r\n");
    auto files = peer_files(state_, *name);
    if (!files) return respond_error(id, 404, "no live peer named '" + *name + "'");
    respond_json(id, 200, proto::files_document(*files));
}

void HttpApi::ping(Id id, const proto::HttpRequest& r, const std::string& host) {
    if (!same_token(r.token, token_)) {
        return respond_error(id, 403, "a ping needs the dashboard's token (X-Peershare-Token)");
    }
    state_.count_request(proto::PingPeer::kType);
    // The connection may be gone when the answer comes: respond() then answers nobody.
    // This may be gone too (a ping answered while the tracker shuts down): `alive` says.
    peers_.ping(host, kDashboardPingTimeoutMs,
                [this, alive = std::weak_ptr<bool>(alive_), id, host](bool live, double rtt_ms,
                                                                     const std::string& reason) {
                    if (alive.expired()) return;
                    respond_json(id, 200, proto::ping_document(proto::PingResult{host, live, rtt_ms, reason}));
                });
}

void HttpApi::respond_json(Id id, int status, const proto::json& document) {
    http_.respond(id, {status, std::string(kJson), document.dump(-1, ' ', false, proto::json::error_handler_t::replace),
                       "Cache-Control: no-store\r\n"});
}

void HttpApi::respond_error(Id id, int status, std::string_view message, std::string_view extra_headers) {
    const proto::json document{{"error", message}};
    http_.respond(id, {status, std::string(kJson), document.dump(-1, ' ', false, proto::json::error_handler_t::replace),
                       std::string(extra_headers)});
}

}  // namespace peershare::tracker
