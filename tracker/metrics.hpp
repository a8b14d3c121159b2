// tracker/metrics.hpp — what trackerd counts for /metrics beyond what its
// index and servers already know (peers, holdings, names, sessions), and the
// rendering of it all as a Prometheus exposition (docs/metrics.md). Owned by
// the loop thread, inside State.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/framed_connection.hpp"
#include "common/http_server.hpp"
#include "proto/prometheus.hpp"

namespace peershare::tracker {

struct State;

struct TrackerMetrics {
    // Time spent answering one request on the loop (peer port and admin socket).
    proto::Histogram request_seconds{proto::latency_buckets()};
    // Pings by result (live, timeout, left, unknown, stopped) and the round trips of live ones.
    std::map<std::string, std::uint64_t, std::less<>> pings;
    proto::Histogram ping_rtt_seconds{proto::latency_buckets()};
    // The peer port's sessions: bytes both ways and frames the framing refused.
    common::TrafficCounters traffic;
    // Frames refused on the peer port by reason (beyond traffic's framing ones):
    // no_hello, version_mismatch, bad_hello, admin_hello, malformed_message, unknown_type.
    std::map<std::string, std::uint64_t, std::less<>> rejected;

    // Reachability checks by outcome: reachable, unreachable.
    std::map<std::string, std::uint64_t, std::less<>> reach_checks;

    void count_ping(std::string_view result) { ++find_or_add(pings, result); }
    void count_reach(std::string_view result) { ++find_or_add(reach_checks, result); }
    void count_rejected(std::string_view reason) { ++find_or_add(rejected, reason); }

private:
    static std::uint64_t& find_or_add(std::map<std::string, std::uint64_t, std::less<>>& m, std::string_view key);
};

// The live gauges that belong to the servers, read when /metrics is asked.
struct ServerGauges {
    std::size_t sessions = 0;        // peer port connections, said hello or not
    std::size_t http_connections = 0;
    std::size_t http_streams = 0;    // Server-Sent Events subscribers
    const common::HttpServerCounters* http = nullptr;   // null with the HTTP listener off
};

// The whole /metrics page.
std::string render_metrics(const State& state, const ServerGauges& gauges);

}  // namespace peershare::tracker
