// tracker/metrics.hpp — what trackerd counts for /metrics beyond what its
// index and servers already know (peers, holdings, names, sessions), and the
// rendering of it all as a Prometheus exposition (docs/metrics.md). Owned by
// the loop thread, inside State.
#pragma once

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>

#include "common/framed_connection.hpp"
#include "common/http_server.hpp"
#include "proto/messages.hpp"
#include "proto/prometheus.hpp"

namespace peershare::tracker {

// The label values /metrics shows from the start (0 until counted), so a
// series does not appear only with its first event (prometheus.io/docs/
// practices/instrumentation, "avoid missing metrics"). Each list holds every
// value its counter is given; a value outside it is a bug (asserted).
// Requests counted, by message type: the peer port's (peer_server.cpp) and the
// admin socket's (admin_server.cpp, kAdminTypes); a dashboard ping is a ping_peer.
inline constexpr std::array<std::string_view, 15> kRequestTypes{
    proto::Hello::kType,     proto::Lookup::kType,   proto::Heartbeat::kType, proto::Publish::kType,
    proto::Unpublish::kType, proto::Fetched::kType,  proto::Search::kType,    proto::Discover::kType,
    proto::ReachCheck::kType, proto::PingPeer::kType, proto::ListPeers::kType, proto::ListEvents::kType,
    proto::GetStats::kType, proto::RelayRequest::kType, proto::ReverseRequest::kType};
inline constexpr std::array<std::string_view, 5> kPingResults{"live", "timeout", "left", "unknown", "stopped"};
inline constexpr std::array<std::string_view, 2> kReachResults{"reachable", "unreachable"};
// Frames refused on the peer port: the session's own reasons, then the framing's (TrafficCounters).
inline constexpr std::array<std::string_view, 8> kRejectReasons{
    "no_hello", "version_mismatch", "bad_hello", "admin_hello", "malformed_message", "unknown_type",
    "bad_framing", "bad_envelope"};

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

    // reverse_requests by result (tracker/reverse/reverse_request.hpp, kReverseResults).
    std::map<std::string, std::uint64_t, std::less<>> reverse_requests;

    void count_reverse(std::string_view result);
    void count_ping(std::string_view result) { count_known(pings, kPingResults, result); }
    void count_reach(std::string_view result) { count_known(reach_checks, kReachResults, result); }
    void count_rejected(std::string_view reason) { count_known(rejected, kRejectReasons, reason); }

private:
    // ++m[value]; `value` must be one of `known` (the label values /metrics lists).
    static void count_known(std::map<std::string, std::uint64_t, std::less<>>& m,
                            std::span<const std::string_view> known, std::string_view value);
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
