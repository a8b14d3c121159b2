// tracker/metrics.cpp — the tracker's exposition.
#include "tracker/metrics.hpp"

#include "common/process_stats.hpp"
#include "tracker/events.hpp"
#include "tracker/relay/relay_server.hpp"
#include "tracker/reverse/reverse_request.hpp"
#include "tracker/state.hpp"

namespace peershare::tracker {

void TrackerMetrics::count_known(std::map<std::string, std::uint64_t, std::less<>>& m,
                                 [[maybe_unused]] std::span<const std::string_view> known, std::string_view value) {
    assert(std::find(known.begin(), known.end(), value) != known.end());
    auto it = m.find(value);
    if (it == m.end()) it = m.emplace(std::string(value), 0).first;
    ++it->second;
}

void TrackerMetrics::count_reverse(std::string_view result) { count_known(reverse_requests, kReverseResults, result); }

std::string render_metrics(const State& state, const ServerGauges& gauges) {
    proto::Exposition out;
    const auto& m = state.metrics;
    out.gauge("peershare_tracker_peers", "Live peers: sessions that said hello.",
              static_cast<double>(state.index.peer_count()));
    out.gauge("peershare_tracker_holdings", "Published files, one per peer and name.",
              static_cast<double>(state.index.file_count()));
    out.gauge("peershare_tracker_names", "Distinct file names in the index.",
              static_cast<double>(state.index.name_count()));
    out.gauge("peershare_tracker_sessions", "Open connections on the peer port, hello or not.",
              static_cast<double>(gauges.sessions));
    out.labelled("peershare_tracker_requests_total", "counter",
                 "Requests answered, by message type (peer port and admin socket).", "type", kRequestTypes,
                 state.requests);
    out.histogram("peershare_tracker_request_duration_seconds",
                  "Time the loop spent answering one request, in seconds.", m.request_seconds);
    out.labelled("peershare_tracker_events_total", "counter", "Events recorded, by kind.", "kind", kEventKinds,
                 state.events.counts());
    out.labelled("peershare_tracker_pings_total", "counter",
                 "Pings sent down peer sessions, by result (live, timeout, left, unknown, stopped).", "result",
                 kPingResults, m.pings);
    out.labelled("peershare_tracker_reach_checks_total", "counter",
                 "Reachability checks of peers' upload addresses, by result.", "result", kReachResults,
                 m.reach_checks);
    out.labelled("peershare_tracker_reverse_requests_total", "counter",
                 "reverse_requests (a holder asked to connect back to a fetcher), by result: forwarded, or the "
                 "error of the refusal.",
                 "result", kReverseResults, m.reverse_requests);
    out.histogram("peershare_tracker_ping_rtt_seconds", "Round trips of answered pings, in seconds.",
                  m.ping_rtt_seconds);
    out.counter("peershare_tracker_session_received_bytes_total", "Bytes received on peer sessions.",
                static_cast<double>(m.traffic.bytes_in));
    out.counter("peershare_tracker_session_sent_bytes_total", "Bytes sent on peer sessions.",
                static_cast<double>(m.traffic.bytes_out));
    std::map<std::string, std::uint64_t, std::less<>> rejected = m.rejected;
    rejected["bad_framing"] += m.traffic.bad_framing;
    rejected["bad_envelope"] += m.traffic.bad_envelope;
    out.labelled("peershare_tracker_frames_rejected_total", "counter",
                 "Frames refused on the peer port, by reason; the session is closed.", "reason", kRejectReasons,
                 rejected);
    out.gauge("peershare_tracker_http_connections", "Open connections on the HTTP listener.",
              static_cast<double>(gauges.http_connections));
    out.gauge("peershare_tracker_event_stream_subscribers", "Clients following /api/v1/events/stream.",
              static_cast<double>(gauges.http_streams));
    if (gauges.http) {
        const auto& h = *gauges.http;
        out.family("peershare_tracker_http_refused_total", "counter",
                   "HTTP clients refused or closed, by reason (full, deadline, bad_request, slow_stream).");
        out.sample("peershare_tracker_http_refused_total", static_cast<double>(h.refused_full), {{"reason", "full"}});
        out.sample("peershare_tracker_http_refused_total", static_cast<double>(h.timed_out), {{"reason", "deadline"}});
        out.sample("peershare_tracker_http_refused_total", static_cast<double>(h.bad_requests),
                   {{"reason", "bad_request"}});
        out.sample("peershare_tracker_http_refused_total", static_cast<double>(h.streams_dropped),
                   {{"reason", "slow_stream"}});
    }
    if (state.relay) {
        const auto r = state.relay->counts();
        out.family("peershare_tracker_relay_circuits_total", "counter",
                   "Relay circuits by result: opened (joined), full, bad_token, no_partner (refused).");
        out.sample("peershare_tracker_relay_circuits_total", static_cast<double>(r.opened), {{"result", "opened"}});
        out.sample("peershare_tracker_relay_circuits_total", static_cast<double>(r.refused_full), {{"result", "full"}});
        out.sample("peershare_tracker_relay_circuits_total", static_cast<double>(r.refused_token),
                   {{"result", "bad_token"}});
        out.sample("peershare_tracker_relay_circuits_total", static_cast<double>(r.no_partner),
                   {{"result", "no_partner"}});
        out.gauge("peershare_tracker_relay_circuits", "Relay circuits open, sides waiting for their partner included.",
                  static_cast<double>(r.open));
        out.counter("peershare_tracker_relay_bytes_total", "Bytes the relay copied, both ways.",
                    static_cast<double>(r.bytes));
    }
    common::write_process_metrics(out, common::read_process_stats());
    return out.text();
}

}  // namespace peershare::tracker
