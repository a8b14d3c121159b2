// proto/documents.hpp — the JSON documents an operator's tools print about the
// tracker: `trackerctl --json` (discover, ping, peers, files, events, stats)
// and trackerd's HTTP API (/api/v1/..., docs/protocol.md §14) are the same
// documents, made here once. Each takes the reply the admin socket gives.
#pragma once

#include "proto/fields.hpp"
#include "proto/messages.hpp"

namespace peershare::proto {

json files_document(const Files& reply);        // {"host", "files": [FileInfo...], "truncated"}
json ping_document(const PingResult& result);   // {"host", "live", "rtt_ms": number or null}
json peers_document(const Peers& reply);        // {"peers": [PeerInfo...], "truncated"}
json index_document(const IndexReply& reply);   // {"files": [IndexEntry...], "truncated"}
// {"events": [Event...] oldest first, "truncated"}; the reply holds them newest first.
json events_document(const Events& reply);
json stats_document(const Stats& stats);        // Stats::to_json()

}  // namespace peershare::proto
