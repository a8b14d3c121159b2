// tracker/queries.cpp — listings of the index, bounded to one frame.
#include "tracker/queries.hpp"

#include <ctime>

#include "tracker/relay/relay_server.hpp"

namespace peershare::tracker {

proto::Peers live_peers(const State& state) {
    proto::Peers reply;
    reply.peers = state.index.peers(proto::kMaxListedItems, &reply.truncated);
    proto::fit_to_frame(reply, &proto::Peers::peers);
    return reply;
}

std::optional<proto::Files> peer_files(const State& state, std::string_view host) {
    auto peer = state.index.peer_by_name(host);
    if (!peer) return std::nullopt;
    proto::Files reply{std::string(host), {}, false};
    reply.files = state.index.files_of(*peer, proto::kMaxListedItems, &reply.truncated);
    proto::fit_to_frame(reply, &proto::Files::files);
    return reply;
}

proto::IndexReply search_index(const State& state, std::string_view text) {
    proto::IndexReply reply;
    reply.entries = state.index.search(text, proto::kMaxListedItems, &reply.truncated);
    proto::fit_to_frame(reply, &proto::IndexReply::entries);
    return reply;
}

proto::Events recent_events(const State& state) {
    const auto& history = state.events.history();
    // Newest first, so that trimming to fit a frame drops the oldest.
    proto::Events reply{{history.rbegin(), history.rend()}, false};
    proto::fit_to_frame(reply, &proto::Events::events);
    return reply;
}

proto::Stats tracker_stats(const State& state, std::size_t sessions) {
    proto::Stats s;
    s.peers = state.index.peer_count();
    s.files = state.index.file_count();
    s.names = state.index.name_count();
    s.connections = sessions;
    s.uptime_s = static_cast<std::uint64_t>(std::time(nullptr) - state.started);
    s.requests = state.requests;
    for (const auto& [result, count] : state.metrics.reverse_requests) {
        (result == "forwarded" ? s.reverse.forwarded : s.reverse.refused) += count;
    }
    if (state.relay) {
        const auto r = state.relay->counts();
        s.relay = proto::RelayStats{r.open, r.opened, r.refused_full + r.refused_token + r.no_partner, r.bytes};
    }
    return s;
}

}  // namespace peershare::tracker
