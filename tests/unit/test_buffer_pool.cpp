// tests/unit/test_buffer_pool.cpp — the daemon-wide budget for piece buffers
// (daemon/fetch/buffer_pool.hpp).
#include <doctest/doctest.h>

#include <cstdint>

#include "daemon/fetch/buffer_pool.hpp"

using peershare::peerd::BufferPool;
using peershare::peerd::kDirectAlign;

TEST_CASE("buffer pool: buffers are aligned and counted while out") {
    BufferPool pool(1 << 20);
    auto a = pool.take(1000, 0);
    REQUIRE(a);
    CHECK(reinterpret_cast<std::uintptr_t>(a.get()) % kDirectAlign == 0);
    CHECK(a.size == 1000);
    CHECK(pool.used() == 1000);
    CHECK(pool.budget() == 1 << 20);
    pool.give_back(std::move(a));
    CHECK(pool.used() == 0);
    pool.give_back({});  // an empty buffer is ignored
    CHECK(pool.used() == 0);
}

TEST_CASE("buffer pool: past the budget only a client holding none gets one") {
    BufferPool pool(3 * 4096);
    auto a = pool.take(4096, 0);
    auto b = pool.take(4096, 1);
    auto c = pool.take(4096, 2);
    REQUIRE((a && b && c));
    CHECK_FALSE(pool.take(4096, 3));  // the first client: over budget
    auto d = pool.take(4096, 0);      // another client with none: always
    REQUIRE(d);
    CHECK(pool.used() == 4 * 4096);
    pool.give_back(std::move(d));
    pool.give_back(std::move(c));
    CHECK(pool.take(4096, 2));
}

TEST_CASE("buffer pool: a buffer given back is reused, and kept only within the budget") {
    BufferPool pool(2 * 8192);
    auto a = pool.take(8192, 0);
    auto* address = a.get();
    pool.give_back(std::move(a));
    auto again = pool.take(8192, 0);
    CHECK(again.get() == address);
    pool.give_back(std::move(again));
    pool.set_budget(4096);  // no room to keep it any more: freed
    CHECK(pool.used() == 0);
    auto small = pool.take(4096, 1);
    CHECK(small);
}
