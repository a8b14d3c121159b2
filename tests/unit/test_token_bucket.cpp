// tests/unit/test_token_bucket.cpp — the token bucket on a fake clock: the
// long-run rate, the burst bound, a rate changed mid-way, unlimited, and
// wait_ns to the nanosecond.
#include <doctest/doctest.h>

#include <cstdint>

#include "common/token_bucket.hpp"

using peershare::common::TokenBucket;

namespace {

constexpr std::uint64_t kSecond = 1'000'000'000;

struct FakeClock {
    std::uint64_t ns = 5 * kSecond;   // not 0: the bucket must not assume it starts at 0
    TokenBucket::Clock clock() {
        return [this] { return ns; };
    }
};

// A sender that always wants `chunk` bytes: it waits as long as wait_ns says,
// then takes. Returns the bytes taken until `seconds` have passed.
std::uint64_t send_for(TokenBucket& bucket, FakeClock& c, std::uint64_t chunk, double seconds) {
    const std::uint64_t end = c.ns + static_cast<std::uint64_t>(seconds * kSecond);
    std::uint64_t total = 0;
    for (int guard = 0; guard < 10'000'000; ++guard) {
        const std::uint64_t wait = bucket.wait_ns(chunk);
        if (c.ns + wait > end) break;
        c.ns += wait;
        const std::uint64_t got = bucket.take(chunk);
        REQUIRE(got > 0);
        total += got;
    }
    c.ns = end;
    return total;
}

}  // namespace

