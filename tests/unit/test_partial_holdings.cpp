// tests/unit/test_partial_holdings.cpp — several transfers of one content in
// one peerd are one partial holding, served and announced once
// (daemon/partial_holdings.hpp): plain data, no I/O.
#include <doctest/doctest.h>

#include "daemon/partial_holdings.hpp"
#include "daemon/share_fetched.hpp"
#include "tests/unit/state_fixtures.hpp"

using namespace peershare;
using namespace peershare::peerd;

namespace {

// Transfer `id` of one 20-piece content under `name`, holding pieces [0, held).
TransferRecord of_content(std::uint64_t id, const std::string& name, std::uint64_t held) {
    auto r = test_state::transfer(1, 20);   // the same content whatever the id
    r.id = id;
    r.name = name;
    r.partial_path = "/home/u/." + name + std::to_string(id) + ".peershare-part";
    r.have = proto::Bitfield(20);
    for (std::uint64_t i = 0; i < held; ++i) r.have.set(i);
    return r;
}

const PartialHoldings::Announceable kAlways = [](std::string_view) { return true; };

}  // namespace

TEST_CASE("two transfers of one content: one holding served and announced, the oldest; the next takes over") {
    PartialHoldings h;
    const auto a = of_content(7, "big", 1), b = of_content(9, "big", 1);

    auto s = h.hold(a.id, partial_holding(a), kAlways);
    REQUIRE(s.serve);
    CHECK(s.serve->path == a.partial_path);
    CHECK(s.announce);   // the first piece
    CHECK_FALSE(s.withdraw);

    // The younger transfer, even ahead in pieces, is neither served nor announced again.
    s = h.hold(b.id, partial_holding(of_content(9, "big", 15)), kAlways);
    REQUIRE(s.serve);
    CHECK(s.serve->path == a.partial_path);
    CHECK_FALSE(s.announce);
    CHECK(h.holders_of(a.content_id) == 2);

    // The oldest completes (its file becomes a publication): the other one is
    // served now, under the same name: no withdrawal, and its 15 pieces are
    // worth a new announcement (1 → 15 of 20 crosses tenths).
    s = h.release(a.id, a.content_id, kAlways);
    REQUIRE(s.serve);
    CHECK(s.serve->path == b.partial_path);
    CHECK(s.serve->have.count() == 15);
    CHECK(s.announce);
    CHECK_FALSE(s.withdraw);

    s = h.release(b.id, b.content_id, kAlways);
    CHECK_FALSE(s.serve);
    CHECK(s.withdraw == "big");
    CHECK(h.holders_of(a.content_id) == 0);
    CHECK_FALSE(h.release(b.id, b.content_id, kAlways).withdraw);   // nothing left: no change
}

TEST_CASE("the content under two names: one name at the tracker; it changes only when its transfer stops") {
    PartialHoldings h;
    const auto a = of_content(3, "release.iso", 2), b = of_content(4, "copy.iso", 2);
    CHECK(h.hold(a.id, partial_holding(a), kAlways).announce);
    CHECK_FALSE(h.hold(b.id, partial_holding(b), kAlways).announce);
    const auto s = h.release(a.id, a.content_id, kAlways);
    CHECK(s.withdraw == "release.iso");
    REQUIRE(s.serve);
    CHECK(s.serve->name == "copy.iso");
    CHECK(s.announce);
}

TEST_CASE("a name that may not be announced (no tracker link, or published) is served but not recorded as announced") {
    PartialHoldings h;
    bool link = false;
    const PartialHoldings::Announceable when_linked = [&](std::string_view) { return link; };
    const auto a = of_content(5, "big", 1);
    auto s = h.hold(a.id, partial_holding(a), when_linked);
    REQUIRE(s.serve);
    CHECK_FALSE(s.announce);
    link = true;
    s = h.hold(a.id, partial_holding(of_content(5, "big", 2)), when_linked);
    CHECK(s.announce);   // the first announcement, once it can go
    s = h.hold(a.id, partial_holding(of_content(5, "big", 3)), when_linked);
    CHECK_FALSE(s.announce);   // 2 → 3 of 20: within the same tenth
}
