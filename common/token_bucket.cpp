// common/token_bucket.cpp — the arithmetic of the token bucket. Products of a
// rate and a time can pass 2^64 (1 TB/s × 20 s), so they are taken in 128 bits.
#include "common/token_bucket.hpp"

#include <algorithm>
#include <cassert>

#include "proto/limits.hpp"

namespace peershare::common {
namespace {

using Wide = unsigned __int128;
constexpr std::uint64_t kNsPerSecond = 1'000'000'000;

}  // namespace

TokenBucket::TokenBucket(std::uint64_t rate_bytes_per_s, Clock now)
    : now_(std::move(now)),
      rate_(rate_bytes_per_s),
      burst_(burst_of(rate_bytes_per_s)),
      tokens_(burst_),
      at_ns_(now_()) {
    assert(rate_ <= proto::kMaxRate);
}

std::uint64_t TokenBucket::burst_of(std::uint64_t rate) {
    return rate == 0 ? 0 : std::max(rate / kBurstDivisor, kMinBurst);
}

TokenBucket::Level TokenBucket::level_at(std::uint64_t now) const {
    if (tokens_ >= burst_) return {burst_, 0};   // a full bucket earns nothing more
    if (rate_ == 0 || now <= at_ns_) return {tokens_, carry_};
    const Wide earned = Wide{rate_} * (now - at_ns_) + carry_;   // token-nanoseconds
    const Wide tokens = Wide{tokens_} + earned / kNsPerSecond;
    if (tokens >= burst_) return {burst_, 0};
    return {static_cast<std::uint64_t>(tokens), static_cast<std::uint64_t>(earned % kNsPerSecond)};
}

void TokenBucket::refill() {
    const std::uint64_t now = now_();
    const Level level = level_at(now);
    tokens_ = level.tokens;
    carry_ = level.carry;
    at_ns_ = std::max(at_ns_, now);
}

std::uint64_t TokenBucket::take(std::uint64_t want) {
    if (rate_ == 0) return want;
    refill();
    const std::uint64_t granted = std::min(want, tokens_);
    tokens_ -= granted;
    return granted;
}

void TokenBucket::give_back(std::uint64_t unused) {
    if (rate_ == 0 || unused == 0) return;
    refill();
    tokens_ = unused >= burst_ - tokens_ ? burst_ : tokens_ + unused;
    if (tokens_ == burst_) carry_ = 0;
}

std::uint64_t TokenBucket::wait_ns(std::uint64_t want) const {
    if (rate_ == 0) return 0;
    const std::uint64_t now = now_();
    const Level level = level_at(now);
    const std::uint64_t target = std::min(want, burst_);
    if (level.tokens >= target) return 0;
    // The least d with rate·d + carry ≥ missing·1e9 (see level_at).
    const Wide needed = Wide{target - level.tokens} * kNsPerSecond - level.carry;
    return static_cast<std::uint64_t>((needed + rate_ - 1) / rate_);
}

void TokenBucket::set_rate(std::uint64_t rate_bytes_per_s) {
    assert(rate_bytes_per_s <= proto::kMaxRate);
    refill();
    const bool was_unlimited = rate_ == 0;
    rate_ = rate_bytes_per_s;
    burst_ = burst_of(rate_);
    tokens_ = was_unlimited ? burst_ : std::min(tokens_, burst_);
    if (tokens_ == burst_) carry_ = 0;
}

}  // namespace peershare::common