TEST_CASE("token bucket: the long-run rate is the configured one within 1 %") {
    for (std::uint64_t rate : {20'000ull, 1'000'000ull, 123'456'789ull}) {
        for (std::uint64_t chunk : {1'000ull, 16'384ull, 4'000'000ull}) {
            if (rate / chunk * 100 > 2'000'000) continue;   // a bounded number of steps
            CAPTURE(rate);
            CAPTURE(chunk);
            FakeClock c;
            TokenBucket bucket(rate, c.clock());
            const double seconds = 100;
            const double sent = static_cast<double>(send_for(bucket, c, chunk, seconds));
            const double expected = static_cast<double>(rate) * seconds;
            CHECK(sent >= expected * 0.99);
            CHECK(sent <= expected * 1.01);
            // Never more than the rate plus one burst, the bucket's promise.
            CHECK(sent <= expected + static_cast<double>(bucket.burst()));
        }
    }
}

TEST_CASE("token bucket: over 10 s, within 5 % from 33 kB/s up, within 1 % from 164 kB/s up") {
    for (std::uint64_t rate : {33'000ull, 164'000ull, 20'000'000ull}) {
        CAPTURE(rate);
        FakeClock c;
        TokenBucket bucket(rate, c.clock());   // starts full: the worst case
        const double sent = static_cast<double>(send_for(bucket, c, 16'384, 10));
        const double bound = rate >= 164'000 ? 0.01 : 0.05;
        CHECK(sent <= static_cast<double>(rate) * 10 * (1 + bound));
        CHECK(sent >= static_cast<double>(rate) * 10 * (1 - bound));
    }
}

TEST_CASE("token bucket: the burst (100 ms of the rate, at least 16 KiB) caps what idling earns") {
    FakeClock c;
    TokenBucket fast(50'000'000, c.clock());
    CHECK(fast.burst() == 5'000'000);
    TokenBucket slow(1'000, c.clock());
    CHECK(slow.burst() == TokenBucket::kMinBurst);

    // A new bucket is full; an hour idle earns no more than the burst.
    CHECK(fast.take(1ull << 40) == 5'000'000);
    CHECK(fast.take(1) == 0);
    c.ns += 3600 * kSecond;
    CHECK(fast.take(1ull << 40) == 5'000'000);

    SUBCASE("give_back never fills past the burst") {
        fast.give_back(1'000);
        CHECK(fast.take(1ull << 40) == 1'000);
        c.ns += kSecond;   // full again
        fast.give_back(1'000'000);
        CHECK(fast.take(1ull << 40) == 5'000'000);
    }
    SUBCASE("a partial grant takes what is there") {
        c.ns += kSecond / 100;   // 10 ms: 500,000 bytes
        CHECK(fast.take(400'000) == 400'000);
        CHECK(fast.take(400'000) == 100'000);
        CHECK(fast.take(400'000) == 0);
    }
}

TEST_CASE("token bucket: set_rate mid-way applies from then on") {
    FakeClock c;
    TokenBucket bucket(1'000'000, c.clock());
    const auto first = static_cast<double>(send_for(bucket, c, 16'384, 20));
    bucket.set_rate(5'000'000);
    CHECK(bucket.rate() == 5'000'000);
    CHECK(bucket.burst() == 500'000);
    const auto second = static_cast<double>(send_for(bucket, c, 16'384, 20));
    CHECK(first == doctest::Approx(20'000'000).epsilon(0.01));
    CHECK(second == doctest::Approx(100'000'000).epsilon(0.01));

    SUBCASE("lowering the rate lowers the burst at once") {
        c.ns += kSecond;   // full at 500,000
        bucket.set_rate(200'000);
        CHECK(bucket.take(1ull << 40) == 20'000);
    }
    SUBCASE("unlimited, then limited again: the bucket starts full") {
        bucket.set_rate(0);
        CHECK(bucket.take(1ull << 40) == 1ull << 40);
        bucket.set_rate(300'000);
        CHECK(bucket.take(1ull << 40) == 30'000);
        CHECK(bucket.wait_ns(30'000) == kSecond / 10);
    }
}

TEST_CASE("token bucket: 0 is unlimited") {
    FakeClock c;
    TokenBucket bucket(0, c.clock());
    CHECK(bucket.rate() == 0);
    CHECK(bucket.burst() == 0);
    CHECK(bucket.take(1ull << 50) == 1ull << 50);
    CHECK(bucket.take(1ull << 50) == 1ull << 50);
    CHECK(bucket.wait_ns(1ull << 50) == 0);
    bucket.give_back(123);   // no effect, no overflow
    CHECK(bucket.wait_ns(1) == 0);
}

TEST_CASE("token bucket: wait_ns is exact to the nanosecond") {
    FakeClock c;
    TokenBucket bucket(1'000, c.clock());
    REQUIRE(bucket.take(1ull << 40) == TokenBucket::kMinBurst);   // empty now
    CHECK(bucket.wait_ns(0) == 0);
    CHECK(bucket.wait_ns(1'000) == kSecond);
    CHECK(bucket.wait_ns(1) == kSecond / 1'000);
    // More than the burst: the time until the burst, the most a take can get.
    CHECK(bucket.wait_ns(1ull << 40) == TokenBucket::kMinBurst * kSecond / 1'000);

    c.ns += kSecond - 1;
    CHECK(bucket.wait_ns(1'000) == 1);
    c.ns += 1;
    CHECK(bucket.wait_ns(1'000) == 0);
    CHECK(bucket.take(1'000) == 1'000);

    SUBCASE("fractions of a token carry over: 3 B/s gives 3 tokens in exactly 1 s") {
        bucket.set_rate(3);
        REQUIRE(bucket.take(1) == 0);   // still empty
        std::uint64_t waited = 0;
        for (int i = 0; i < 3; ++i) {
            const auto w = bucket.wait_ns(1);
            CHECK(w > 0);
            c.ns += w;
            waited += w;
            CHECK(bucket.take(1) == 1);
        }
        CHECK(waited == kSecond);
    }
    SUBCASE("one nanosecond early is not enough") {
        const auto w = bucket.wait_ns(500);
        c.ns += w - 1;
        CHECK(bucket.take(500) == 499);
    }
}

TEST_CASE("token bucket: rates up to 1 TB/s and long idles do not overflow") {
    FakeClock c;
    TokenBucket bucket(1'000'000'000'000, c.clock());
    CHECK(bucket.take(1ull << 62) == 100'000'000'000);
    c.ns += 1000ull * 24 * 3600 * kSecond;   // 1,000 days
    CHECK(bucket.take(1ull << 62) == 100'000'000'000);
    CHECK(bucket.wait_ns(1'000'000'000'000) == kSecond / 10);
}
