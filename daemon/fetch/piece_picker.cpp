// daemon/fetch/piece_picker.cpp — see piece_picker.hpp.
#include "daemon/fetch/piece_picker.hpp"

#include <algorithm>
#include <cassert>

namespace peershare::peerd {

namespace {
constexpr std::uint64_t kNowhere = UINT64_MAX;
constexpr unsigned kRandomTries = 8;  // random draws in a bucket before a scan
}  // namespace

PiecePicker::PiecePicker(std::uint64_t pieces, std::uint64_t endgame_after_ms, Random random)
    : endgame_after_ms_(endgame_after_ms),
      random_(std::move(random)),
      states_(pieces, State::missing),
      availability_(pieces, 0),
      buckets_(1),
      position_(pieces, kNowhere) {
    assert(random_);
    for (std::uint64_t i = 0; i < pieces; ++i) to_bucket(i);
}

bool PiecePicker::wants_more() const {
    if (!started_.empty()) return true;
    return std::any_of(buckets_.begin(), buckets_.end(), [](const auto& b) { return !b.empty(); });
}

std::size_t PiecePicker::add_source(proto::Bitfield has) {
    assert(has.size() == size());
    for (std::uint64_t i = 0; i < size(); ++i) {
        if (has.test(i)) set_availability(i, availability_[i] + 1);
    }
    has_.push_back(std::move(has));
    live_.push_back(true);
    return has_.size() - 1;
}

void PiecePicker::drop_source(std::size_t source) {
    assert(source < live_.size() && live_[source]);
    assert(std::none_of(requests_.begin(), requests_.end(),
                        [source](const Request& r) { return r.source == source; }));
    live_[source] = false;
    for (std::uint64_t i = 0; i < size(); ++i) {
        if (has_[source].test(i)) set_availability(i, availability_[i] - 1);
    }
}

void PiecePicker::update_source(std::size_t source, proto::Bitfield has) {
    assert(source < live_.size() && live_[source] && has.size() == size());
    auto& had = has_[source];
    for (std::uint64_t i = 0; i < size(); ++i) {
        if (had.test(i) == has.test(i)) continue;
        set_availability(i, has.test(i) ? availability_[i] + 1 : availability_[i] - 1);
    }
    had = std::move(has);
}

void PiecePicker::lacks(std::size_t source, std::uint64_t piece) {
    assert(source < live_.size() && live_[source]);
    if (!has_[source].test(piece)) return;
    has_[source].reset(piece);
    set_availability(piece, availability_[piece] - 1);
}

bool PiecePicker::has_wanted(std::size_t source) const {
    const auto& has = has_[source];
    for (const auto piece : started_)
        if (has.test(piece)) return true;
    for (std::size_t a = 1; a < buckets_.size(); ++a)
        for (const auto piece : buckets_[a])
            if (has.test(piece)) return true;
    return false;
}

void PiecePicker::check(std::uint64_t piece) {
    assert(states_.at(piece) == State::missing && position_[piece] != kNowhere);
    from_bucket(piece);
    states_[piece] = State::checking;
}

void PiecePicker::checked(std::uint64_t piece, bool good) {
    assert(states_.at(piece) == State::checking);
    if (good) {
        states_[piece] = State::done;
        ++done_;
    } else {
        put_back(piece);
    }
}

std::optional<std::uint64_t> PiecePicker::pick(std::size_t source, std::uint64_t now_ms) {
    assert(source < live_.size() && live_[source]);
    auto piece = pick_started(source);
    if (!piece) piece = pick_rarest(source);
    if (!piece) return pick_endgame(source, now_ms);
    states_[*piece] = State::active;
    requests_.push_back({*piece, source, now_ms});
    return piece;
}

std::optional<std::uint64_t> PiecePicker::pick_started(std::size_t source) {
    for (auto it = started_.begin(); it != started_.end(); ++it) {
        if (usable(*it, source)) {
            const auto piece = *it;
            started_.erase(it);
            return piece;
        }
    }
    return std::nullopt;
}

std::optional<std::uint64_t> PiecePicker::pick_rarest(std::size_t source) {
    const auto& has = has_[source];
    for (std::size_t a = 1; a < buckets_.size(); ++a) {
        auto& bucket = buckets_[a];
        if (bucket.empty()) continue;
        std::optional<std::uint64_t> found;
        for (unsigned t = 0; t < kRandomTries && !found; ++t) {
            const auto piece = bucket[random_(bucket.size())];
            if (has.test(piece)) found = piece;
        }
        if (!found) {
            const auto start = random_(bucket.size());
            for (std::size_t k = 0; k < bucket.size() && !found; ++k) {
                const auto piece = bucket[(start + k) % bucket.size()];
                if (has.test(piece)) found = piece;
            }
        }
        if (found) {
            from_bucket(*found);
            return found;
        }
    }
    return std::nullopt;
}

std::optional<std::uint64_t> PiecePicker::pick_endgame(std::size_t source, std::uint64_t now_ms) {
    for (const auto& r : requests_) {  // oldest first
        if (r.source == source || now_ms - r.started_ms < endgame_after_ms_) continue;
        if (requests_for(r.piece) != 1 || !usable(r.piece, source)) continue;
        const auto piece = r.piece;
        requests_.push_back({piece, source, now_ms});
        return piece;
    }
    return std::nullopt;
}

void PiecePicker::request_ended(std::uint64_t piece, std::size_t source) {
    end_request(piece, source);
    if (states_.at(piece) == State::active && requests_for(piece) == 0) put_back(piece);
}

bool PiecePicker::received(std::uint64_t piece, std::size_t source,
                           std::vector<std::size_t>& others) {
    end_request(piece, source);
    others.clear();
    if (states_.at(piece) != State::active) return false;
    for (auto it = requests_.begin(); it != requests_.end();) {
        if (it->piece == piece) {
            others.push_back(it->source);
            it = requests_.erase(it);
        } else {
            ++it;
        }
    }
    states_[piece] = State::verifying;
    return true;
}

void PiecePicker::verified(std::uint64_t piece) {
    assert(states_.at(piece) == State::verifying);
    states_[piece] = State::done;
    ++done_;
}

void PiecePicker::rejected(std::uint64_t piece, std::size_t source) {
    assert(states_.at(piece) == State::verifying);
    rejected_.insert({piece, source});
    put_back(piece);
}

std::size_t PiecePicker::requests_for(std::uint64_t piece) const {
    return static_cast<std::size_t>(std::count_if(
        requests_.begin(), requests_.end(), [piece](const Request& r) { return r.piece == piece; }));
}

std::vector<std::uint64_t> PiecePicker::requests_of(std::size_t source) const {
    std::vector<std::uint64_t> out;
    for (const auto& r : requests_) {
        if (r.source == source) out.push_back(r.piece);
    }
    return out;
}

// A source may have a piece it once sent wrong only when every other live
// source that has it did too (then each retry costs a strike, so this ends).
bool PiecePicker::usable(std::uint64_t piece, std::size_t source) const {
    if (!has_[source].test(piece)) return false;
    if (!rejected_.contains({piece, source})) return true;
    for (std::size_t j = 0; j < has_.size(); ++j) {
        if (live_[j] && has_[j].test(piece) && !rejected_.contains({piece, j})) return false;
    }
    return true;
}

void PiecePicker::put_back(std::uint64_t piece) {
    states_[piece] = State::missing;
    started_.push_back(piece);
}

void PiecePicker::to_bucket(std::uint64_t piece) {
    const auto a = availability_[piece];
    if (buckets_.size() <= a) buckets_.resize(a + 1);
    position_[piece] = buckets_[a].size();
    buckets_[a].push_back(piece);
}

void PiecePicker::from_bucket(std::uint64_t piece) {
    auto& bucket = buckets_[availability_[piece]];
    const auto at = position_[piece];
    assert(at != kNowhere && bucket[at] == piece);
    bucket[at] = bucket.back();
    position_[bucket[at]] = at;
    bucket.pop_back();
    position_[piece] = kNowhere;
}

void PiecePicker::set_availability(std::uint64_t piece, std::uint32_t availability) {
    const bool in_bucket = position_[piece] != kNowhere;
    if (in_bucket) from_bucket(piece);
    availability_[piece] = availability;
    if (in_bucket) to_bucket(piece);
}

void PiecePicker::end_request(std::uint64_t piece, std::size_t source) {
    const auto it = std::find_if(requests_.begin(), requests_.end(), [&](const Request& r) {
        return r.piece == piece && r.source == source;
    });
    assert(it != requests_.end());
    requests_.erase(it);
}

}  // namespace peershare::peerd
