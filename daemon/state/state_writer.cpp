// daemon/state/state_writer.cpp — see state_writer.hpp.
#include "daemon/state/state_writer.hpp"

#include <algorithm>
#include <ctime>

#include "common/pool.hpp"

namespace peershare::peerd {

StateWriter::StateWriter(uv_loop_t* loop, std::shared_ptr<StateDb> db, std::uint64_t next_transfer_id,
                         FailureHandler on_failure)
    : loop_(loop), db_(std::move(db)), shared_(std::make_shared<Shared>()), on_failure_(std::move(on_failure)),
      timer_(loop), next_transfer_id_(next_transfer_id) {
    assert(next_transfer_id_ >= 1);
    shared_->db = db_;
    shared_->owner = this;
    timer_.get()->data = this;
}

StateWriter::~StateWriter() {
    flush();
    shared_->owner = nullptr;   // a batch still in the pool finds nobody to tell
}

void StateWriter::put_publication(const Publication& p) { queue(PutPublication{p}); }

void StateWriter::remove_publication(const std::string& name) { queue(RemovePublication{name}); }

void StateWriter::put_transfer(const TransferRecord& record) {
    assert(record.id > 0 && record.id < next_transfer_id_);
    queue(PutTransfer{record});
}

void StateWriter::put_transfer_progress(std::uint64_t id, const proto::Bitfield& have, TransferState state,
                                        const std::string& error) {
    queue(TransferProgress{id, have, state, error, static_cast<std::int64_t>(std::time(nullptr))});
}

void StateWriter::remove_transfer(std::uint64_t id) { queue(RemoveTransfer{id}); }

std::uint64_t StateWriter::next_transfer_id() {
    const auto id = next_transfer_id_++;
    queue(ReserveTransferIds{next_transfer_id_});
    return id;
}

void StateWriter::queue(StateWrite write) {
    ++pushed_;
    queue_.push(std::move(write));
    schedule();
}

void StateWriter::schedule() {
    if (queue_.empty() || batch_running_) return;
    const auto delay = retry_.count() > 0 ? retry_ : queue_.urgent() ? std::chrono::milliseconds{0} : kProgressDelay;
    if (delay.count() == 0) {
        if (timer_armed_) uv_timer_stop(timer_.get());
        timer_armed_ = false;
        return start_batch();
    }
    if (timer_armed_) return;
    timer_armed_ = true;
    uv_timer_start(
        timer_.get(),
        [](uv_timer_t* t) {
            auto* self = static_cast<StateWriter*>(t->data);
            if (!self) return;
            self->timer_armed_ = false;
            if (!self->batch_running_ && !self->queue_.empty()) self->start_batch();
        },
        static_cast<std::uint64_t>(delay.count()), 0);
}

void StateWriter::start_batch() {
    assert(!batch_running_ && !queue_.empty());
    auto writes = std::make_shared<std::vector<StateWrite>>(queue_.take());
    in_batch_ = pushed_;
    {
        std::lock_guard lock(shared_->mutex);
        shared_->in_flight = true;
    }
    batch_running_ = true;
    const int rc = common::run_in_pool(
        loop_,
        [shared = shared_, writes] {
            auto ok = shared->db->apply(*writes);
            std::lock_guard lock(shared->mutex);
            if (!ok) {
                shared->failed = std::move(*writes);
                shared->error = ok.error();
            }
            shared->in_flight = false;
            shared->idle.notify_all();
        },
        [shared = shared_] {
            if (auto* owner = shared->owner) owner->finished();
        });
    assert(rc == 0);   // uv_queue_work fails only for a null work callback
    (void)rc;
}

bool StateWriter::take_failure() {
    std::vector<StateWrite> failed;
    std::optional<proto::Error> error;
    {
        std::lock_guard lock(shared_->mutex);
        failed = std::exchange(shared_->failed, {});
        error = std::exchange(shared_->error, std::nullopt);
    }
    if (!error) return false;
    queue_.put_back(std::move(failed));
    retry_ = retry_.count() == 0 ? kFirstRetry : std::min(2 * retry_, kLastRetry);
    if (on_failure_) on_failure_(*error);
    settle(in_batch_, error);   // those waiting on this batch learn now, not at a retry
    return true;
}

void StateWriter::finished() {
    batch_running_ = false;
    if (!take_failure()) {
        retry_ = std::chrono::milliseconds{0};
        written(in_batch_);
    }
    schedule();
}

void StateWriter::when_written(WrittenFn done) {
    if (written_ >= pushed_) return done(std::nullopt);
    waiting_.emplace(pushed_, std::move(done));
}

void StateWriter::written(std::uint64_t up_to) {
    written_ = std::max(written_, up_to);
    settle(written_, std::nullopt);
}

void StateWriter::settle(std::uint64_t up_to, const std::optional<proto::Error>& error) {
    while (!waiting_.empty() && waiting_.begin()->first <= up_to) {
        auto done = std::move(waiting_.begin()->second);
        waiting_.erase(waiting_.begin());
        done(error);   // may queue more writes
    }
}

void StateWriter::flush() {
    {
        std::unique_lock lock(shared_->mutex);
        shared_->idle.wait(lock, [&] { return !shared_->in_flight; });
    }
    take_failure();
    if (!queue_.empty()) {
        if (timer_armed_) uv_timer_stop(timer_.get());
        timer_armed_ = false;
        if (auto ok = db_->apply(queue_.take()); !ok) {
            if (on_failure_) on_failure_(ok.error());
            settle(pushed_, ok.error());
        }
    }
    // Written or failed for good: nobody waits past a flush.
    written(pushed_);
}

}  // namespace peershare::peerd
