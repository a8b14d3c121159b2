// daemon/transfer_record.hpp — what peerd persists about one transfer (a
// download it owns), so that it survives Ctrl-C in peerctl, a stop, SIGKILL
// or a reboot (docs/design.md, "The life of a transfer"). One row per
// transfer in the state database (daemon/state/). Plain data, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proto/bitfield.hpp"
#include "proto/hex.hpp"

namespace peershare::peerd {

enum class TransferState { queued, running, waiting, paused, failed, done };

// "queued", "running", … as shown by peerctl and in --json.
std::string_view to_string(TransferState s);
// The inverse; false for anything else.
bool parse_transfer_state(std::string_view text, TransferState& out);

struct TransferSource {
    std::string peer;
    std::string host;  // IP literal or DNS name, as the tracker gave it
    std::uint16_t port = 0;
    bool operator==(const TransferSource&) const = default;
};

struct TransferRecord {
    std::uint64_t id = 0;             // > 0, unique in this peerd's database, never reused
    std::string name;                 // as asked for (the tracker's name)
    std::string content_id;           // hex; empty until the lookup chose a content
    std::uint64_t size = 0;           // bytes
    std::uint64_t piece_size = 0;     // bytes; 0 until known
    std::vector<proto::Digest> pieces;  // the piece list once checked against content_id, else empty
    // Pieces verified *and durable* in the partial file (fdatasync'd before
    // they are recorded). Empty (size 0) until the piece list is known.
    proto::Bitfield have;
    std::string destination;          // absolute final path
    std::string partial_path;         // absolute: the stable partial file beside the destination
    std::vector<TransferSource> sources;  // holders last seen
    // Options as given to `peerctl fetch`.
    std::string from;                 // only this holder, if set
    std::string id_prefix;            // only contents whose id starts so, if set
    bool force = false;               // replace an existing destination
    bool share = true;                // publish the file under `name` once done (--no-share: false)
    TransferState state = TransferState::queued;
    std::string error;                // why, when state == failed (or the last problem while waiting)
    std::int64_t created_at = 0;      // unix seconds
    std::int64_t updated_at = 0;      // unix seconds
    bool operator==(const TransferRecord&) const = default;
};

// One row of the state database's transfers table (daemon/state/state_db.cpp
// has the schema) as SQLite gives it back: what a damaged or hand-edited
// database may hold, not yet checked.
struct TransferRow {
    std::int64_t id = 0;
    std::string name;
    std::string content_id;
    std::int64_t size = 0;
    std::int64_t piece_size = 0;
    std::vector<std::uint8_t> pieces;   // proto::pieces_blob
    std::vector<std::uint8_t> have;     // proto::Bitfield::bytes()
    std::string destination;
    std::string partial_path;
    std::string sources;                // JSON: [{"peer", "host", "port"}...]
    std::string from;
    std::string id_prefix;
    std::int64_t force = 0;
    std::string state;                  // to_string(TransferState)
    std::string error;
    std::int64_t created_at = 0;
    std::int64_t updated_at = 0;
    std::int64_t share = 1;             // schema version 2
};

// Sizes and times stored as SQLite integers are 0 to 2^62: anything else is
// damage. Null if `v` is one, else "WHAT is out of range".
inline constexpr std::int64_t kMaxStoredInteger = std::int64_t{1} << 62;
std::optional<std::string> check_stored_integer(std::int64_t v, const char* what);

// The row that stores `record`.
TransferRow to_row(const TransferRecord& record);
// The record a row holds, every field checked (names, content id, sizes and
// times from 0 to 2^62, the piece list against the content id, the bitfield
// against the piece count, absolute paths, sources, state); else why not, as
// "its size is out of range" (the caller names the row). read_transfer of
// to_row(r) gives r back for every record read_transfer accepted.
std::optional<std::string> read_transfer(const TransferRow& row, TransferRecord& out);

}  // namespace peershare::peerd
