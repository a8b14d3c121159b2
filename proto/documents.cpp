// proto/documents.cpp — the operator documents.
#include "proto/documents.hpp"

namespace peershare::proto {

json files_document(const Files& reply) {
    return {{"host", reply.host}, {"files", list_json(reply.files)}, {"truncated", reply.truncated}};
}

json ping_document(const PingResult& result) {
    return {{"host", result.host}, {"live", result.live}, {"rtt_ms", result.live ? json(result.rtt_ms) : json(nullptr)}};
}

json peers_document(const Peers& reply) {
    return {{"peers", list_json(reply.peers)}, {"truncated", reply.truncated}};
}

json index_document(const IndexReply& reply) {
    return {{"files", list_json(reply.entries)}, {"truncated", reply.truncated}};
}

json events_document(const Events& reply) {
    json events = json::array();
    for (auto it = reply.events.rbegin(); it != reply.events.rend(); ++it) events.push_back(it->to_json());
    return {{"events", std::move(events)}, {"truncated", reply.truncated}};
}

json stats_document(const Stats& stats) { return stats.to_json(); }

}  // namespace peershare::proto
