// daemon/transfer_record.hpp — what peerd persists about one transfer (a
// download it owns), so that it survives Ctrl-C in peerctl, a stop, SIGKILL
// or a reboot (docs/design.md, "The life of a transfer"). One row per
// transfer in the state database (daemon/state/). Plain data, no I/O.
#pragma once

#include <cstdint>
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
};

}  // namespace peershare::peerd
