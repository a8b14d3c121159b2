// tests/unit/test_piece_picker.cpp — the fetch engine's piece picker
// (daemon/fetch/piece_picker.hpp) on plain data: no sockets, no loop; time
// is a number and randomness a scripted function.
#include <doctest/doctest.h>

#include <deque>
#include <set>

#include "daemon/fetch/piece_picker.hpp"

using peershare::peerd::PiecePicker;
using peershare::proto::Bitfield;
using State = PiecePicker::State;

namespace {

constexpr std::uint64_t kEndgame = 1000;

Bitfield all(std::uint64_t n) {
    Bitfield b(n);
    for (std::uint64_t i = 0; i < n; ++i) b.set(i);
    return b;
}

Bitfield only(std::uint64_t n, std::initializer_list<std::uint64_t> pieces) {
    Bitfield b(n);
    for (auto p : pieces) b.set(p);
    return b;
}

// Always the first candidate: picks become predictable.
PiecePicker::Random first() {
    return [](std::uint64_t) { return std::uint64_t{0}; };
}

}  // namespace

TEST_CASE("picker: every piece is picked once, then nothing is left to ask") {
    PiecePicker p(10, kEndgame, first());
    const auto a = p.add_source(all(10));
    std::set<std::uint64_t> seen;
    for (int i = 0; i < 10; ++i) {
        auto piece = p.pick(a, 0);
        REQUIRE(piece);
        CHECK(p.state(*piece) == State::active);
        CHECK(seen.insert(*piece).second);
    }
    CHECK_FALSE(p.pick(a, 0));  // one source: no endgame with itself
    CHECK_FALSE(p.wants_more());
}

TEST_CASE("picker: the rarest piece first, a random one among equals") {
    PiecePicker p(6, kEndgame, first());
    const auto a = p.add_source(all(6));
    p.add_source(only(6, {0, 1, 2, 3}));
    p.add_source(only(6, {0, 1, 4}));
    // Availability: 0,1: 3; 2,3,4: 2; 5: 1.
    CHECK(*p.pick(a, 0) == 5);
    const auto second = *p.pick(a, 0);
    CHECK((second == 2 || second == 3 || second == 4));

    SUBCASE("the random function decides among equals") {
        std::deque<std::uint64_t> script = {2, 0};
        PiecePicker q(4, kEndgame, [&](std::uint64_t n) {
            const auto v = script.empty() ? 0 : script.front() % n;
            if (!script.empty()) script.pop_front();
            return v;
        });
        const auto s = q.add_source(all(4));
        CHECK(*q.pick(s, 0) == 2);  // the third of [0 1 2 3]
        CHECK(*q.pick(s, 0) == 0);  // the first of what is left
    }
}

TEST_CASE("picker: a source is asked only for pieces it has") {
    PiecePicker p(4, kEndgame, first());
    const auto a = p.add_source(only(4, {2}));
    CHECK(*p.pick(a, 0) == 2);
    CHECK_FALSE(p.pick(a, 0));
}

TEST_CASE("picker: a piece put back is asked for before any fresh one") {
    PiecePicker p(8, kEndgame, first());
    const auto a = p.add_source(all(8));
    const auto x = *p.pick(a, 0);
    const auto y = *p.pick(a, 0);
    p.request_ended(y, a);
    p.request_ended(x, a);
    CHECK(p.state(x) == State::missing);
    CHECK(*p.pick(a, 0) == y);  // oldest put back first
    CHECK(*p.pick(a, 0) == x);
}

TEST_CASE("picker: a piece a source sent wrong goes to another source") {
    PiecePicker p(2, kEndgame, first());
    const auto bad = p.add_source(all(2));
    const auto good = p.add_source(all(2));
    const auto piece = *p.pick(bad, 0);
    std::vector<std::size_t> others;
    REQUIRE(p.received(piece, bad, others));
    CHECK(p.state(piece) == State::verifying);
    p.rejected(piece, bad);
    CHECK(p.state(piece) == State::missing);
    const auto next = p.pick(bad, 0);
    CHECK((next && *next != piece));  // not the rejected one
    CHECK(*p.pick(good, 0) == piece);

    SUBCASE("unless every live source sent it wrong") {
        PiecePicker q(1, kEndgame, first());
        const auto s1 = q.add_source(all(1));
        const auto s2 = q.add_source(all(1));
        for (auto s : {s1, s2}) {
            REQUIRE(*q.pick(s, 0) == 0);
            REQUIRE(q.received(0, s, others));
            q.rejected(0, s);
        }
        CHECK(*q.pick(s1, 0) == 0);
    }
    SUBCASE("or the others are gone") {
        PiecePicker q(1, kEndgame, first());
        const auto s1 = q.add_source(all(1));
        const auto s2 = q.add_source(all(1));
        REQUIRE(*q.pick(s1, 0) == 0);
        REQUIRE(q.received(0, s1, others));
        q.rejected(0, s1);
        CHECK_FALSE(q.pick(s1, 0));
        q.drop_source(s2);
        CHECK(*q.pick(s1, 0) == 0);
    }
}

