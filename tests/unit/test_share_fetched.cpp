// tests/unit/test_share_fetched.cpp — a done transfer as a publication, when
// it may replace what the peer publishes, and when a partial holding is worth
// announcing again (daemon/share_fetched.hpp): plain data, no I/O.
#include <doctest/doctest.h>

#include "daemon/share_fetched.hpp"
#include "proto/hex.hpp"
#include "tests/unit/state_fixtures.hpp"

using namespace peershare;
using namespace peershare::peerd;

TEST_CASE("a done transfer becomes a 'fetched' publication of its destination, with the stat's mtime") {
    auto done = test_state::transfer(5, 4);
    const FileStamp stamp{done.size, 1'800'000'000'000'000'000};
    auto p = fetched_publication(done, stamp);
    REQUIRE(p);
    CHECK(p->name == done.name);
    CHECK(p->path == done.destination);
    CHECK(p->id == done.content_id);
    CHECK(p->size == done.size);
    CHECK(p->mtime_ns == stamp.mtime_ns);
    CHECK(p->pieces == done.pieces);
    CHECK(p->origin == Publication::Origin::fetched);
    CHECK(p->have.size() == 0);   // complete

    SUBCASE("a file that changed size since the rename is not shared") {
        auto bad = fetched_publication(done, {done.size + 1, 1});
        REQUIRE_FALSE(bad);
        CHECK(bad.error().message.find("not the") != std::string::npos);
    }
    SUBCASE("a piece list that does not hash to the id is not shared") {
        done.pieces[0][0] ^= 1;
        CHECK_FALSE(fetched_publication(done, stamp));
    }
}

TEST_CASE("a fetched file never replaces the user's own publication of another content under its name") {
    const auto done = test_state::transfer(6, 3);
    auto mine = test_state::publication(done.name, 2, 99);
    CHECK(share_conflict(&mine, done));
    mine.origin = Publication::Origin::fetched;   // an earlier fetched copy: replaced
    CHECK_FALSE(share_conflict(&mine, done));
    mine = test_state::publication(done.name, 3, 6);
    mine.id = done.content_id;                    // the same content: nothing lost
    CHECK_FALSE(share_conflict(&mine, done));
    CHECK_FALSE(share_conflict(nullptr, done));
}

TEST_CASE("worth announcing a partial holding: the first piece, then each further tenth, never when complete") {
    CHECK_FALSE(worth_announcing(0, 0, 100));
    CHECK(worth_announcing(0, 1, 100));
    CHECK_FALSE(worth_announcing(1, 9, 100));
    CHECK(worth_announcing(9, 10, 100));
    CHECK_FALSE(worth_announcing(10, 19, 100));
    CHECK(worth_announcing(19, 35, 100));
    CHECK_FALSE(worth_announcing(95, 100, 100));   // complete: the publication (or nothing) follows
    CHECK(worth_announcing(0, 1, 3));
    CHECK(worth_announcing(1, 2, 3));
}

TEST_CASE("a shared transfer's content id is held at every step of its completion, never a gap (a 404)") {
    // The steps Peer takes on the loop thread: the partial holding while it
    // runs; at done the partial one leaves (hold_partial(false)) and the
    // stand-in comes in the same callback; the stat's callback releases the
    // stand-in and puts the publication. Between callbacks the upload server
    // may answer: holding(id) must never be null there.
    Catalog catalog;
    auto done = test_state::transfer(7, 4);
    catalog.put_partial(partial_holding(done));
    REQUIRE(catalog.holding(done.content_id));
    CHECK(catalog.holding(done.content_id)->path == done.partial_path);

    for (std::uint64_t i = 0; i < done.have.size(); ++i) done.have.set(i);
    catalog.remove_partial(done.content_id);   // registry on_done → hold_partial(rec, false)
    hold_completed(catalog, done);             // then completed → share_fetched
    // -- the stat runs in the worker pool: requests are answered here --
    const Publication* held = catalog.holding(done.content_id);
    REQUIRE(held);
    CHECK(held->path == done.destination);
    CHECK_FALSE(held->partial());   // every piece: /have all ones, no 'not here yet'
    CHECK(held->have.count() == done.pieces.size());
    CHECK_FALSE(held->info().pieces_held);
    CHECK(catalog.all().empty());   // not a publication: nothing persisted or listed

    SUBCASE("the stat is back: the publication takes over in the same callback") {
        release_completed(catalog, done);
        auto p = fetched_publication(done, {done.size, 5});
        REQUIRE(p);
        catalog.put(*p);
        REQUIRE(catalog.holding(done.content_id));
        CHECK(catalog.holding(done.content_id) == catalog.by_name(done.name));
        CHECK(catalog.partials().empty());
    }
    SUBCASE("not shared after all (the stat failed, a conflict): the stand-in leaves, the id is not served") {
        release_completed(catalog, done);
        CHECK_FALSE(catalog.holding(done.content_id));
    }
    SUBCASE("a new transfer of that content took its place meanwhile: its holding stays") {
        auto again = test_state::transfer(7, 4);   // the same content, fetched again elsewhere
        REQUIRE(again.content_id == done.content_id);
        again.partial_path = "/home/u/other/.x.peershare-part";
        catalog.put_partial(partial_holding(again));
        release_completed(catalog, done);
        REQUIRE(catalog.holding(done.content_id));
        CHECK(catalog.holding(done.content_id)->path == again.partial_path);
    }
}
