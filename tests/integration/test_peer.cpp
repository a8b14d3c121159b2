// tests/integration/test_peer.cpp — peerd and peerctl end to end (issue 3):
// the real trackerd, several real peerd processes and peerctl over 127.0.0.1
// and private Unix sockets; file data checked byte for byte on disk; the
// upload server driven with curl, wget and raw sockets. Every test case starts
// its own tracker and peers in its own temp dir, so cases never share state
// and the suite may run in parallel with others.
#include <doctest/doctest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "proto/content.hpp"
#include "proto/control.hpp"
#include "proto/hex.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/peer_helpers.hpp"

using namespace peershare;
using namespace peershare::test;
using nlohmann::json;

// ---------------------------------------------------------------------------

TEST_CASE("files of 0, 1, 1000 bytes, one piece, one piece and a byte, and 5 MiB fetch intact") {
    Swarm swarm{"alpha", "beta"};
    auto& alpha = swarm["alpha"];
    auto& beta = swarm["beta"];
    const std::uint64_t sizes[] = {0, 1, 1000, kPiece, kPiece + 1, (5u << 20) + 3};
    std::map<std::uint64_t, std::string> ids;
    for (const auto size : sizes) {
        const auto path = alpha.dir() / ("src-" + std::to_string(size));
        write_random(path, size, size + 1);
        ids[size] = publish(alpha, path, "size-" + std::to_string(size))["id"];
    }
    // Different contents, different ids.
    std::set<std::string> distinct;
    for (const auto& [size, id] : ids) distinct.insert(id);
    CHECK(distinct.size() == std::size(sizes));

    const auto list = ok_json(alpha, "list")["files"];
    REQUIRE(list.size() == std::size(sizes));
    for (const auto& f : list) {
        CAPTURE(f.dump());
        CHECK(f["state"] == "ok");
        CHECK(f["published_at"].get<std::int64_t>() > 0);
    }

    const auto into = make_dir(beta.dir() / "in");
    for (const auto size : sizes) {
        CAPTURE(size);
        const auto name = "size-" + std::to_string(size);
        wait_holders(beta, name, ids[size], {"alpha"});
        const auto out = into / name;
        const auto j = fetch_ok(beta, name, out);
        CHECK(j["id"] == ids[size]);
        CHECK(j["size"] == size);
        CHECK(j["sources"] == json::array({"alpha"}));
        CHECK_SAME_FILE(alpha.dir() / ("src-" + std::to_string(size)), out);
    }
    // Nothing but the fetched files: no temporary file is left behind.
    CHECK(entries(into).size() == std::size(sizes));
    // What beta lists it shares because it fetched it (issue 10), nothing else.
    const auto listed = ok_json(beta, "list");   // kept: the loop below reads into it
    for (const auto& f : listed["files"]) CHECK(f["origin"] == "fetched");
}

TEST_CASE("300 MB of random data, many pieces, fetch intact") {
    Swarm swarm{"alpha", "beta"};
    auto& alpha = swarm["alpha"];
    auto& beta = swarm["beta"];
    const std::uint64_t size = 300'000'000 + 12'345;  // not a whole number of pieces
    const auto src = alpha.dir() / "big.bin";
    write_random(src, size, 42);
    const auto pub = publish(alpha, src, "big.bin");
    const std::string id = pub["id"];

    // The piece list served over HTTP hashes to the id.
    const auto pieces = curl(alpha, "/v1/files/" + id + "/pieces", swarm.dir());
    REQUIRE(pieces.status == 200);
    const auto list = parse_json(pieces.body);
    CHECK(list["size"] == size);
    const std::uint64_t piece_size = list["piece_size"];
    CHECK(list["pieces"].size() == (size + piece_size - 1) / piece_size);
    CHECK(list["pieces"].size() > 500);
    CHECK(proto::PieceList::from_json(list, id).ok());

    wait_holders(beta, "big.bin", id, {"alpha"});
    const auto out = beta.dir() / "big.bin";
    const auto j = fetch_ok(beta, "big.bin", out);
    CHECK(j["id"] == id);
    CHECK(j["size"] == size);
    CHECK_SAME_FILE(src, out);
    CHECK(entries(beta.dir()).count("big.bin") == 1);
    for (const auto& e : entries(beta.dir())) CHECK_FALSE(e.starts_with(".big.bin"));
}

