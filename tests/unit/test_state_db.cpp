// tests/unit/test_state_db.cpp — peerd's state database (daemon/state/):
// rows round-trip, a bad row is skipped and the rest kept, damaged files
// (empty, garbage, truncated, newer schema) are moved aside untouched and a
// fresh database takes their place, transfer ids are never reused, and the
// JSON state of older versions is imported and kept as a backup.
#include <doctest/doctest.h>

#include <set>

#include "daemon/state/json_import.hpp"
#include "daemon/state/state_db.hpp"
#include "tests/unit/state_fixtures.hpp"

using namespace peershare;
using namespace peershare::peerd;
using namespace peershare::test_state;

namespace {

std::unique_ptr<StateDb> open_db(const std::string& path, std::string& note) {
    auto db = StateDb::open(path, note);
    REQUIRE_MESSAGE(db, (db ? "" : db.error().message));
    return std::move(*db);
}

std::unique_ptr<StateDb> open_db(const std::string& path) {
    std::string note;
    auto db = open_db(path, note);
    CHECK(note.empty());
    return db;
}

void check_same(const Publication& a, const Publication& b) {
    CHECK(a.name == b.name);
    CHECK(a.path == b.path);
    CHECK(a.size == b.size);
    CHECK(a.mtime_ns == b.mtime_ns);
    CHECK(a.id == b.id);
    CHECK(a.piece_size == b.piece_size);
    CHECK(a.pieces == b.pieces);
    CHECK(a.published_at == b.published_at);
    CHECK(a.origin == b.origin);
}

void check_same(const TransferRecord& a, const TransferRecord& b) {
    CHECK(a.id == b.id);
    CHECK(a.name == b.name);
    CHECK(a.content_id == b.content_id);
    CHECK(a.size == b.size);
    CHECK(a.piece_size == b.piece_size);
    CHECK(a.pieces == b.pieces);
    CHECK(a.have == b.have);
    CHECK(a.destination == b.destination);
    CHECK(a.partial_path == b.partial_path);
    REQUIRE(a.sources.size() == b.sources.size());
    for (std::size_t i = 0; i < a.sources.size(); ++i) {
        CHECK(a.sources[i].peer == b.sources[i].peer);
        CHECK(a.sources[i].host == b.sources[i].host);
        CHECK(a.sources[i].port == b.sources[i].port);
    }
    CHECK(a.from == b.from);
    CHECK(a.id_prefix == b.id_prefix);
    CHECK(a.force == b.force);
    CHECK(a.share == b.share);
    CHECK(a.state == b.state);
    CHECK(a.error == b.error);
    CHECK(a.created_at == b.created_at);
    CHECK(a.updated_at == b.updated_at);
}

// The names in `dir` that start with `prefix`.
std::set<std::string> names_starting(const fs::path& dir, const std::string& prefix) {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) {
        const auto name = e.path().filename().string();
        if (name.starts_with(prefix)) out.insert(name);
    }
    return out;
}

}  // namespace

