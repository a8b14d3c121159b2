// daemon/state/write_queue.hpp — the writes peerd makes to its state
// database, and the queue that holds them between the loop and the worker
// that applies them. Pure logic, no I/O: later writes to the same row replace
// (or, for transfer progress, merge into) earlier ones still queued, so the
// queue holds at most one write per row and applying it in order leaves the
// same rows as applying every write ever pushed.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "daemon/catalog.hpp"
#include "daemon/transfer_record.hpp"
#include "proto/bitfield.hpp"

namespace peershare::peerd {

struct PutPublication {         // insert or replace the row of publication.name
    Publication publication;
};
struct RemovePublication {
    std::string name;
};
struct PutTransfer {            // insert or replace the row of record.id
    TransferRecord record;
};
struct TransferProgress {       // the frequent update of one transfer's row
    std::uint64_t id = 0;
    proto::Bitfield have;
    TransferState state = TransferState::running;
    std::string error;
    std::int64_t updated_at = 0;   // unix seconds
};
struct RemoveTransfer {
    std::uint64_t id = 0;
};
struct ReserveTransferIds {     // no transfer id below `next` is handed out again
    std::uint64_t next = 1;
};

using StateWrite =
    std::variant<PutPublication, RemovePublication, PutTransfer, TransferProgress, RemoveTransfer, ReserveTransferIds>;

// Applies a progress update to a whole record (what the database does to the row).
void apply_progress(TransferRecord& record, const TransferProgress& progress);

class WriteQueue {
public:
    // Queues `write`; one already queued for the same row is replaced in its
    // place, or has the progress merged into it (a progress for a transfer
    // whose removal is queued is dropped; ReserveTransferIds keeps the larger).
    void push(StateWrite write);
    // Gives a batch that could not be written back, ahead of everything
    // queued since (which, being newer, wins for the same row).
    void put_back(std::vector<StateWrite> failed);
    // Everything queued, oldest row first; the queue is empty after.
    std::vector<StateWrite> take();

    bool empty() const { return writes_.empty(); }
    std::size_t size() const { return writes_.size(); }
    // True when something besides transfer progress is queued: progress alone
    // may wait to be batched, anything else is written at once.
    bool urgent() const { return urgent_ > 0; }

private:
    std::vector<StateWrite> writes_;
    std::map<std::string, std::size_t, std::less<>> row_;   // row key → index in writes_
    std::size_t urgent_ = 0;
};

}  // namespace peershare::peerd