TEST_CASE("names with spaces and UTF-8 are published and fetched; bad names are refused") {
    Swarm swarm{"alpha", "beta"};
    auto& alpha = swarm["alpha"];
    auto& beta = swarm["beta"];

    SUBCASE("an explicit name with spaces and UTF-8") {
        const std::string name = "my report ü 报告.pdf";
        const auto src = alpha.dir() / "report.pdf";
        write_random(src, 70'000, 1);
        const std::string id = publish(alpha, src, name)["id"];
        CHECK(publication(alpha, name)["path"] == src.string());
        wait_holders(beta, name, id, {"alpha"});
        const auto into = make_dir(beta.dir() / "downloads");
        const auto r = fetch(beta, {name, "-o", into.string() + "/", "--json"});
        INFO(r.describe());
        REQUIRE(r.exit_code == 0);
        CHECK(parse_json(r.out)["path"] == (into / name).string());
        CHECK_SAME_FILE(src, into / name);
    }
    SUBCASE("the default name is the file's base name, spaces and UTF-8 kept") {
        const std::string base = "notes de réunion 会议 2024.txt";
        const auto src = alpha.dir() / base;
        write_text(src, "ordre du jour\n");
        auto r = alpha.peerctl("--json", "publish", src.string());
        INFO(r.describe());
        REQUIRE(r.exit_code == 0);
        const auto j = parse_json(r.out);
        CHECK(j["name"] == base);
        wait_holders(beta, base, j["id"], {"alpha"});
        const auto cwd = make_dir(beta.dir() / "cwd");
        const auto f = fetch(beta, {base}, cwd);
        INFO(f.describe());
        REQUIRE(f.exit_code == 0);
        CHECK(contains(f.out, "fetched"));
        CHECK_SAME_FILE(src, cwd / base);
    }
    SUBCASE("bad names are refused before anything happens") {
        const auto src = alpha.dir() / "ok.txt";
        write_text(src, "fine\n");
        const std::vector<std::string> bad = {
            "a/b",      "..", ".", std::string(256, 'x'), "bell\x07", "new\nline", "\xff\xfe",
            "\xc2\x85",  // U+0085, a C1 control
        };
        for (const auto& name : bad) {
            CAPTURE(name);
            const auto r = alpha.peerctl("publish", src.string(), name);
            INFO(r.describe());
            CHECK((r.exit_code == 2 || r.exit_code == 1));
            CHECK(contains(r.err, "name"));
            CHECK(lines_in(r.err) == 1);
            CHECK(r.out.empty());

            const auto cwd = make_dir(beta.dir() / "cwd");
            const auto f = fetch(beta, {name}, cwd);
            INFO(f.describe());
            CHECK((f.exit_code == 2 || f.exit_code == 1));
            CHECK(contains(f.err, "name"));
            CHECK(entries(cwd).empty());
        }
        const auto empty = fetch(beta, {""});
        CHECK(empty.exit_code == 2);
        CHECK(ok_json(alpha, "list")["files"].empty());
    }
}

TEST_CASE(
    "fetch saves to -o FILE, into -o DIR/, or to ./NAME, and never overwrites without --force") {
    Swarm swarm{"alpha", "beta"};
    auto& alpha = swarm["alpha"];
    auto& beta = swarm["beta"];
    const auto src = alpha.dir() / "doc.bin";
    write_random(src, 3 * kPiece + 77, 7);
    const std::string id = publish(alpha, src, "doc.bin")["id"];
    wait_holders(beta, "doc.bin", id, {"alpha"});

    SUBCASE("-o FILE") {
        const auto out = beta.dir() / "renamed.data";
        fetch_ok(beta, "doc.bin", out);
        CHECK_SAME_FILE(src, out);
    }
    SUBCASE("-o DIR/ and -o DIR save DIR/NAME") {
        const auto into = make_dir(beta.dir() / "into");
        auto r = fetch(beta, {"doc.bin", "-o", into.string() + "/", "--json"});
        INFO(r.describe());
        REQUIRE(r.exit_code == 0);
        CHECK(parse_json(r.out)["path"] == (into / "doc.bin").string());
        CHECK_SAME_FILE(src, into / "doc.bin");
        const auto other = make_dir(beta.dir() / "other");
        r = fetch(beta, {"doc.bin", "-o", other.string()});
        REQUIRE(r.exit_code == 0);
        CHECK_SAME_FILE(src, other / "doc.bin");
    }
    SUBCASE("no -o saves ./NAME, relative to peerctl's directory, not peerd's") {
        const auto cwd = make_dir(beta.dir() / "cwd");
        const auto r = fetch(beta, {"doc.bin"}, cwd);
        INFO(r.describe());
        REQUIRE(r.exit_code == 0);
        CHECK(r.err.empty());  // no terminal: the summary only, on stdout
        CHECK(contains(r.out, "doc.bin"));
        CHECK(lines_in(r.out) == 1);
        CHECK_SAME_FILE(src, cwd / "doc.bin");
        CHECK(entries(cwd) == std::set<std::string>{"doc.bin"});
        // A relative -o is relative to peerctl's directory too.
        make_dir(cwd / "sub");
        const auto rel = fetch(beta, {"doc.bin", "-o", "sub/copy.bin"}, cwd);
        INFO(rel.describe());
        REQUIRE(rel.exit_code == 0);
        CHECK_SAME_FILE(src, cwd / "sub" / "copy.bin");
    }
    SUBCASE("an existing destination is left untouched without --force, replaced with it") {
        const auto dest = make_dir(beta.dir() / "dest") / "doc.bin";
        write_text(dest, "my own precious file\n");
        const auto old_time = fs::file_time_type::clock::now() - std::chrono::hours(48);
        fs::last_write_time(dest, old_time);

        const auto r = fetch(beta, {"doc.bin", "-o", dest.string()});
        INFO(r.describe());
        CHECK(r.exit_code == 1);
        CHECK(contains(r.err, "--force"));
        CHECK(contains(r.err, dest.string()));
        CHECK(lines_in(r.err) == 1);
        CHECK(read_bytes(dest) == "my own precious file\n");
        CHECK(fs::last_write_time(dest) == old_time);
        CHECK(entries(dest.parent_path()) == std::set<std::string>{"doc.bin"});

        // The same with the default destination.
        const auto cwd = dest.parent_path();
        const auto d = fetch(beta, {"doc.bin", "--json"}, cwd);
        CHECK(d.exit_code == 1);
        CHECK(d.out.empty());
        CHECK(read_bytes(dest) == "my own precious file\n");

        const auto forced = fetch(beta, {"doc.bin", "-o", dest.string(), "--force"});
        INFO(forced.describe());
        CHECK(forced.exit_code == 0);
        CHECK_SAME_FILE(src, dest);
        CHECK(entries(dest.parent_path()) == std::set<std::string>{"doc.bin"});
    }
    SUBCASE("-o into a directory that does not exist fails and creates nothing") {
        const auto missing = beta.dir() / "missing";
        for (const auto& out : {missing.string() + "/", (missing / "x.bin").string()}) {
            CAPTURE(out);
            const auto r = fetch(beta, {"doc.bin", "-o", out});
            INFO(r.describe());
            CHECK((r.exit_code == 1 || r.exit_code == 2));
            CHECK_FALSE(r.err.empty());
            CHECK_FALSE(fs::exists(missing));
        }
    }
}

TEST_CASE("--from picks the holder; several holders of one content all serve it") {
    Swarm swarm{"alpha", "beta", "carol"};
    auto& alpha = swarm["alpha"];
    auto& beta = swarm["beta"];
    auto& carol = swarm["carol"];
    const auto src_a = alpha.dir() / "shared.bin";
    const auto src_c = carol.dir() / "shared.bin";
    write_random(src_a, 6 * kPiece + 5, 99);
    fs::copy_file(src_a, src_c);
    const std::string id = publish(alpha, src_a, "shared.bin")["id"];
    CHECK(publish(carol, src_c, "shared.bin")["id"] == id);  // same bytes, same id
    wait_holders(beta, "shared.bin", id, {"alpha", "carol"});

    SUBCASE("--from carol") {
        const auto out = beta.dir() / "from-carol.bin";
        const auto j = fetch_ok(beta, "shared.bin", out, {"--from", "carol"});
        CHECK(j["sources"] == json::array({"carol"}));
        CHECK_SAME_FILE(src_a, out);
    }
    SUBCASE("--from alpha") {
        const auto out = beta.dir() / "from-alpha.bin";
        const auto j = fetch_ok(beta, "shared.bin", out, {"--from", "alpha"});
        CHECK(j["sources"] == json::array({"alpha"}));
        CHECK_SAME_FILE(src_a, out);
    }
    SUBCASE("no --from: any of them, the bytes are the same") {
        const auto out = beta.dir() / "any.bin";
        const auto j = fetch_ok(beta, "shared.bin", out);
        REQUIRE(!j["sources"].empty());
        for (const auto& s : j["sources"]) CHECK((s == "alpha" || s == "carol"));
        CHECK_SAME_FILE(src_a, out);
    }
    SUBCASE("an unknown --from fails, naming it, and writes nothing") {
        const auto into = make_dir(beta.dir() / "into");
        for (const std::string host : {"ghost", "beta"}) {
            CAPTURE(host);
            const auto r = fetch(beta, {"shared.bin", "-o", into.string(), "--from", host});
            INFO(r.describe());
            CHECK(r.exit_code == 1);
            CHECK(contains(r.err, host));
            CHECK(lines_in(r.err) == 1);
            CHECK(entries(into).empty());
        }
    }
}

TEST_CASE("different contents under one name: choices without a terminal, --id picks one") {
    Swarm swarm{"alpha", "beta", "carol"};
    auto& alpha = swarm["alpha"];
    auto& beta = swarm["beta"];
    auto& carol = swarm["carol"];
    const auto src_a = alpha.dir() / "a.bin";
    const auto src_c = carol.dir() / "c.bin";
    write_random(src_a, 2 * kPiece, 1);
    write_random(src_c, 2 * kPiece + 10, 2);
    const std::string id_a = publish(alpha, src_a, "report")["id"];
    const std::string id_c = publish(carol, src_c, "report")["id"];
    REQUIRE(id_a.substr(0, 12) != id_c.substr(0, 12));
    wait_discovered(swarm.tracker(), "alpha", "report", id_a);
    wait_discovered(swarm.tracker(), "carol", "report", id_c);
    const auto into = make_dir(beta.dir() / "into");

    SUBCASE("without a terminal: exit 1, the choices listed with the flag to pick one") {
        const auto r = fetch(beta, {"report", "-o", into.string()});
        INFO(r.describe());
        CHECK(r.exit_code == 1);
        CHECK(contains(r.err, "--id"));
        CHECK(contains(r.err, "alpha"));
        CHECK(contains(r.err, "carol"));
        CHECK(contains(r.err, id_a.substr(0, 12)));
        CHECK(contains(r.err, id_c.substr(0, 12)));
        CHECK(r.out.empty());
        CHECK(entries(into).empty());
    }
    SUBCASE("--json prints the choices") {
        const auto r = fetch(beta, {"report", "-o", into.string(), "--json"});
        INFO(r.describe());
        CHECK(r.exit_code == 1);
        const auto j = parse_json(r.out);
        CHECK(j["name"] == "report");
        REQUIRE(j["choices"].size() == 2);
        std::map<std::string, json> by_peer;
        for (const auto& c : j["choices"]) by_peer[c["peer"]] = c;
        REQUIRE(by_peer.size() == 2);
        CHECK(by_peer["alpha"]["id"] == id_a);
        CHECK(by_peer["alpha"]["size"] == 2 * kPiece);
        CHECK(by_peer["carol"]["id"] == id_c);
        CHECK(by_peer["carol"]["size"] == 2 * kPiece + 10);
        CHECK(by_peer["carol"]["address"] == "127.0.0.1");
        CHECK(by_peer["carol"]["port"] == carol.port());
        CHECK(contains(r.err, "--id"));
        CHECK(entries(into).empty());
    }
    SUBCASE("--id PREFIX picks that content") {
        const auto out_c = into / "c";
        const auto j = fetch_ok(beta, "report", out_c, {"--id", id_c.substr(0, 10)});
        CHECK(j["id"] == id_c);
        CHECK(j["sources"] == json::array({"carol"}));
        CHECK_SAME_FILE(src_c, out_c);
        const auto out_a = into / "a";
        CHECK(fetch_ok(beta, "report", out_a, {"--id", id_a})["id"] == id_a);
        CHECK_SAME_FILE(src_a, out_a);
    }
    SUBCASE("--from HOST picks that host's content") {
        const auto out = into / "from-alpha";
        CHECK(fetch_ok(beta, "report", out, {"--from", "alpha"})["id"] == id_a);
        CHECK_SAME_FILE(src_a, out);
    }
    SUBCASE("an --id that matches nothing fails") {
        const auto r = fetch(beta, {"report", "-o", into.string(), "--id", "0123456789abcdef0"});
        INFO(r.describe());
        CHECK(r.exit_code == 1);
        CHECK_FALSE(r.err.empty());
        CHECK(entries(into).empty());
    }
}

TEST_CASE("fetch of an unknown name, or of what only this peer publishes, fails clearly") {
    Swarm swarm{"alpha", "beta"};
    auto& alpha = swarm["alpha"];
    auto& beta = swarm["beta"];
    const auto src = alpha.dir() / "mine.bin";
    write_random(src, 1234, 5);
    const std::string id = publish(alpha, src, "mine.bin")["id"];
    wait_holders(beta, "mine.bin", id, {"alpha"});
    const auto into = make_dir(alpha.dir() / "into");

    SUBCASE("an unknown name") {
        for (const bool as_json : {false, true}) {
            CAPTURE(as_json);
            std::vector<std::string> args{"no-such-file.txt", "-o", into.string()};
            if (as_json) args.push_back("--json");
            const auto r = fetch(beta, args);
            INFO(r.describe());
            CHECK(r.exit_code == 1);
            CHECK(contains(r.err, "no-such-file.txt"));
            CHECK(lines_in(r.err) == 1);
            CHECK(r.out.empty());
        }
    }
    SUBCASE("a name only this peer publishes: never downloaded from itself") {
        const auto r = fetch(alpha, {"mine.bin", "-o", into.string()});
        INFO(r.describe());
        CHECK(r.exit_code == 1);
        CHECK(contains(r.err, "mine.bin"));
        CHECK(contains(r.err, "this peer"));
        CHECK(entries(into).empty());
    }
    SUBCASE("a name this peer and another publish: fetched from the other only") {
        const auto copy = beta.dir() / "copy.bin";
        fs::copy_file(src, copy);
        publish(beta, copy, "mine.bin");
        wait_holders(alpha, "mine.bin", id, {"alpha", "beta"});
        const auto out = into / "again.bin";
        const auto j = fetch_ok(alpha, "mine.bin", out);
        CHECK(j["sources"] == json::array({"beta"}));
        CHECK_SAME_FILE(src, out);
    }
    CHECK(alpha.running());
    CHECK(beta.running());
}

// Cancels every transfer of `peer` (their partial files are removed).
void cancel_all(PeerFixture& peer) {
    const auto list = ok_json(peer, "transfers");
    for (const auto& t : list["transfers"]) {
        const auto r = peer.peerctl("cancel", std::to_string(t["id"].get<std::uint64_t>()));
        CHECK(r.exit_code == 0);
    }
}

TEST_CASE("a holder gone between lookup and download: exit 1 saying the transfer waits; cancel leaves nothing") {
    // Without reachability checks: the ghost below never listened, which a
    // checking tracker reports at once (test_reach.cpp, "reach 4"); here it
    // stands for a peer that passed its check and died a moment ago.
    TrackerFixture::Options unchecked;
    unchecked.extra_args = {"--no-reach-check"};
    Swarm swarm({"alpha", "beta"}, unchecked);
    auto& alpha = swarm["alpha"];
    auto& beta = swarm["beta"];
    const auto into = make_dir(beta.dir() / "into");

    SUBCASE("the tracker still lists a holder whose upload port refuses connections") {
        // A peer session that announces a file on a port where nobody listens:
        // exactly what the tracker shows for a peer that died a moment ago.
        const auto dead_port = free_port();
        const auto id = hex64("gone");
        auto ghost = swarm.tracker().start_peer(
            "ghost", {"--port", std::to_string(dead_port), "--publish", "gone.bin:1048576:" + id});
        wait_holders(beta, "gone.bin", id, {"ghost"});
        const auto since = Clock::now();
        const auto r = fetch(beta, {"gone.bin", "-o", into.string()});
        INFO(r.describe());
        CHECK(r.exit_code == 1);
        CHECK_FALSE(r.err.empty());
        CHECK(lines_in(r.err) == 1);
        CHECK(contains(r.err, "is kept and continues by itself"));
        CHECK_FALSE(fs::exists(into / "gone.bin"));
        CHECK(Clock::now() - since < kDeadline);  // a refused connection is not a stall
        cancel_all(beta);
        CHECK(wait_until([&] { return entries(into).empty(); }, kDeadline));
    }
    SUBCASE("the real peerd killed with SIGKILL right after the lookup could have seen it") {
        const auto src = alpha.dir() / "vanishing.bin";
        write_random(src, 4u << 20, 8);
        const std::string id = publish(alpha, src, "vanishing.bin")["id"];
        wait_holders(beta, "vanishing.bin", id, {"alpha"});
        alpha.kill();
        // Whether the tracker has dropped alpha yet or not, the fetch fails cleanly.
        const auto r = fetch(beta, {"vanishing.bin", "-o", into.string()});
        INFO(r.describe());
        CHECK(r.exit_code == 1);
        CHECK_FALSE(r.err.empty());
        CHECK(lines_in(r.err) == 1);
        CHECK_FALSE(fs::exists(into / "vanishing.bin"));
        cancel_all(beta);
        CHECK(wait_until([&] { return entries(into).empty(); }, kDeadline));
    }
    SUBCASE("the real peerd frozen after the lookup, then killed during the download") {
        const auto src = alpha.dir() / "frozen.bin";
        write_random(src, 4u << 20, 9);
        const std::string id = publish(alpha, src, "frozen.bin")["id"];
        wait_holders(beta, "frozen.bin", id, {"alpha"});
        // Stopped, alpha keeps its tracker session and its listening socket:
        // beta's lookup finds it and its connection is accepted, unanswered.
        alpha.process().signal(SIGSTOP);
        auto fetcher = beta.start_peerctl({"fetch", "frozen.bin", "-o", into.string()});
        REQUIRE_MESSAGE(wait_until([&] { return downloading(beta); }, kDeadline),
                        fetcher->describe());
        alpha.kill();
        const auto code = fetcher->wait(kDeadline);
        INFO(fetcher->describe());
        REQUIRE(code.has_value());
        CHECK(*code == 1);
        CHECK(lines_in(fetcher->errors()) == 1);
        CHECK(contains(fetcher->errors(), "frozen.bin"));
        CHECK_FALSE(fs::exists(into / "frozen.bin"));
        cancel_all(beta);
        CHECK(wait_until([&] { return entries(into).empty(); }, kDeadline));
        CHECK_FALSE(downloading(beta));
    }
    CHECK(beta.running());
    CHECK(is_connected(beta));
}

// A tmpfs of `bytes` mounted for the test's lifetime (needs root).
class SmallDisk {
public:
    SmallDisk(fs::path at, std::size_t bytes) : at_(std::move(at)) {
        fs::create_directories(at_);
        const std::string options = "size=" + std::to_string(bytes);
        mounted_ = ::mount("tmpfs", at_.c_str(), "tmpfs", 0, options.c_str()) == 0;
    }
    ~SmallDisk() {
        if (mounted_) ::umount2(at_.c_str(), MNT_DETACH);
    }
    SmallDisk(const SmallDisk&) = delete;
    SmallDisk& operator=(const SmallDisk&) = delete;
    bool mounted() const { return mounted_; }

private:
    fs::path at_;
    bool mounted_ = false;
};

TEST_CASE("a fetch onto a full disk fails with a clear error and leaves nothing behind") {
    // ctest runs it as its own entry, peer_root, reported skipped when not root.
    REQUIRE_MESSAGE(::geteuid() == 0, "mounting a small tmpfs needs root");
    Swarm swarm{"alpha", "beta"};
    auto& alpha = swarm["alpha"];
    auto& beta = swarm["beta"];
    SmallDisk disk(beta.dir() / "small", 1u << 20);
    REQUIRE(disk.mounted());
    const auto src = alpha.dir() / "large.bin";
    write_random(src, 5'000'000, 11);
    const std::string id = publish(alpha, src, "large.bin")["id"];
    wait_holders(beta, "large.bin", id, {"alpha"});

    const auto r = fetch(beta, {"large.bin", "-o", (beta.dir() / "small" / "large.bin").string()});
    INFO(r.describe());
    CHECK(r.exit_code == 1);
    CHECK(lines_in(r.err) == 1);
    CHECK(contains(r.err, "No space left on device"));
    CHECK_FALSE(fs::exists(beta.dir() / "small" / "large.bin"));   // nothing under the final name
    // What was verified before the disk filled is kept for a resume; cancel discards it.
    cancel_all(beta);
    CHECK(wait_until([&] { return entries(beta.dir() / "small").empty(); }, kDeadline));

    // The disk has room again elsewhere: the same fetch works, and beta serves on.
    const auto ok = fetch(beta, {"large.bin", "-o", (beta.dir() / "large.bin").string()});
    INFO(ok.describe());
    CHECK(ok.exit_code == 0);
    CHECK(read_bytes(beta.dir() / "large.bin") == read_bytes(src));
    CHECK(is_connected(beta));
}

TEST_CASE("a file changed after publishing is not served until published again") {
    Swarm swarm{"alpha", "beta"};
    auto& alpha = swarm["alpha"];
    auto& beta = swarm["beta"];
    const auto src = alpha.dir() / "draft.bin";
    write_random(src, 2 * kPiece + 100, 3);
    const std::string old_id = publish(alpha, src, "draft.bin")["id"];
    wait_holders(beta, "draft.bin", old_id, {"alpha"});
    append_byte(src);

    // The tracker still lists it (nobody looked at the file yet): the download
    // stops, and the transfer waits for a holder of that content.
    const auto into = make_dir(beta.dir() / "into");
    const auto r = fetch(beta, {"draft.bin", "-o", into.string()});
    INFO(r.describe());
    CHECK(r.exit_code == 1);
    CHECK(contains(r.err, "is kept and continues by itself"));
    CHECK_FALSE(fs::exists(into / "draft.bin"));

    const auto listed = publication(alpha, "draft.bin");
    CHECK(listed["state"] == "changed");
    CHECK(listed["id"] == old_id);
    const auto table = alpha.peerctl("list");
    CHECK(contains(table.out, "CHANGED"));
    CHECK(curl(alpha, "/v1/files/" + old_id, swarm.dir()).status == 404);
    CHECK(curl(alpha, "/v1/files/" + old_id + "/pieces", swarm.dir()).status == 404);
    // ... and it is withdrawn from the tracker.
    wait_holders(beta, "draft.bin", old_id, {});

    // Publishing it again hashes the new contents and serves them.
    const auto again = publish(alpha, src, "draft.bin");
    const std::string new_id = again["id"];
    CHECK(new_id != old_id);
    CHECK(again["size"] == 2 * kPiece + 101);
    CHECK(publication(alpha, "draft.bin")["state"] == "ok");
    const auto whole = curl(alpha, "/v1/files/" + new_id, swarm.dir());
    CHECK(whole.status == 200);
    CHECK(whole.body == read_bytes(src));
    wait_holders(beta, "draft.bin", new_id, {"alpha"});
    const auto out = into / "draft.bin";
    CHECK(fetch_ok(beta, "draft.bin", out)["id"] == new_id);
    CHECK_SAME_FILE(src, out);
}

TEST_CASE("a restarted peerd keeps its publications and serves them again") {
    Swarm swarm{"alpha", "beta"};
    auto& alpha = swarm["alpha"];
    auto& beta = swarm["beta"];
    const auto one = alpha.dir() / "one.bin";
    const auto two = alpha.dir() / "two.bin";
    write_random(one, kPiece + 9, 11);
    write_random(two, 3 * kPiece, 12);
    const std::string id_one = publish(alpha, one, "one.bin")["id"];
    const std::string id_two = publish(alpha, two, "two name.bin")["id"];
    wait_holders(beta, "two name.bin", id_two, {"alpha"});
    const auto old_port = alpha.port();

    CHECK(alpha.stop() == 0);  // a clean stop on SIGTERM
    CHECK_FALSE(fs::exists(alpha.socket()));
    wait_holders(beta, "two name.bin", id_two, {});

    SUBCASE("unchanged files come back as they were") {
        alpha.start();
        const auto files = ok_json(alpha, "list")["files"];
        REQUIRE(files.size() == 2);
        std::map<std::string, json> by_name;
        for (const auto& f : files) by_name[f["name"]] = f;
        CHECK(by_name["one.bin"]["id"] == id_one);
        CHECK(by_name["one.bin"]["state"] == "ok");
        CHECK(by_name["two name.bin"]["id"] == id_two);
        CHECK(by_name["two name.bin"]["path"] == two.string());
        CHECK(by_name["two name.bin"]["state"] == "ok");

        // The tracker sees them again, at alpha's new upload port.
        REQUIRE(wait_until(
            [&] {
                const auto r = swarm.tracker().trackerctl("--json", "discover", "alpha");
                if (r.exit_code != 0) return false;
                return json::parse(r.out, nullptr, false)["files"].size() == 2;
            },
            kReconnect));
        INFO("upload port before " << old_port << ", after " << alpha.port());
        wait_holders(beta, "two name.bin", id_two, {"alpha"});
        const auto out = beta.dir() / "two.bin";
        const auto j = fetch_ok(beta, "two name.bin", out);
        CHECK(j["sources"] == json::array({"alpha"}));
        CHECK_SAME_FILE(two, out);
    }
    SUBCASE("a file that changed while peerd was down is listed as changed and not announced") {
        append_byte(one);
        alpha.start();
        CHECK(publication(alpha, "one.bin")["state"] == "changed");
        CHECK(publication(alpha, "two name.bin")["state"] == "ok");
        wait_holders(beta, "two name.bin", id_two, {"alpha"});
        CHECK(holders(beta, "one.bin", id_one).empty());
        CHECK(curl(alpha, "/v1/files/" + id_one, swarm.dir()).status == 404);
    }
}

TEST_CASE("peers started before the tracker connect once it is up") {
    TempDir dir;
    const auto port = free_port();  // nobody listens here yet
    const auto endpoint = "127.0.0.1:" + std::to_string(port);
    auto alpha = start_peer("alpha", endpoint, dir.path());
    auto beta = start_peer("beta", endpoint, dir.path());

    const auto status = ok_json(*alpha, "status");
    CHECK(status["connected"] == false);
    CHECK(status["tracker"] == endpoint);
    CHECK_FALSE(status["tracker_error"].get<std::string>().empty());
    // Offline, publishing still works (announced on connect); fetching says why it cannot.
    const auto early = alpha->dir() / "early.bin";
    write_random(early, kPiece + 1, 21);
    const std::string id = publish(*alpha, early, "early.bin")["id"];
    const auto offline = fetch(*beta, {"early.bin", "-o", (beta->dir() / "x").string()});
    INFO(offline.describe());
    CHECK(offline.exit_code == 1);
    CHECK(contains(offline.err, "tracker"));
    CHECK_FALSE(fs::exists(beta->dir() / "x"));

    TrackerFixture tracker(
        {.heartbeat_s = {}, .peer_timeout_s = {}, .extra_args = {}, .port = port});
    REQUIRE(tracker.port() == port);
    REQUIRE_MESSAGE(wait_until(
                        [&] {
                            const auto r = tracker.trackerctl("--json", "peers");
                            if (r.exit_code != 0) return false;
                            std::set<std::string> names;
                            const auto doc = json::parse(r.out, nullptr,
                                                         false);  // kept: the loop must not dangle
                            for (const auto& p : doc["peers"])
                                names.insert(p["name"].get<std::string>());
                            return names == std::set<std::string>{"alpha", "beta"};
                        },
                        kReconnect),
                    alpha->describe() << "\n"
                                      << tracker.process().describe());
    CHECK(ok_json(*alpha, "status")["connected"] == true);

    wait_holders(*beta, "early.bin", id, {"alpha"});
    const auto out = beta->dir() / "early.bin";
    fetch_ok(*beta, "early.bin", out);
    CHECK_SAME_FILE(early, out);

    const auto late = beta->dir() / "late.bin";
    write_random(late, 5000, 22);
    const std::string late_id = publish(*beta, late, "late.bin")["id"];
    wait_holders(*alpha, "late.bin", late_id, {"beta"});
    const auto got = alpha->dir() / "late.bin";
    fetch_ok(*alpha, "late.bin", got);
    CHECK_SAME_FILE(late, got);
}

TEST_CASE("a tracker restarted under the peers is filled again by their announcements") {
    Swarm swarm{"alpha", "beta"};
    auto& alpha = swarm["alpha"];
    auto& beta = swarm["beta"];
    const auto src = alpha.dir() / "persist.bin";
    write_random(src, 4 * kPiece + 4, 31);
    const std::string id = publish(alpha, src, "persist.bin")["id"];
    wait_holders(beta, "persist.bin", id, {"alpha"});
    const auto port = swarm.tracker().port();

    swarm.tracker().restart();
    REQUIRE(swarm.tracker().port() == port);
    REQUIRE(wait_until(
        [&] {
            const auto r = swarm.tracker().trackerctl("--json", "files");
            if (r.exit_code != 0) return false;
            const auto files = json::parse(r.out, nullptr, false)["files"];
            return files.size() == 1 && files[0]["name"] == "persist.bin" &&
                   files[0]["holders"] == json::array({"alpha"});
        },
        kReconnect));
    Swarm::wait_connected(beta);
    wait_holders(beta, "persist.bin", id, {"alpha"});
    const auto out = beta.dir() / "persist.bin";
    const auto j = fetch_ok(beta, "persist.bin", out);
    CHECK(j["id"] == id);
    CHECK_SAME_FILE(src, out);
}

TEST_CASE("any HTTP client downloads a published file by id: whole, by range, HEAD, pieces") {
    Swarm swarm{"alpha"};
    auto& alpha = swarm["alpha"];
    const auto src = alpha.dir() / "web.bin";
    const std::uint64_t size = 4 * kPiece + 5;
    write_random(src, size, 77);
    const std::string id = publish(alpha, src, "web.bin")["id"];
    const auto bytes = read_bytes(src);
    const auto scratch = make_dir(swarm.dir() / "http");

    SUBCASE("GET, whole") {
        const auto r = curl(alpha, "/v1/files/" + id, scratch);
        CHECK(r.status == 200);
        CHECK(header(r.headers, "Content-Length") == std::to_string(size));
        CHECK(header(r.headers, "Accept-Ranges") == "bytes");
        CHECK(r.body == bytes);
    }
    SUBCASE("GET with Range: bytes=10-19") {
        const auto r = curl(alpha, "/v1/files/" + id, scratch, {"-H", "Range: bytes=10-19"});
        CHECK(r.status == 206);
        CHECK(header(r.headers, "Content-Range") == "bytes 10-19/" + std::to_string(size));
        CHECK(header(r.headers, "Content-Length") == "10");
        CHECK(r.body == bytes.substr(10, 10));
        const auto tail = curl(alpha, "/v1/files/" + id, scratch, {"-H", "Range: bytes=-7"});
        CHECK(tail.status == 206);
        CHECK(tail.body == bytes.substr(bytes.size() - 7));
    }
    SUBCASE("HEAD") {
        const auto r = curl(alpha, "/v1/files/" + id, scratch, {"-I"});
        CHECK(r.status == 200);
        CHECK(header(r.headers, "Content-Length") == std::to_string(size));
        // On the wire: the headers and not one byte of body.
        const auto raw =
            raw_http(alpha.port(),
                     "HEAD /v1/files/" + id + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        CHECK(status_of(raw) == 200);
        CHECK(contains(raw, "\r\nContent-Length: " + std::to_string(size) + "\r\n"));
        CHECK(raw.find("\r\n\r\n") + 4 == raw.size());
    }
    SUBCASE("the piece list as JSON") {
        const auto r = curl(alpha, "/v1/files/" + id + "/pieces", scratch);
        CHECK(r.status == 200);
        CHECK(contains(header(r.headers, "Content-Type"), "json"));
        const auto j = parse_json(r.body);
        CHECK(j["id"] == id);
        CHECK(j["size"] == size);
        CHECK(j["piece_size"] == kPiece);
        REQUIRE(j["pieces"].size() == 5);
        for (std::size_t i = 0; i < 5; ++i) {
            proto::Sha256 h;
            const auto piece = std::string_view(bytes).substr(i * kPiece, kPiece);
            h.update(piece.data(), piece.size());
            CHECK(j["pieces"][i] == proto::to_hex(h.finish()));
        }
        CHECK(proto::PieceList::from_json(j, id).ok());
    }
    SUBCASE("two requests on one keep-alive connection") {
        const auto a = scratch / "a", b = scratch / "b";
        const auto r = run({"/usr/bin/curl", "-sS", "--max-time", "30", "-w", "%{num_connects}\n",
                            url(alpha, "/v1/files/" + id), "-o", a.string(),
                            url(alpha, "/v1/files/" + id), "-o", b.string()});
        INFO(r.describe());
        REQUIRE(r.exit_code == 0);
        CHECK(r.out == "1\n0\n");  // the second reused the first's connection
        CHECK_SAME_FILE(src, a);
        CHECK_SAME_FILE(src, b);
    }
    SUBCASE("wget") {
        const auto out = scratch / "wget.bin";
        const auto r =
            run({"/usr/bin/wget", "-q", "-O", out.string(), url(alpha, "/v1/files/" + id)});
        INFO(r.describe());
        CHECK(r.exit_code == 0);
        CHECK_SAME_FILE(src, out);
    }
}

TEST_CASE("bad HTTP requests are answered correctly and the peer keeps serving") {
    Swarm swarm{"alpha"};
    auto& alpha = swarm["alpha"];
    const auto src = alpha.dir() / "served.bin";
    const std::uint64_t size = kPiece + 3;
    write_random(src, size, 55);
    const std::string id = publish(alpha, src, "served.bin")["id"];
    const auto file = "/v1/files/" + id;

    SUBCASE("garbage bytes: 400") {
        const auto r =
            raw_http(alpha.port(), std::string("\x16\x03\x01\x02\x00garbage\r\n\r\n", 16));
        CHECK(status_of(r) == 400);
        const auto lf = raw_http(alpha.port(), "GET\r\n\r\n");
        CHECK(status_of(lf) == 400);
    }
    SUBCASE("huge headers: 431") {
        const auto r = raw_http(alpha.port(), "GET " + file + " HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                                  std::string(16 * 1024, 'a') + "\r\n\r\n");
        CHECK(status_of(r) == 431);
        std::string many = "GET " + file + " HTTP/1.1\r\nHost: x\r\n";
        for (int i = 0; i < 1000; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
        CHECK(status_of(raw_http(alpha.port(), many + "\r\n")) == 431);
    }
    SUBCASE("an unknown id: 404") {
        const auto r =
            raw_http(alpha.port(), "GET /v1/files/" + hex64("unknown") +
                                       " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        CHECK(status_of(r) == 404);
        CHECK(curl(alpha, "/v1/files/" + hex64("unknown") + "/pieces", swarm.dir()).status == 404);
        // Nothing but published ids: no path off the network ever reaches the disk.
        const std::vector<std::string> targets = {"/v1/files/../../etc/passwd", "/etc/passwd",
                                                  "/v1/files/" + id.substr(0, 63), "/"};
        for (const auto& target : targets) {
            CAPTURE(target);
            const auto t =
                raw_http(alpha.port(),
                         "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            CHECK((status_of(t) == 404 || status_of(t) == 400));
        }
    }
    SUBCASE("a range outside the file: 416") {
        const auto r =
            curl(alpha, file, swarm.dir(), {"-H", "Range: bytes=" + std::to_string(size) + "-"});
        CHECK(r.status == 416);
        CHECK(header(r.headers, "Content-Range") == "bytes */" + std::to_string(size));
        const auto raw = raw_http(
            alpha.port(), "GET " + file + " HTTP/1.1\r\nHost: x\r\nRange: bytes=" +
                              std::to_string(size + 100) + "-\r\nConnection: close\r\n\r\n");
        CHECK(status_of(raw) == 416);
    }
    SUBCASE("a method other than GET and HEAD: 405") {
        const auto r = raw_http(alpha.port(), "POST " + file +
                                                  " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                                  "Connection: close\r\n\r\n");
        CHECK(status_of(r) == 405);
    }

    // Whatever happened above, alpha is up and serves the file whole.
    INFO(alpha.describe());
    REQUIRE(alpha.running());
    const auto whole = curl(alpha, file, swarm.dir());
    CHECK(whole.status == 200);
    CHECK(whole.body == read_bytes(src));
    CHECK_FALSE(contains(alpha.process().errors(), "runtime error"));
    CHECK(alpha.stop() == 0);
}

TEST_CASE("peerctl status shows name, tracker, link, address and upload port") {
    Swarm swarm{"alpha"};
    auto& alpha = swarm["alpha"];
    const auto j = ok_json(alpha, "status");
    CHECK(j["name"] == "alpha");
    CHECK(j["tracker"] == swarm.tracker().endpoint());
    CHECK(j["connected"] == true);
    CHECK(j["address"] == "127.0.0.1");
    REQUIRE(j["port"].is_number_unsigned());
    CHECK(j["port"] == alpha.port());
    CHECK(j["port"].get<int>() > 0);
    // The port is the upload server's: an HTTP client gets an answer there.
    CHECK(curl(alpha, "/v1/files/" + hex64("x"), swarm.dir()).status == 404);
    // The tracker lists the same port for alpha.
    const auto peers = swarm.tracker().trackerctl("--json", "peers");
    REQUIRE(peers.exit_code == 0);
    const auto listed = parse_json(peers.out)["peers"];
    REQUIRE(listed.size() == 1);
    CHECK(listed[0]["port"] == alpha.port());

    const auto human = alpha.peerctl("status");
    INFO(human.describe());
    CHECK(human.exit_code == 0);
    CHECK(contains(human.out, "alpha"));
    CHECK(contains(human.out, std::to_string(alpha.port())));

    struct stat st {};
    REQUIRE(stat(alpha.socket().c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 07777) == 0600);
}

TEST_CASE(
    "peerctl exits 3 saying how to start peerd when no daemon listens, 2 on a bad command line") {
    TempDir dir;
    const auto socket = (dir / "absent.sock").string();
    for (const bool as_json : {false, true}) {
        CAPTURE(as_json);
        std::vector<std::string> argv{peerctl_binary().string(), "--socket", socket, "status"};
        if (as_json) argv.push_back("--json");
        const auto r = run(argv);
        INFO(r.describe());
        CHECK(r.exit_code == 3);
        CHECK(contains(r.err, socket));
        CHECK(contains(r.err, "peerd"));
        CHECK(contains(r.err, "start"));
        CHECK(lines_in(r.err) == 1);
        CHECK(r.out.empty());
    }
    const auto by_env = run({peerctl_binary().string(), "list"}, {{"PEERD_SOCKET", socket}});
    INFO(by_env.describe());
    CHECK(by_env.exit_code == 3);
    CHECK(contains(by_env.err, socket));

    const std::vector<std::vector<std::string>> bad = {
        {}, {"bogus"}, {"fetch"}, {"publish"}, {"unpublish"}, {"list", "--no-such-flag"},
    };
    for (const auto& args : bad) {
        std::vector<std::string> argv{peerctl_binary().string(), "--socket", socket};
        argv.insert(argv.end(), args.begin(), args.end());
        const auto r = run(argv);
        INFO(r.describe());
        CHECK(r.exit_code == 2);
        CHECK_FALSE(r.err.empty());
    }

    SUBCASE("a peerd that stopped") {
        TrackerFixture tracker;
        auto alpha = start_peer("alpha", tracker.endpoint(), dir.path());
        CHECK(alpha->stop() == 0);
        const auto r = alpha->peerctl("status");
        INFO(r.describe());
        CHECK(r.exit_code == 3);
        CHECK(contains(r.err, alpha->socket().string()));
    }
}

TEST_CASE("control socket clients that never complete a hello are closed after the hello timeout") {
    Swarm swarm{"alpha"};
    auto& alpha = swarm["alpha"];
    // A peerctl-like session that did say hello: the timeout is not for it.
    auto greeted = common::Client::connect_unix(alpha.socket().string(), kDeadline);
    REQUIRE(greeted.ok());
    proto::Hello hello;
    hello.role = "admin";
    REQUIRE((*greeted)->request<proto::Welcome>(hello, kDeadline).ok());

    const auto since = Clock::now();
    RawConnection silent(alpha.socket());
    RawConnection partial(alpha.socket());
    REQUIRE(partial.send_all(std::string("\0\0\0\x64{\"type\":", 12)));  // 100 bytes announced, 8 sent
    // While they wait, the socket serves others.
    CHECK(alpha.peerctl("status").exit_code == 0);
    // Both wait out the same timeout (5 s), so together they cost one.
    CHECK(silent.closed_within(kDeadline));
    CHECK(partial.closed_within(kDeadline));
    CHECK(Clock::now() - since >= Millis{proto::kHelloTimeoutMs} - Millis{1000});

    INFO(alpha.describe());
    REQUIRE(alpha.running());
    CHECK((*greeted)->request<proto::Status>(proto::GetStatus{}, kDeadline).ok());
    CHECK(ok_json(alpha, "status")["name"] == "alpha");
    CHECK_FALSE(contains(alpha.process().errors(), "runtime error"));
    CHECK(alpha.stop() == 0);
}

TEST_CASE("the fetches' memory budget is --fetch-memory, shown by status; a small one still fetches") {
    TrackerFixture tracker;
    TempDir dir;
    auto alpha = start_peer("alpha", tracker.endpoint(), dir.path());
    auto beta = start_peer("beta", tracker.endpoint(), dir.path(),
                           {.extra_args = {"--fetch-memory", "16Mi"}});
    Swarm::wait_connected(*alpha);
    Swarm::wait_connected(*beta);
    auto status = ok_json(*beta, "status");
    CHECK(status["fetch_memory_limit"] == 16u << 20);
    CHECK(status["fetch_memory_used"] == 0);
    CHECK(ok_json(*alpha, "status")["fetch_memory_limit"] == 256u << 20);

    const auto src = alpha->dir() / "budget.bin";
    write_random(src, 40u << 20, 31);  // 160 pieces of 256 KiB: far more than 16 MiB at once
    const std::string id = publish(*alpha, src, "budget.bin")["id"];
    wait_holders(*beta, "budget.bin", id, {"alpha"});
    const auto out = beta->dir() / "budget.bin";
    fetch_ok(*beta, "budget.bin", out);
    CHECK_SAME_FILE(src, out);
    status = ok_json(*beta, "status");
    CHECK(status["fetch_memory_used"] == 0);  // every buffer given back
}

TEST_CASE("a holder that advertises a host name (localhost) is fetched from") {
    // Without --trust-advertise the tracker would give out 127.0.0.1, the address alpha connects from.
    TrackerFixture tracker({.heartbeat_s = {}, .peer_timeout_s = {}, .extra_args = {"--trust-advertise"}});
    TempDir dir;
    auto alpha = start_peer("alpha", tracker.endpoint(), dir.path(),
                            {.extra_args = {"--advertise", "localhost"}});
    auto beta = start_peer("beta", tracker.endpoint(), dir.path());
    Swarm::wait_connected(*alpha);
    Swarm::wait_connected(*beta);
    CHECK(ok_json(*alpha, "status")["address"] == "localhost");

    const auto src = alpha->dir() / "named.bin";
    write_random(src, 3 * kPiece + 5, 41);
    const std::string id = publish(*alpha, src, "named.bin")["id"];
    wait_holders(*beta, "named.bin", id, {"alpha"});
    const auto out = beta->dir() / "named.bin";
    const auto j = fetch_ok(*beta, "named.bin", out);
    CHECK(j["sources"] == json::array({"alpha"}));
    CHECK_SAME_FILE(src, out);
}
