// daemon/state/write_queue.cpp — see write_queue.hpp.
#include "daemon/state/write_queue.hpp"

#include <algorithm>
#include <utility>

namespace peershare::peerd {

namespace {

template <class... F>
struct Overload : F... {
    using F::operator()...;
};

// Which row a write touches: one key per publication, per transfer, and one
// for the transfer-id counter.
std::string row_key(const StateWrite& w) {
    return std::visit(Overload{
                          [](const PutPublication& p) { return "p:" + p.publication.name; },
                          [](const RemovePublication& p) { return "p:" + p.name; },
                          [](const PutTransfer& t) { return "t:" + std::to_string(t.record.id); },
                          [](const TransferProgress& t) { return "t:" + std::to_string(t.id); },
                          [](const RemoveTransfer& t) { return "t:" + std::to_string(t.id); },
                          [](const ReserveTransferIds&) { return std::string("n"); },
                      },
                      w);
}

bool is_urgent(const StateWrite& w) { return !std::holds_alternative<TransferProgress>(w); }

}  // namespace

void apply_progress(TransferRecord& record, const TransferProgress& progress) {
    record.have = progress.have;
    record.state = progress.state;
    record.error = progress.error;
    record.updated_at = progress.updated_at;
}

void WriteQueue::push(StateWrite write) {
    const auto key = row_key(write);
    auto it = row_.find(key);
    if (it == row_.end()) {
        urgent_ += is_urgent(write) ? 1 : 0;
        row_.emplace(key, writes_.size());
        writes_.push_back(std::move(write));
        return;
    }
    StateWrite& queued = writes_[it->second];
    if (const auto* progress = std::get_if<TransferProgress>(&write)) {
        if (auto* put = std::get_if<PutTransfer>(&queued)) return apply_progress(put->record, *progress);
        if (std::holds_alternative<RemoveTransfer>(queued)) return;   // the row is going away
    }
    if (const auto* reserve = std::get_if<ReserveTransferIds>(&write)) {
        auto& mine = std::get<ReserveTransferIds>(queued);
        mine.next = std::max(mine.next, reserve->next);
        return;
    }
    urgent_ -= is_urgent(queued) ? 1 : 0;
    urgent_ += is_urgent(write) ? 1 : 0;
    queued = std::move(write);
}

void WriteQueue::put_back(std::vector<StateWrite> failed) {
    WriteQueue merged;
    for (auto& w : failed) merged.push(std::move(w));
    for (auto& w : take()) merged.push(std::move(w));
    *this = std::move(merged);
}

std::vector<StateWrite> WriteQueue::take() {
    row_.clear();
    urgent_ = 0;
    return std::exchange(writes_, {});
}

}  // namespace peershare::peerd
