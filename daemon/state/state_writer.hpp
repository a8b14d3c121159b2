// daemon/state/state_writer.hpp — the loop's side of the state database:
// every write is queued on the loop and applied by libuv's worker pool, never
// on the loop. Writes are applied in the order given, at most one batch (one
// transaction) in flight; writes queued meanwhile form the next batch, and a
// later write to a row still queued replaces the earlier one (WriteQueue), so
// 10,000 publishes in a burst cost a few transactions, not 10,000 fsyncs.
// Transfer progress alone waits up to kProgressDelay to be batched (a few
// writes a second however many pieces arrive); anything else is written at
// once. A failed batch is reported on the loop (on_failure) and retried after
// a back-off, newer writes to the same rows winning.
//
// Owned by the loop thread; every member function is called there. The
// database (StateDb) is shared with the work in flight, which may outlive the
// writer; the writer's destructor flushes.
#pragma once

#include <uv.h>

#include <chrono>
#include <condition_variable>
#include <cassert>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/uv.hpp"
#include "daemon/state/state_db.hpp"
#include "daemon/state/write_queue.hpp"

namespace peershare::peerd {

inline constexpr std::chrono::milliseconds kProgressDelay{250};
inline constexpr std::chrono::milliseconds kFirstRetry{1'000};
inline constexpr std::chrono::milliseconds kLastRetry{60'000};

class StateWriter {
public:
    // Called on the loop with the error of a batch that could not be written
    // (it is retried), or, from flush(), of one that could not be written at all.
    using FailureHandler = std::function<void(const proto::Error&)>;

    // `next_transfer_id` is db->first_free_transfer_id() (read at start-up).
    StateWriter(uv_loop_t* loop, std::shared_ptr<StateDb> db, std::uint64_t next_transfer_id,
                FailureHandler on_failure);
    ~StateWriter();   // flush()
    StateWriter(const StateWriter&) = delete;
    StateWriter& operator=(const StateWriter&) = delete;

    // ---- publications ----
    void put_publication(const Publication& p);        // insert or replace by p.name
    void remove_publication(const std::string& name);

    // ---- transfers ----
    // The records stored, for start-up (synchronous, on the caller's thread);
    // a row that is not a valid record is skipped with one line in `skipped`.
    // open_state() has already read (and logged) them into OpenedState::transfers.
    proto::Result<LoadedRows<TransferRecord>> load_transfers() { return db_->load_transfers(); }
    void put_transfer(const TransferRecord& record);  // insert or replace by record.id
    // The frequent one: `have` must hold record.pieces.size() bits. Batched
    // (kProgressDelay); updates nothing if the transfer has no row.
    void put_transfer_progress(std::uint64_t id, const proto::Bitfield& have, TransferState state,
                               const std::string& error);
    void remove_transfer(std::uint64_t id);
    // A transfer id never handed out before, by this process or an earlier
    // one: the counter is written ahead of any record that uses the id.
    std::uint64_t next_transfer_id();

    // Calls `done` on the loop once every write queued so far is committed
    // (at once if it is already), with no error: a reply that promises
    // "saved" waits for it. If the batch holding them fails (a full disk, a
    // read-only file system), `done` is called at once with that batch's
    // error, not held until a retry works: the writes stay queued and are
    // retried, and the caller decides what to tell its client. (While
    // earlier batches keep failing, the next one is tried only after the
    // back-off, kFirstRetry doubling up to kLastRetry.)
    using WrittenFn = std::function<void(const std::optional<proto::Error>&)>;
    void when_written(WrittenFn done);

    // Blocks until everything queued is written (or has failed, reported to
    // on_failure): for a clean stop, when the loop is about to end.
    void flush();

    std::size_t queued() const { return queue_.size(); }

private:
    // What the loop and the worker thread share; outlives the writer while work is in flight.
    struct Shared {
        std::shared_ptr<StateDb> db;
        std::mutex mutex;
        std::condition_variable idle;
        bool in_flight = false;                // guarded by mutex
        std::vector<StateWrite> failed;        // guarded: a batch that did not commit
        std::optional<proto::Error> error;     // guarded: why
        StateWriter* owner = nullptr;          // loop thread only; null once the writer is gone
    };
    void queue(StateWrite write);
    // Starts the next batch now, or arms the timer (progress only, back-off).
    void schedule();
    void start_batch();
    // On the loop: a failed batch back in the queue, the failure reported.
    // True if it did (and reported it).
    bool take_failure();
    void finished();   // the after-work callback of a batch
    void written(std::uint64_t up_to);   // writes up to that sequence number are committed
    // Calls the waiters for writes up to `up_to` with `error` (none: committed).
    void settle(std::uint64_t up_to, const std::optional<proto::Error>& error);

    uv_loop_t* loop_;
    std::shared_ptr<StateDb> db_;
    std::shared_ptr<Shared> shared_;
    FailureHandler on_failure_;
    WriteQueue queue_;
    common::Timer timer_;
    bool timer_armed_ = false;
    bool batch_running_ = false;   // from start_batch() until its after-work callback
    std::chrono::milliseconds retry_{0};   // 0 unless the last batch failed
    std::uint64_t next_transfer_id_;
    // Every write pushed gets the next sequence number; a batch holds all up
    // to the one current when it was taken.
    std::uint64_t pushed_ = 0;
    std::uint64_t in_batch_ = 0;   // the last sequence number of the batch in flight
    std::uint64_t written_ = 0;    // every write up to here is committed
    std::multimap<std::uint64_t, WrittenFn> waiting_;   // by the sequence number awaited
};

}  // namespace peershare::peerd
