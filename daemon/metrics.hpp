// daemon/metrics.hpp — what peerd counts for its /metrics (--metrics-listen),
// and the rendering (docs/metrics.md). The engine's parts hold a pointer to
// one PeerMetrics, owned by the Peer, and bump its counters where things
// happen (upload_server.cpp: upload rate-limit waits; fetch/engine.cpp: bytes
// received, pieces verified and rejected, sources dropped, download
// rate-limit waits); the rest is read from the engine when /metrics is asked
// (PeerGauges: the upload server's byte count, slots, the transfer registry's
// states). Loop thread only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace peershare::peerd {

struct PeerMetrics {
    std::uint64_t downloaded_bytes = 0;    // piece bytes received, verified or not
    std::uint64_t pieces_verified = 0;
    std::uint64_t pieces_rejected = 0;     // hash mismatch
    std::uint64_t upload_rate_limit_waits = 0;     // an upload paused for --max-upload-rate
    std::uint64_t download_rate_limit_waits = 0;   // a fetch paused for --max-download-rate
    std::map<std::string, std::uint64_t, std::less<>> sources_dropped;   // by source_drop_reason()

    void count_dropped_source(std::string_view why);
};

// The label for a fetch's words on why it dropped a source: one of
// kSourceDropReasons (/metrics shows each from the start, 0 until counted).
inline constexpr std::array<std::string_view, 7> kSourceDropReasons{
    "cannot_connect", "not_found", "no_range_support", "bad_piece_list", "busy", "failures", "other"};
std::string_view source_drop_reason(std::string_view why);

// What the engine says now.
struct PeerGauges {
    std::uint64_t uploaded_bytes = 0;       // file bytes sent since start (UploadServer::bytes_uploaded)
    std::size_t upload_slots_in_use = 0;
    std::size_t upload_slots = 0;           // the limit (--max-uploads)
    std::size_t upload_connections = 0;
    // Connect-backs on the upload port (UploadServer::connect_backs_taken/
    // refused): handed to the fetch that expected the token, or closed.
    std::uint64_t connect_backs_taken = 0;
    std::uint64_t connect_backs_refused = 0;
    std::size_t publications = 0;
    bool tracker_connected = false;
    // Transfers by state (TransferRegistry::count_by_state), every state
    // named: queued, running, waiting, paused, failed, done.
    std::map<std::string, std::size_t, std::less<>> transfers;
};

// The whole /metrics page: these and the process_* metrics.
std::string render_peer_metrics(const PeerMetrics& m, const PeerGauges& g);

}  // namespace peershare::peerd
