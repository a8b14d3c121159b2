// daemon/metrics_server.cpp — one route.
#include "daemon/metrics_server.hpp"

#include "proto/prometheus.hpp"

namespace peershare::peerd {

MetricsServer::MetricsServer(uv_loop_t* loop, const common::Log& log, Render render)
    : render_(std::move(render)),
      http_(loop, log, {}, {[this](common::HttpServer::ConnectionId id, const proto::HttpRequest& r) { on_request(id, r); }, {}}) {}

proto::Result<bool> MetricsServer::start(const common::Endpoint& at) {
    loopback_ = proto::loopback_host(at.host);
    return http_.start(at);
}

void MetricsServer::on_request(common::HttpServer::ConnectionId id, const proto::HttpRequest& r) {
    if (loopback_ && !r.host.empty() && !proto::loopback_host(r.host)) {
        // A browser that resolved another name to 127.0.0.1 (DNS rebinding) sends that name.
        http_.respond(id, {421, "text/plain; charset=utf-8",
                           "this peer answers only Host: 127.0.0.1, [::1] or localhost\n", {}});
    } else if (r.method != "GET") {
        http_.respond(id, {405, "text/plain; charset=utf-8", "only GET is served here\n", "Allow: GET, HEAD\r\n"});
    } else if (r.path != "/metrics") {
        http_.respond(id, {404, "text/plain; charset=utf-8", "only /metrics is served here\n", {}});
    } else {
        http_.respond(id, {200, std::string(proto::kMetricsContentType), render_(), {}});
    }
}

}  // namespace peershare::peerd