TEST_CASE("state db: publications, transfers and the peer key come back as written, after a reopen") {
    TempDir dir;
    const auto path = dir / "state.db";
    std::string key;
    const auto a = publication("a.bin");
    auto b = publication("b name.bin", 1, 9);
    b.origin = Publication::Origin::fetched;
    auto t1 = transfer(1), t2 = transfer(2, 17);
    t1.share = false;
    t2.state = TransferState::failed;
    t2.error = "no space left on device";
    TransferRecord t3;   // before the lookup: no content, no pieces
    t3.id = 3;
    t3.name = "later.iso";
    t3.destination = "/home/u/later.iso";
    {
        auto db = open_db(path);
        CHECK((fs::status(path).permissions() & fs::perms::others_all) == fs::perms::none);
        auto k = db->peer_key();
        REQUIRE(k);
        key = *k;
        CHECK(key.size() == 64);
        REQUIRE(db->apply({PutPublication{a}, PutPublication{b}, PutTransfer{t1}, PutTransfer{t2}, PutTransfer{t3}}));
    }
    auto db = open_db(path);
    CHECK(*db->peer_key() == key);
    auto pubs = db->load_publications();
    REQUIRE(pubs);
    CHECK(pubs->skipped.empty());
    REQUIRE(pubs->rows.size() == 2);
    check_same(pubs->rows[0], a);
    check_same(pubs->rows[1], b);
    auto transfers = db->load_transfers();
    REQUIRE(transfers);
    CHECK(transfers->skipped.empty());
    REQUIRE(transfers->rows.size() == 3);
    check_same(transfers->rows[0], t1);
    check_same(transfers->rows[1], t2);
    check_same(transfers->rows[2], t3);

    SUBCASE("progress updates the bitfield, state and error of its row only") {
        TransferProgress p{1, t1.have, TransferState::running, "", 1'800'000'000};
        p.have.set(4);
        REQUIRE(db->apply(p));
        REQUIRE(db->apply(TransferProgress{99, proto::Bitfield(3), TransferState::running, "", 0}));   // no row: nothing
        auto after = db->load_transfers();
        REQUIRE(after->rows.size() == 3);
        auto expected = t1;
        apply_progress(expected, p);
        check_same(after->rows[0], expected);
        check_same(after->rows[1], t2);
    }
    SUBCASE("removals remove one row each") {
        REQUIRE(db->apply({RemovePublication{"a.bin"}, RemoveTransfer{2}}));
        CHECK(db->load_publications()->rows.size() == 1);
        CHECK(db->load_transfers()->rows.size() == 2);
    }
}

TEST_CASE("state db: transfer ids are never handed out twice, even after their rows are gone") {
    TempDir dir;
    const auto path = dir / "state.db";
    {
        auto db = open_db(path);
        CHECK(*db->first_free_transfer_id() == 1);
        REQUIRE(db->apply({ReserveTransferIds{2}, PutTransfer{transfer(1)}}));
        CHECK(*db->first_free_transfer_id() == 2);
        REQUIRE(db->apply(ReserveTransferIds{5}));
        REQUIRE(db->apply(ReserveTransferIds{3}));   // never lowered
        REQUIRE(db->apply(RemoveTransfer{1}));
    }
    auto db = open_db(path);
    CHECK(*db->first_free_transfer_id() == 5);
    REQUIRE(db->apply(PutTransfer{transfer(9)}));   // a row above the counter counts too
    CHECK(*db->first_free_transfer_id() == 10);
}

TEST_CASE("state db: a bad row is skipped with one line naming it; every other row is kept") {
    TempDir dir;
    const auto path = dir / "state.db";
    {
        auto db = open_db(path);
        REQUIRE(db->apply({PutPublication{publication("good.bin")}, PutPublication{publication("bad.bin")},
                           PutPublication{publication("also good")}, PutTransfer{transfer(1)},
                           PutTransfer{transfer(2)}, PutTransfer{transfer(3)}}));
    }
    std::string why;
    SUBCASE("a bitfield of the wrong length") {
        raw_sql(path, "UPDATE transfers SET have = x'ff' WHERE id = 2");
        why = "bitfield";
    }
    SUBCASE("an unknown state") {
        raw_sql(path, "UPDATE transfers SET state = 'sleeping' WHERE id = 2");
        why = "state";
    }
    SUBCASE("sources that are not JSON") {
        raw_sql(path, "UPDATE transfers SET sources = '[{' WHERE id = 2");
        why = "sources";
    }
    SUBCASE("a piece list that does not hash to the content id") {
        raw_sql(path, "UPDATE transfers SET pieces = zeroblob(320) WHERE id = 2");
        why = "content id";
    }
    raw_sql(path, "UPDATE publications SET pieces = x'00' WHERE name = 'bad.bin'");
    auto db = open_db(path);
    auto pubs = db->load_publications();
    REQUIRE(pubs);
    CHECK(pubs->rows.size() == 2);
    REQUIRE(pubs->skipped.size() == 1);
    CHECK(pubs->skipped[0].find("'bad.bin'") != std::string::npos);
    auto transfers = db->load_transfers();
    REQUIRE(transfers);
    REQUIRE(transfers->rows.size() == 2);
    CHECK(transfers->rows[0].id == 1);
    CHECK(transfers->rows[1].id == 3);
    REQUIRE(transfers->skipped.size() == 1);
    INFO(transfers->skipped[0]);
    CHECK(transfers->skipped[0].starts_with("transfer 2 ('t2') skipped: "));
    CHECK(transfers->skipped[0].find(why) != std::string::npos);
}

TEST_CASE("state db: a damaged file is moved aside untouched and a fresh database takes its place") {
    TempDir dir;
    const auto path = dir / "state.db";
    {
        auto db = open_db(path);
        std::vector<StateWrite> writes;
        for (int i = 0; i < 200; ++i) writes.push_back(PutPublication{publication("f" + std::to_string(i), 8)});
        REQUIRE(db->apply(writes));
    }
    CHECK_FALSE(fs::exists(path + "-wal"));   // checkpointed and removed by the last close
    const auto whole = read_bytes(path);
    REQUIRE(whole.size() > 8 * 4096);
    std::string damaged, expect;
    SUBCASE("empty") {
        damaged = "";
        expect = "empty";
    }
    SUBCASE("garbage") {
        damaged = std::string(10'000, 'x');
        expect = "not a database";
    }
    SUBCASE("truncated") {
        damaged = whole.substr(0, whole.size() / 2);
        expect = "";   // SQLite's words for it vary with where the cut falls
    }
    SUBCASE("from a newer peerd") {
        raw_sql(path, "PRAGMA user_version = 3");
        damaged = read_bytes(path);
        expect = "newer peerd (schema version 3";
    }
    SUBCASE("a database that is not peerd's") {
        fs::remove(path);
        raw_sql(path, "CREATE TABLE x(y)");
        damaged = read_bytes(path);
        expect = "not a peerd state database";
    }
    write_bytes(path, damaged);
    std::string note;
    auto db = open_db(path, note);
    INFO(note);
    CHECK(note.starts_with(path + ": "));
    CHECK(note.find(expect) != std::string::npos);
    CHECK(note.find("moved it aside to " + path + ".broken-") != std::string::npos);
    CHECK(note.ends_with(" and started fresh"));
    const auto moved = names_starting(dir.path, "state.db.broken-");
    REQUIRE(moved.size() == 1);
    CHECK(read_bytes(dir.path / *moved.begin()) == damaged);   // kept byte for byte
    CHECK(db->load_publications()->rows.empty());
    REQUIRE(db->apply(PutPublication{publication("new.bin")}));
    CHECK(db->load_publications()->rows.size() == 1);
}

TEST_CASE("state db: the JSON state of older versions is imported once and kept as a backup") {
    TempDir dir;
    const auto good = publication("report.pdf"), second = publication("with space.bin", 2, 40);
    auto entry = [](const Publication& p) {
        auto j = p.piece_list().to_json();
        j["name"] = p.name;
        j["path"] = p.path;
        j["mtime_ns"] = p.mtime_ns;
        j["published_at"] = p.published_at;
        return j;
    };
    auto bad = entry(publication("bad.bin"));
    bad["pieces"][0] = std::string(64, '0');   // no longer hashes to its id
    const proto::json doc{{"version", 1}, {"publications", {entry(good), bad, entry(second)}}};
    const std::string key(64, 'a');
    write_bytes(dir.path / "publications.json", doc.dump() + "\n");
    write_bytes(dir.path / "peer.key", key + "\n");

    auto db = open_db(dir / "state.db");
    auto lines = import_json_state(dir.path.string(), *db);
    REQUIRE(lines);
    std::string all;
    for (const auto& l : *lines) all += l + "\n";
    INFO(all);
    CHECK(all.find("publication 'bad.bin' skipped") != std::string::npos);
    CHECK(all.find("imported 2 publications") != std::string::npos);
    CHECK(*db->peer_key() == key);
    auto pubs = db->load_publications();
    REQUIRE(pubs->rows.size() == 2);
    check_same(pubs->rows[0], good);
    check_same(pubs->rows[1], second);
    CHECK_FALSE(fs::exists(dir.path / "publications.json"));
    CHECK(read_bytes(dir.path / "publications.json.imported") == doc.dump() + "\n");
    CHECK(read_bytes(dir.path / "peer.key.imported") == key + "\n");

    SUBCASE("nothing more to import the next time") {
        auto again = import_json_state(dir.path.string(), *db);
        REQUIRE(again);
        CHECK(again->empty());
    }
    SUBCASE("an older peerd run again meanwhile: imported again, the first backup kept") {
        write_bytes(dir.path / "publications.json", proto::json{{"version", 1}, {"publications", {entry(good)}}}.dump());
        REQUIRE(import_json_state(dir.path.string(), *db));
        CHECK(fs::exists(dir.path / "publications.json.imported"));
        CHECK(fs::exists(dir.path / "publications.json.imported.2"));
    }
    SUBCASE("a file that is not JSON is moved aside, nothing imported") {
        write_bytes(dir.path / "publications.json", "{not json");
        auto r = import_json_state(dir.path.string(), *db);
        REQUIRE(r);
        REQUIRE(r->size() == 1);
        CHECK(r->front().find("is not valid state") != std::string::npos);
        CHECK(names_starting(dir.path, "publications.json.broken-").size() == 1);
    }
}

TEST_CASE("state db: a database of schema version 1 is upgraded in place, its rows kept") {
    TempDir dir;
    const auto path = dir / "state.db";
    const auto p = publication("old.bin");
    {
        auto db = open_db(path);
        REQUIRE(db->apply({PutPublication{p}, PutTransfer{transfer(4)}}));
    }
    // Back to what a peerd of schema version 1 wrote: no origin, no share.
    raw_sql(path,
            "CREATE TABLE p1 AS SELECT name, path, size, mtime_ns, content_id, piece_size, pieces, published_at "
            "FROM publications; DROP TABLE publications; ALTER TABLE p1 RENAME TO publications; "
            "ALTER TABLE transfers DROP COLUMN share; PRAGMA user_version = 1;");
    auto db = open_db(path);
    auto pubs = db->load_publications();
    REQUIRE(pubs);
    CHECK(pubs->skipped.empty());
    REQUIRE(pubs->rows.size() == 1);
    check_same(pubs->rows[0], p);   // origin "published"
    auto transfers = db->load_transfers();
    REQUIRE(transfers);
    REQUIRE(transfers->rows.size() == 1);
    check_same(transfers->rows[0], transfer(4));   // share
    auto fetched = publication("new.bin");
    fetched.origin = Publication::Origin::fetched;
    REQUIRE(db->apply(PutPublication{fetched}));
    CHECK(db->load_publications()->rows.size() == 2);
}
