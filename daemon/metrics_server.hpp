// daemon/metrics_server.hpp — peerd's --metrics-listen: GET /metrics (a
// Prometheus exposition made by `render` when asked), nothing else, on the
// bounded common::HttpServer. Off unless configured. On a loopback address, a
// request whose Host header names anything but loopback is refused (421), as
// trackerd's HTTP listener does (proto::loopback_host: DNS rebinding). Owned
// by the loop thread.
#pragma once

#include <functional>
#include <string>

#include "common/http_server.hpp"
#include "common/log.hpp"
#include "common/net.hpp"

namespace peershare::peerd {

class MetricsServer {
public:
    using Render = std::function<std::string()>;
    MetricsServer(uv_loop_t* loop, const common::Log& log, Render render);

    proto::Result<bool> start(const common::Endpoint& at);
    void stop() { http_.stop(); }
    std::uint16_t port() const { return http_.port(); }

private:
    void on_request(common::HttpServer::ConnectionId id, const proto::HttpRequest& r);

    Render render_;
    common::HttpServer http_;
    bool loopback_ = false;   // listening on loopback: only loopback Host headers are answered
};

}  // namespace peershare::peerd
