// tests/integration/test_state.cpp — peerd's state database end to end
// (issue 8, test items 6 and 7): the real trackerd, peerd and peerctl on
// 127.0.0.1. A damaged state.db (empty, garbage, truncated, newer schema) is
// moved aside with one log line and peerd starts fresh; a bad row is skipped
// and the rest kept; the JSON state of an older peerd is imported once and
// kept as a backup; a publish survives SIGKILL once answered; and 10,000
// publications cost no more per publish at the end than at the start while
// the upload port keeps answering (timed by tests/bench's peerd_load).
#include <doctest/doctest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/integration/harness.hpp"

namespace {

using namespace peershare;
using namespace peershare::test;
using nlohmann::json;

constexpr Millis kLoad{180'000};   // 10,000 publishes, with room for a sanitizer build

std::string read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

// The lines of `text` that contain `part`.
std::vector<std::string> lines_with(const std::string& text, std::string_view part) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (contains(line, part)) out.push_back(line);
    }
    return out;
}

// Names in `dir` starting with `prefix`.
std::vector<fs::path> entries_starting(const fs::path& dir, const std::string& prefix) {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().filename().string().starts_with(prefix)) out.push_back(e.path());
    }
    return out;
}

// `peerctl --json list` on `peer`: name → its row.
std::map<std::string, json> listed(PeerFixture& peer) {
    const auto r = peer.peerctl("--json", "list");
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    std::map<std::string, json> out;
    const auto doc = parse_json(r.out);   // kept: the loop walks inside it
    for (const auto& f : doc["files"]) out[f["name"]] = f;
    return out;
}

std::string publish(PeerFixture& peer, const fs::path& path, const std::string& name) {
    const auto r = peer.peerctl("--json", "publish", path.string(), name);
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    return parse_json(r.out)["id"];
}

// Small files NAME0..NAME{n-1} in `dir`, each published under its file name.
void publish_files(PeerFixture& peer, const fs::path& dir, int n) {
    fs::create_directories(dir);
    for (int i = 0; i < n; ++i) {
        const auto path = dir / ("file" + std::to_string(i));
        write_bytes(path, "contents of file " + std::to_string(i) + "\n");
        publish(peer, path, path.filename().string());
    }
}

// The first column of the first row of `sql` run on the state database behind
// peerd's back (it is stopped); "" when there is no row.
std::string query(const fs::path& db_path, const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    std::string out;
    int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && sqlite3_column_text(stmt, 0)) {
        out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    const std::string error = sqlite3_errmsg(db);
    sqlite3_finalize(stmt);   // completes (and commits) the statement
    sqlite3_close(db);
    INFO(sql << ": " << error);
    CHECK((rc == SQLITE_ROW || rc == SQLITE_DONE));
    return out;
}

// peerd_load's `key value` lines.
std::map<std::string, double> key_values(const std::string& text) {
    std::map<std::string, double> out;
    std::istringstream in(text);
    std::string key;
    double value = 0;
    while (in >> key >> value) out[key] = value;
    return out;
}

}  // namespace

