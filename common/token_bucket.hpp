// common/token_bucket.hpp — a token bucket (RFC 2697's single-rate bucket,
// without colours) over bytes, with an injected clock: the one rate limiter of
// peerd, for the upload server's sendfile chunks and the fetch engine's
// received bytes alike. Pure: no loop, no timers, no locks; owned by one thread
// (peerd's loop). Whoever waits for tokens asks wait_ns() and arms its own timer.
//
// Tokens are bytes. They accrue at rate() bytes per second up to burst(), which
// is kBurstDivisor-th of a second of the rate (100 ms) but at least kMinBurst,
// so a caller's natural unit (one libcurl write, one sendfile grant) is never
// split below it. Over any window of T seconds at most rate×T + burst() bytes
// pass: within 1 % of the rate over 10 s for rates of at least 164 kB/s, within
// 5 % for at least 33 kB/s; below that, kMinBurst dominates the error. A new
// bucket starts full. Fractions of a token are carried, never lost, so the
// long-run rate is exact.
#pragma once

#include <cstdint>
#include <functional>

namespace peershare::common {

class TokenBucket {
public:
    // Monotonic nanoseconds (uv_hrtime, CLOCK_MONOTONIC); never goes back.
    using Clock = std::function<std::uint64_t()>;

    static constexpr std::uint64_t kBurstDivisor = 10;         // burst = rate / 10: 100 ms
    static constexpr std::uint64_t kMinBurst = 16u << 10;      // bytes; CURL_MAX_WRITE_SIZE

    // rate_bytes_per_s: 0 = unlimited (take grants everything, wait_ns is 0),
    // at most proto::kMaxRate (asserted).
    // `now` is called on every take, give_back, wait_ns and set_rate.
    TokenBucket(std::uint64_t rate_bytes_per_s, Clock now);

    // Grants min(want, tokens available now) bytes, possibly 0, and removes
    // them from the bucket. Unlimited: grants `want`.
    std::uint64_t take(std::uint64_t want);

    // Returns bytes granted by take() but not used (a short send); the bucket
    // never holds more than burst(). No effect when unlimited.
    void give_back(std::uint64_t unused);

    // Nanoseconds until min(want, burst()) tokens are available, 0 if now:
    // after waiting exactly that long, take() of that amount grants all of it
    // (if nobody else took tokens meanwhile). Always 0 when unlimited.
    std::uint64_t wait_ns(std::uint64_t want) const;

    // A new rate (0 = unlimited), from now on: tokens earned at the old rate
    // are kept up to the new burst(); a bucket that was unlimited starts full.
    void set_rate(std::uint64_t rate_bytes_per_s);

    std::uint64_t rate() const { return rate_; }
    std::uint64_t burst() const { return burst_; }   // 0 when unlimited

private:
    static std::uint64_t burst_of(std::uint64_t rate);
    // Tokens and carry as of now, without changing the bucket.
    struct Level {
        std::uint64_t tokens;
        std::uint64_t carry;   // token-nanoseconds below one token: 0 ≤ carry < 1e9
    };
    Level level_at(std::uint64_t now) const;
    void refill();

    Clock now_;
    std::uint64_t rate_;
    std::uint64_t burst_;
    std::uint64_t tokens_;
    std::uint64_t carry_ = 0;
    std::uint64_t at_ns_;   // when tokens_ and carry_ were last brought up to date
};

}  // namespace peershare::common