TEST_CASE("picker: endgame duplicates a slow request, after the delay only, once") {
    PiecePicker p(1, kEndgame, first());
    const auto slow = p.add_source(all(1));
    const auto fast = p.add_source(all(1));
    const auto third = p.add_source(all(1));
    REQUIRE(*p.pick(slow, 0) == 0);
    CHECK_FALSE(p.pick(fast, kEndgame - 1));
    CHECK(*p.pick(fast, kEndgame) == 0);
    CHECK(p.requests_for(0) == 2);
    CHECK_FALSE(p.pick(third, 5 * kEndgame));  // already duplicated
    std::vector<std::size_t> others;
    REQUIRE(p.received(0, fast, others));
    CHECK(others == std::vector<std::size_t>{slow});  // the engine aborts it
    CHECK(p.requests_for(0) == 0);
    p.verified(0);
    CHECK(p.complete());
}

TEST_CASE("picker: a failed duplicate leaves the other request running") {
    PiecePicker p(1, kEndgame, first());
    const auto a = p.add_source(all(1));
    const auto b = p.add_source(all(1));
    REQUIRE(*p.pick(a, 0) == 0);
    REQUIRE(*p.pick(b, kEndgame) == 0);
    p.request_ended(0, b);
    CHECK(p.state(0) == State::active);
    p.request_ended(0, a);
    CHECK(p.state(0) == State::missing);
}

TEST_CASE("picker: pieces being checked are not asked for; a bad one is, first") {
    PiecePicker p(4, kEndgame, first());
    const auto a = p.add_source(all(4));
    p.check(1);
    p.check(2);
    std::set<std::uint64_t> picked{*p.pick(a, 0), *p.pick(a, 0)};
    CHECK(picked == std::set<std::uint64_t>{0, 3});
    CHECK_FALSE(p.pick(a, 0));
    p.checked(1, true);
    p.checked(2, false);
    CHECK(p.done() == 1);
    CHECK(*p.pick(a, 0) == 2);
}

TEST_CASE("picker: a dropped source no longer counts for rarity") {
    PiecePicker p(3, kEndgame, first());
    const auto a = p.add_source(all(3));
    const auto b = p.add_source(only(3, {0, 1}));
    p.drop_source(b);
    // Every piece now has one source: 2 is no longer the rarest alone; all equal.
    std::set<std::uint64_t> picked{*p.pick(a, 0), *p.pick(a, 0), *p.pick(a, 0)};
    CHECK(picked.size() == 3);
    CHECK(p.wants_more() == false);
}

TEST_CASE("picker: a partial holder's new /have makes its pieces rarer or commoner; lacks takes one back") {
    PiecePicker p(4, kEndgame, first());
    const auto seed = p.add_source(all(4));
    const auto partial = p.add_source(only(4, {}));   // before its first /have
    CHECK_FALSE(p.pick(partial, 0));
    CHECK_FALSE(p.has_wanted(partial));
    CHECK(p.has_wanted(seed));

    p.update_source(partial, only(4, {0, 1, 2}));
    // Piece 3 is now the rarest (only the seed): the seed is asked for it first.
    CHECK(*p.pick(seed, 0) == 3);
    CHECK(p.has_wanted(partial));
    const auto from_partial = *p.pick(partial, 0);
    CHECK(from_partial < 3);

    // "Not here yet" for it: the request ends, the piece goes back, and that
    // holder is not asked for it again, the seed is.
    p.request_ended(from_partial, partial);
    p.lacks(partial, from_partial);
    const auto next = p.pick(partial, 0);
    REQUIRE(next);
    CHECK(*next != from_partial);
    CHECK(*p.pick(seed, 0) == from_partial);   // put back: started pieces come first

    // A /have that loses a piece and gains none leaves nothing to ask it.
    p.request_ended(*next, partial);
    p.update_source(partial, only(4, {}));
    CHECK_FALSE(p.pick(partial, 0));
    CHECK_FALSE(p.has_wanted(partial));
}

TEST_CASE("picker: fetchers that start together spread out: equally rare pieces are picked at random") {
    // Two pickers (two fetchers) with the same single seed and different
    // random draws ask for different first pieces.
    std::uint64_t draw = 0;
    PiecePicker one(64, kEndgame, [](std::uint64_t) { return std::uint64_t{0}; });
    PiecePicker two(64, kEndgame, [&draw](std::uint64_t n) { return (draw += 17) % n; });
    const auto a = one.add_source(all(64));
    const auto b = two.add_source(all(64));
    std::set<std::uint64_t> first_of_one, first_of_two;
    for (int i = 0; i < 8; ++i) {
        first_of_one.insert(*one.pick(a, 0));
        first_of_two.insert(*two.pick(b, 0));
    }
    std::set<std::uint64_t> both;
    for (auto piece : first_of_one) if (first_of_two.contains(piece)) both.insert(piece);
    CHECK(both.size() < 8);
}
