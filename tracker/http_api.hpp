// tracker/http_api.hpp — trackerd's HTTP listener (--http-listen): the
// dashboard (/, its files embedded at build time from tracker/web/),
// Prometheus /metrics, the JSON API /api/v1/... (the documents of
// `trackerctl --json`, proto/documents.hpp), the live event feed as SSE, and
// the one action: POST /api/v1/peers/<name>/ping with the page's token,
// answered by PeerServer::ping like `trackerctl ping`. Everything else is
// read-only. On a loopback address, a request whose Host header names anything
// but loopback is refused (421), so a web page cannot read the API or the
// token through DNS rebinding. docs/protocol.md §14 lists the routes. Owned by
// the loop thread.
#pragma once

#include <memory>
#include <string>

#include "common/http_server.hpp"
#include "common/net.hpp"
#include "common/uv.hpp"
#include "proto/http_request.hpp"
#include "tracker/event_stream.hpp"
#include "tracker/history.hpp"
#include "tracker/peer_server.hpp"
#include "tracker/state.hpp"

namespace peershare::tracker {

inline constexpr std::uint64_t kHistoryPeriodMs = 2'000;
inline constexpr std::size_t kHistorySamples = 300;   // ten minutes
inline constexpr std::uint32_t kDashboardPingTimeoutMs = 2'000;

class HttpApi {
public:
    HttpApi(uv_loop_t* loop, State& state, PeerServer& peers);
    ~HttpApi();
    HttpApi(const HttpApi&) = delete;
    HttpApi& operator=(const HttpApi&) = delete;

    proto::Result<bool> start(const common::Endpoint& at);
    void stop();
    std::uint16_t port() const { return http_.port(); }

private:
    using Id = common::HttpServer::ConnectionId;

    void on_request(Id id, const proto::HttpRequest& r);
    void serve_api(Id id, const proto::HttpRequest& r, std::string_view route);
    void serve_peer(Id id, const proto::HttpRequest& r, std::string_view rest);
    void serve_asset(Id id, std::string_view path);
    void ping(Id id, const proto::HttpRequest& r, const std::string& host);
    void respond_json(Id id, int status, const proto::json& document);
    void respond_error(Id id, int status, std::string_view message, std::string_view extra_headers = {});
    void sample();

    State& state_;
    PeerServer& peers_;
    common::HttpServer http_;
    EventStream stream_;
    History history_;
    common::Timer sampler_;
    std::string token_;   // the page's: random per start, asked of every POST
    bool loopback_ = false;   // listening on loopback: only loopback Host headers are answered
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);   // for callbacks that may outlive us
};

}  // namespace peershare::tracker
