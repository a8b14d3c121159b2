// ctl/transfers_view.hpp — how `peerctl transfers` and `peerctl watch` look:
// a table of the transfers peerd owns (id, name, state, done/total, rate,
// sources, ETA, destination) and the leftover partial files it found; and a
// live view that follows transfers until they end.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ctl/session.hpp"
#include "proto/transfers.hpp"

namespace peershare::ctl {

// The table (or {"transfers": [...], "leftovers": [...], "truncated": …}).
void print_transfers(const proto::TransferList& list, bool json);

// Follows transfer `id` (or every unfinished one) by asking peerd about four
// times a second, drawing a bar per transfer on a terminal and a line per
// change of state elsewhere, until it is done (exit 0), failed, paused or
// cancelled (Failure, exit 1). Watching everything ends when nothing is
// queued, running or waiting. Ctrl-C just stops watching.
void watch_transfers(Session& session, std::optional<std::uint64_t> id, bool json);

// "12.0 MiB/48.0 MiB (25%)".
std::string done_text(std::uint64_t done, std::uint64_t total);

}  // namespace peershare::ctl
