// tracker/queries.hpp — the answers to an operator's questions, as the replies
// of the admin protocol: one place that reads the index for trackerctl (the
// admin socket) and for the HTTP API, so both see the same rows, bounded to
// one frame (kMaxListedItems rows, then trimmed to kMaxFrame bytes, with
// truncated set). Read-only; called on the loop thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "proto/messages.hpp"
#include "tracker/state.hpp"

namespace peershare::tracker {

proto::Peers live_peers(const State& state);
// The files of the live peer named `host`; nothing if there is none.
std::optional<proto::Files> peer_files(const State& state, std::string_view host);
proto::IndexReply search_index(const State& state, std::string_view text);
proto::Events recent_events(const State& state);   // newest first
// `sessions`: the peer port's open connections.
proto::Stats tracker_stats(const State& state, std::size_t sessions);

}  // namespace peershare::tracker