TEST_CASE("a damaged state database is moved aside with one log line and peerd starts fresh") {
    TrackerFixture tracker;
    TempDir dir;
    auto alpha = start_peer("alpha", tracker.endpoint(), dir.path());
    publish_files(*alpha, alpha->dir() / "files", 40);   // a database of several pages
    REQUIRE(alpha->stop() == 0);
    const auto db = alpha->state_dir() / "state.db";
    const auto whole = read_bytes(db);
    REQUIRE(whole.size() >= 4 * 4096);

    std::string damaged;
    SUBCASE("empty") { damaged = ""; }
    SUBCASE("garbage") { damaged = std::string(8192, '\x5a'); }
    SUBCASE("truncated") { damaged = whole.substr(0, whole.size() / 2 + 100); }
    SUBCASE("from a newer peerd") {
        damaged = whole;
        damaged[60] = 0x7f;   // PRAGMA user_version: 4 bytes big-endian at offset 60 of the header
    }
    write_bytes(db, damaged);
    alpha->start();

    const auto said = lines_with(alpha->process().errors(), "moved it aside");
    INFO(alpha->process().errors());
    REQUIRE(said.size() == 1);
    CHECK(contains(said[0], db.string() + ": "));
    CHECK(contains(said[0], "started fresh"));
    const auto aside = entries_starting(alpha->state_dir(), "state.db.broken-");
    REQUIRE(aside.size() == 1);
    CHECK(contains(said[0], aside[0].string()));
    CHECK(read_bytes(aside[0]) == damaged);   // the user's file, kept byte for byte

    CHECK(listed(*alpha).empty());
    const auto file = alpha->dir() / "after.bin";
    write_bytes(file, "published after the damage\n");
    publish(*alpha, file, "after.bin");
    REQUIRE(alpha->stop() == 0);
    alpha->start();
    CHECK(listed(*alpha).size() == 1);
    CHECK(lines_with(alpha->process().errors(), "moved it aside").empty());
}

TEST_CASE("a bad publication row is skipped with one line naming it; the others are kept") {
    TrackerFixture tracker;
    TempDir dir;
    auto alpha = start_peer("alpha", tracker.endpoint(), dir.path());
    publish_files(*alpha, alpha->dir() / "files", 3);
    REQUIRE(alpha->stop() == 0);
    const auto db = alpha->state_dir() / "state.db";
    query(db, "UPDATE publications SET pieces = x'0102' WHERE name = 'file1' RETURNING name");
    alpha->start();
    const auto said = lines_with(alpha->process().errors(), "skipped");
    INFO(alpha->process().errors());
    REQUIRE(said.size() == 1);
    CHECK(contains(said[0], "publication 'file1' skipped"));
    CHECK(contains(said[0], db.string()));
    const auto files = listed(*alpha);
    CHECK(files.size() == 2);
    CHECK(files.contains("file0"));
    CHECK(files.contains("file2"));
}

