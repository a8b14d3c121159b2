// daemon/metrics.cpp — peerd's exposition.
#include "daemon/metrics.hpp"

#include "common/process_stats.hpp"
#include "proto/prometheus.hpp"

namespace peershare::peerd {

std::string_view source_drop_reason(std::string_view why) {
    if (why.starts_with("cannot connect")) return "cannot_connect";
    if (why.find("HTTP 404") != std::string_view::npos) return "not_found";
    if (why.find("Range") != std::string_view::npos) return "no_range_support";
    if (why.find("piece list") != std::string_view::npos) return "bad_piece_list";
    if (why.starts_with("busy")) return "busy";
    if (why.find("failures") != std::string_view::npos) return "failures";
    return "other";
}

void PeerMetrics::count_dropped_source(std::string_view why) {
    const auto reason = source_drop_reason(why);
    auto it = sources_dropped.find(reason);
    if (it == sources_dropped.end()) it = sources_dropped.emplace(std::string(reason), 0).first;
    ++it->second;
}

std::string render_peer_metrics(const PeerMetrics& m, const PeerGauges& g) {
    proto::Exposition out;
    out.counter("peershare_peer_uploaded_bytes_total", "File bytes sent to other peers.",
                static_cast<double>(g.uploaded_bytes));
    out.counter("peershare_peer_downloaded_bytes_total", "Piece bytes received from other peers, verified or not.",
                static_cast<double>(m.downloaded_bytes));
    out.counter("peershare_peer_pieces_verified_total", "Pieces whose SHA-256 matched.",
                static_cast<double>(m.pieces_verified));
    out.counter("peershare_peer_pieces_rejected_total", "Pieces whose SHA-256 did not match; fetched again.",
                static_cast<double>(m.pieces_rejected));
    out.labelled("peershare_peer_sources_dropped_total", "counter", "Sources a fetch gave up on, by reason.",
                 "reason", kSourceDropReasons, m.sources_dropped);
    out.family("peershare_peer_rate_limit_waits_total", "counter",
               "Times an upload or a fetch paused for the rate limit, by direction.");
    out.sample("peershare_peer_rate_limit_waits_total", static_cast<double>(m.upload_rate_limit_waits),
               {{"direction", "upload"}});
    out.sample("peershare_peer_rate_limit_waits_total", static_cast<double>(m.download_rate_limit_waits),
               {{"direction", "download"}});
    out.gauge("peershare_peer_upload_slots_in_use", "Uploads sending a body now.",
              static_cast<double>(g.upload_slots_in_use));
    out.gauge("peershare_peer_upload_slots", "Uploads allowed at once (--max-uploads).",
              static_cast<double>(g.upload_slots));
    out.gauge("peershare_peer_upload_connections", "Open connections on the upload port.",
              static_cast<double>(g.upload_connections));
    out.family("peershare_peer_connect_backs_total", "counter",
               "Connect-backs (reverse connections) that arrived on the upload port, by result.");
    out.sample("peershare_peer_connect_backs_total", static_cast<double>(g.connect_backs_taken), {{"result", "taken"}});
    out.sample("peershare_peer_connect_backs_total", static_cast<double>(g.connect_backs_refused),
               {{"result", "refused"}});
    out.gauge("peershare_peer_publications", "Files this peer publishes.", static_cast<double>(g.publications));
    out.gauge("peershare_peer_tracker_connected", "1 while the session with the tracker is up, else 0.",
              g.tracker_connected ? 1 : 0);
    out.family("peershare_peer_transfers", "gauge", "Transfers (downloads) by state.");
    for (const auto& [state, n] : g.transfers) {
        out.sample("peershare_peer_transfers", static_cast<double>(n), {{"state", state}});
    }
    common::write_process_metrics(out, common::read_process_stats());
    return out.text();
}

}  // namespace peershare::peerd