TEST_CASE("the JSON state of an older peerd is imported on first start and kept as a backup") {
    TrackerFixture tracker;
    TempDir dir;
    const fs::path fixture = fs::path(PEERSHARE_SOURCE_DIR) / "tests/integration/fixtures/json-state";
    const auto files = dir / "files";
    fs::create_directories(files);
    // The files the fixture's peerd published, as they were then (README.md there).
    write_bytes(files / "hello.txt", "hello from peershare\n");
    std::string data(300'000, '\0');
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((7 * i + 3) % 256);
    write_bytes(files / "data.bin", data);
    const timespec mtime{1'767'323'045, 123'456'789};
    for (const char* name : {"hello.txt", "data.bin"}) {
        const timespec times[2] = {mtime, mtime};
        REQUIRE(utimensat(AT_FDCWD, (files / name).c_str(), times, 0) == 0);
    }
    const auto state = dir / "alpha" / "state";
    fs::create_directories(state);
    std::string publications = read_bytes(fixture / "publications.json");
    for (auto at = publications.find("@FILES@"); at != std::string::npos; at = publications.find("@FILES@")) {
        publications.replace(at, 7, files.string());
    }
    write_bytes(state / "publications.json", publications);
    fs::copy_file(fixture / "peer.key", state / "peer.key");

    auto alpha = start_peer("alpha", tracker.endpoint(), dir.path());
    INFO(alpha->process().errors());
    CHECK(lines_with(alpha->process().errors(), "imported 2 publications").size() == 1);
    auto rows = listed(*alpha);
    REQUIRE(rows.size() == 2);
    CHECK(rows["hello.txt"]["state"] == "ok");
    CHECK(rows["hello.txt"]["id"] == "5b185a3c1c1c5de79774bcb95c57405c435d2631a88fc943cddfcd6938d33c7c");
    CHECK(rows["data file.bin"]["state"] == "ok");
    CHECK(rows["data file.bin"]["path"] == (files / "data.bin").string());
    CHECK(read_bytes(state / "publications.json.imported") == publications);
    CHECK(read_bytes(state / "peer.key.imported") == read_bytes(fixture / "peer.key"));
    CHECK_FALSE(fs::exists(state / "publications.json"));
    CHECK_FALSE(fs::exists(state / "peer.key"));
    // Served again, and announced under the same identity.
    REQUIRE(wait_until(
        [&] {
            const auto r = tracker.trackerctl("--json", "discover", "alpha");
            return r.exit_code == 0 && json::parse(r.out, nullptr, false)["files"].size() == 2;
        },
        kDeadline));
    const auto body = dir / "body";
    const auto got = run({"/usr/bin/curl", "-sS", "-o", body.string(),
                          "http://127.0.0.1:" + std::to_string(alpha->port()) + "/v1/files/" +
                              rows["data file.bin"]["id"].get<std::string>()});
    REQUIRE(got.exit_code == 0);
    CHECK(read_bytes(body) == data);

    REQUIRE(alpha->stop() == 0);
    std::string key = read_bytes(fixture / "peer.key");
    key.pop_back();   // its newline
    CHECK(query(state / "state.db", "SELECT value FROM meta WHERE key = 'peer_key'") == key);
    alpha->start();
    CHECK(lines_with(alpha->process().errors(), "imported").empty());   // once only
    CHECK(listed(*alpha).size() == 2);
}

TEST_CASE("a publish that was answered survives SIGKILL of peerd; an unpublish too") {
    TrackerFixture tracker;
    TempDir dir;
    auto alpha = start_peer("alpha", tracker.endpoint(), dir.path());
    publish_files(*alpha, alpha->dir() / "files", 3);
    REQUIRE(alpha->peerctl("unpublish", "file0").exit_code == 0);
    const auto last = alpha->dir() / "last.bin";
    write_bytes(last, "the last one\n");
    const auto id = publish(*alpha, last, "last.bin");
    alpha->kill();
    alpha->start();
    auto rows = listed(*alpha);
    CHECK(rows.size() == 3);
    CHECK_FALSE(rows.contains("file0"));
    REQUIRE(rows.contains("last.bin"));
    CHECK(rows["last.bin"]["id"] == id);
    CHECK(rows["last.bin"]["state"] == "ok");
}

TEST_CASE("10,000 publications: every one is stored, and GETs are served while they are made") {
    TrackerFixture::Options options;
    options.extra_args = {"--max-files-per-peer", "20000"};
    TrackerFixture tracker(options);
    TempDir dir;
    auto alpha = start_peer("alpha", tracker.endpoint(), dir.path());
    const auto probe = alpha->dir() / "probe.bin";
    write_bytes(probe, std::string(64 * 1024, 'p'));
    const auto id = publish(*alpha, probe, "probe.bin");
    const auto r = run({PEERSHARE_PEERD_LOAD_BIN, "publish", "--socket", alpha->socket().string(), "--dir",
                        (dir / "many").string(), "--count", "10000", "--idle-requests", "50", "--url",
                        "http://127.0.0.1:" + std::to_string(alpha->port()) + "/v1/files/" + id},
                       {}, kLoad);
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    auto v = key_values(r.out);
    CHECK(v["publish_count"] == 10000);
    // The times are printed, not asserted: a timing bound in the suite fails
    // on a loaded machine, not on a slow daemon. Their targets (publish cost
    // flat up to 10,000, GET p99 while publishing) are met in `scripts/bench
    // state`, medians of interleaved runs beside the JSON state file.
    MESSAGE("publish median, first 100: " << v["publish_first100_median_ms"] << " ms, last 100: "
                                          << v["publish_last100_median_ms"] << " ms; GET p99 while publishing: "
                                          << v["http_busy_p99_ms"] << " ms");
    CHECK(v["http_busy_requests"] > 0);
    CHECK(v["http_busy_errors"] == 0);
    REQUIRE(alpha->stop() == 0);
    CHECK(query(alpha->state_dir() / "state.db", "SELECT count(*) FROM publications") == "10001");
}
