// tests/integration/test_swarm.cpp — swarming (issue 10): every peer that
// fetches a file helps serve it. Real trackerd, peerd, peerctl and
// trackerctl on loopback; file bytes compared on disk.
#include <doctest/doctest.h>

#include "tests/integration/harness.hpp"
#include "tests/integration/peer_helpers.hpp"

using namespace peershare;
using namespace peershare::test;
using nlohmann::json;

namespace {

// What `host` publishes according to the tracker: name → content id.
std::map<std::string, std::string> discovered(TrackerFixture& tracker, const std::string& host) {
    const auto r = tracker.trackerctl("--json", "discover", host);
    std::map<std::string, std::string> out;
    const auto doc = json::parse(r.out, nullptr, false);
    if (r.exit_code != 0 || !doc.is_object() || !doc.contains("files")) return out;
    for (const auto& f : doc["files"]) out[f.value("name", "")] = f.value("id", "");
    return out;
}

}  // namespace

TEST_CASE("a fetched file is shared by default under its name; a third peer fetches it from the fetcher alone") {
    Swarm swarm{"host1", "host2", "host3"};
    auto& host1 = swarm["host1"];
    auto& host2 = swarm["host2"];
    auto& host3 = swarm["host3"];
    const auto src = host1.dir() / "big";
    write_random(src, 3'000'000, 51);
    const std::string cid = publish(host1, src, "big")["id"];
    wait_holders(host2, "big", cid, {"host1"});

    const auto at2 = host2.dir() / "big";
    fetch_ok(host2, "big", at2);
    wait_discovered(swarm.tracker(), "host2", "big", cid);
    const auto listed = publication(host2, "big");
    CHECK(listed["origin"] == "fetched");
    CHECK(listed["path"] == at2.string());
    CHECK(listed["id"] == cid);
    CHECK(listed["state"] == "ok");
    CHECK(publication(host1, "big")["origin"] == "published");
    const auto table = host2.peerctl("list");
    CHECK(contains(table.out, "ORIGIN"));
    CHECK(contains(table.out, "fetched"));

    const auto at3 = host3.dir() / "big";
    const auto j = fetch_ok(host3, "big", at3, {"--from", "host2"});
    CHECK(j["sources"] == json::array({"host2"}));
    CHECK(file_difference(src, at3).empty());

    // Shared like any publication: unpublish stops it.
    ok_json(host2, "unpublish", "big");
    REQUIRE(wait_until([&] { return !discovered(swarm.tracker(), "host2").contains("big"); }, kDeadline));
}

TEST_CASE("fetch --no-share keeps the file to this peer; share-fetched = false is the peer-wide opt-out") {
    Swarm swarm{"host1", "host2"};
    auto& host1 = swarm["host1"];
    auto& host2 = swarm["host2"];
    auto& host4 = swarm.add("host4", {{"--share-fetched", "false"}});
    Swarm::wait_connected(host4);
    const auto src = host1.dir() / "small", other = host1.dir() / "other";
    write_random(src, 300'000, 52);
    write_random(other, 300'000, 53);
    const std::string cid = publish(host1, src, "small")["id"];
    const std::string other_id = publish(host1, other, "other")["id"];
    wait_holders(host2, "other", other_id, {"host1"});

    // A file is shared once its stat in the worker pool returns, after the
    // fetch has answered: a second fetch, whose work queues behind it, is
    // the point after which the first one's publication would be there.
    for (auto* peer : {&host2, &host4}) {
        fetch_ok(*peer, "small", peer->dir() / "small", peer == &host2 ? std::vector<std::string>{"--no-share"}
                                                                       : std::vector<std::string>{});
        fetch_ok(*peer, "other", peer->dir() / "other");
        CHECK(file_difference(src, peer->dir() / "small").empty());
    }
    wait_discovered(swarm.tracker(), "host2", "other", other_id);   // the default, for contrast
    CHECK_FALSE(discovered(swarm.tracker(), "host2").contains("small"));
    CHECK(ok_json(host2, "list")["files"].size() == 1);
    CHECK(ok_json(host4, "list")["files"].empty());
    CHECK(discovered(swarm.tracker(), "host4").empty());
    CHECK(holders(host1, "small", cid) == std::set<std::string>{"host1"});
}

namespace {

constexpr Millis kSwarmDeadline{120'000};

std::uint64_t uploaded(PeerFixture& peer) { return ok_json(peer, "status").value("uploaded", std::uint64_t{0}); }

// The transfer `id` as `peerctl transfers --json` shows it; null if absent.
json transfer(PeerFixture& peer, std::uint64_t id) {
    const auto r = peer.peerctl("--json", "transfers");
    const auto j = json::parse(r.out, nullptr, false);
    if (r.exit_code != 0 || !j.is_object()) return nullptr;
    for (const auto& t : j["transfers"])
        if (t.value("id", std::uint64_t{0}) == id) return t;
    return nullptr;
}

// What the tracker says `host` holds of `name`: its FileInfo (pieces_held
// when partial); null if nothing.
json holding_of(TrackerFixture& tracker, const std::string& host, const std::string& name) {
    const auto r = tracker.trackerctl("--json", "discover", host);
    const auto doc = json::parse(r.out, nullptr, false);
    if (r.exit_code != 0 || !doc.is_object()) return nullptr;
    for (const auto& f : doc["files"])
        if (f.value("name", "") == name) return f;
    return nullptr;
}

// Starts a detached fetch and pauses it once the tracker lists `peer` as a
// partial holder of at least `min_pieces` pieces: a partial holder whose
// bitfield no longer changes. Returns the transfer id.
std::uint64_t partial_holder(TrackerFixture& tracker, PeerFixture& peer, const std::string& name,
                             std::uint64_t min_pieces) {
    const auto accepted = ok_json(peer, "fetch", name, "-o", (peer.dir() / name).string(), "--detach");
    const auto id = accepted["transfer"].get<std::uint64_t>();
    REQUIRE_MESSAGE(wait_until(
                        [&] {
                            const auto f = holding_of(tracker, peer.name(), name);
                            return f.is_object() && f.value("pieces_held", std::uint64_t{0}) >= min_pieces;
                        },
                        kSwarmDeadline),
                    "never a partial holder: " << transfer(peer, id).dump() << "\n" << peer.describe());
    ok_json(peer, "pause", std::to_string(id));
    return id;
}

// Bits of a /have body (BEP 3 order), as a string of '0' and '1'.
std::string bits(const std::string& have, std::size_t pieces) {
    std::string out;
    for (std::size_t i = 0; i < pieces; ++i)
        out += (static_cast<unsigned char>(have[i / 8]) >> (7 - i % 8)) & 1 ? '1' : '0';
    return out;
}

}  // namespace

TEST_CASE("a partial holder serves its verified pieces; a range over a missing one is 'not here yet'; /have says what it has") {
    Swarm swarm{"host1", "host2"};
    auto& host1 = swarm["host1"];
    auto& host2 = swarm["host2"];
    constexpr std::uint64_t kPiece = 256 * 1024, kPieces = 40;
    const auto src = host1.dir() / "part.bin";
    write_random(src, kPieces * kPiece, 61);
    ok_json(host1, "limit", "--up", "2M");   // slow enough to pause halfway
    const std::string cid = publish(host1, src, "part.bin")["id"];
    wait_holders(host2, "part.bin", cid, {"host1"});

    partial_holder(swarm.tracker(), host2, "part.bin", 4);
    const auto held = holding_of(swarm.tracker(), "host2", "part.bin");
    const auto listed = ok_json(host1, "search", "part.bin")["files"];
    REQUIRE(listed.size() == 1);
    CHECK(listed[0]["holder_count"] == 2);
    CHECK(listed[0]["partial_count"] == 1);
    CHECK(contains(swarm.tracker().trackerctl("discover", "host2").out, "partial"));

    const auto have = curl(host2, "/v1/files/" + cid + "/have", host2.dir());
    REQUIRE(have.status == 200);
    REQUIRE(have.body.size() == kPieces / 8);
    const auto map = bits(have.body, kPieces);
    const auto count = static_cast<std::uint64_t>(std::count(map.begin(), map.end(), '1'));
    INFO("have " << map);
    CHECK(count >= held["pieces_held"].get<std::uint64_t>());
    CHECK(count < kPieces);
    CHECK(curl(host2, "/v1/files/" + cid + "/have", host2.dir(),
               {"-H", "If-None-Match: " + header(have.headers, "etag")})
              .status == 304);

    const auto bytes = read_bytes(src);
    const auto held_piece = map.find('1'), missing_piece = map.find('0');
    const auto range = [&](std::size_t piece, std::uint64_t extra) {
        return std::to_string(piece * kPiece) + "-" + std::to_string((piece + 1) * kPiece - 1 + extra);
    };
    const auto good = curl(host2, "/v1/files/" + cid, host2.dir(), {"-r", range(held_piece, 0)});
    CHECK(good.status == 206);
    CHECK(good.body == bytes.substr(held_piece * kPiece, kPiece));

    // From the last byte of a held piece into a missing one, when they touch;
    // else the missing piece alone.
    const auto start = missing_piece > 0 && map[missing_piece - 1] == '1' ? missing_piece * kPiece - 1
                                                                           : missing_piece * kPiece;
    const auto bad = curl(host2, "/v1/files/" + cid, host2.dir(),
                          {"-r", std::to_string(start) + "-" + std::to_string(missing_piece * kPiece + 100)});
    CHECK(bad.status == 503);
    CHECK(header(bad.headers, "peershare-missing-piece") == std::to_string(missing_piece));
    CHECK(header(bad.headers, "retry-after") == "1");
    CHECK(bad.body == "piece " + std::to_string(missing_piece) + " is not here yet\n");
    CHECK(curl(host2, "/v1/files/" + cid, host2.dir()).status == 503);   // the whole file: not yet
}

TEST_CASE("a partial holder whose partial file is corrupted after verification is dropped; the fetch still ends right") {
    Swarm swarm{"host1", "host2", "host3"};
    auto& host1 = swarm["host1"];
    auto& host2 = swarm["host2"];
    auto& host3 = swarm["host3"];
    constexpr std::uint64_t kPiece = 256 * 1024, kPieces = 40;
    const auto src = host1.dir() / "rot.bin";
    write_random(src, kPieces * kPiece, 62);
    ok_json(host1, "limit", "--up", "3M");
    const std::string cid = publish(host1, src, "rot.bin")["id"];
    wait_holders(host3, "rot.bin", cid, {"host1"});
    partial_holder(swarm.tracker(), host2, "rot.bin", 8);

    // Every piece host2 verified gets a byte flipped, in place.
    const auto have = curl(host2, "/v1/files/" + cid + "/have", host2.dir());
    REQUIRE(have.status == 200);
    const auto map = bits(have.body, kPieces);
    const auto partial = host2.dir() / ".rot.bin.peershare-part";
    REQUIRE(fs::exists(partial));
    {
        std::fstream f(partial, std::ios::in | std::ios::out | std::ios::binary);
        for (std::size_t i = 0; i < kPieces; ++i) {
            if (map[i] != '1') continue;
            f.seekg(static_cast<std::streamoff>(i * kPiece + 1000));
            char c = 0;
            f.read(&c, 1);
            c = static_cast<char>(c ^ 0x5a);
            f.seekp(static_cast<std::streamoff>(i * kPiece + 1000));
            f.write(&c, 1);
        }
    }
    wait_holders(host3, "rot.bin", cid, {"host1", "host2"});
    const auto j = fetch_ok(host3, "rot.bin", host3.dir() / "rot.bin");
    CHECK(file_difference(src, host3.dir() / "rot.bin").empty());
    CHECK(j["sources"] == json::array({"host1"}));
    CHECK(contains(host3.process().errors(), "dropped source host2"));
}

namespace {

// Fetches `name` on every peer of `fetchers` at once (foreground peerctl
// fetch --json each), waits for them all; their fetched_file documents.
std::vector<std::unique_ptr<Process>> start_fetches(std::vector<PeerFixture*> fetchers, const std::string& name) {
    std::vector<std::unique_ptr<Process>> out;
    for (auto* peer : fetchers)
        out.push_back(peer->start_peerctl({"--json", "fetch", name, "-o", (peer->dir() / name).string(), "-q"}));
    return out;
}

// The seed of a crowd: `name` of `size` random bytes published by `seed`
// with its uploads limited to `rate`, every fetcher seeing it; the content id.
std::string seed_file(PeerFixture& seed, const std::vector<PeerFixture*>& fetchers, const std::string& name,
                      std::uint64_t size, const std::string& rate) {
    write_random(seed.dir() / name, size, size);
    ok_json(seed, "limit", "--up", rate);
    const std::string cid = publish(seed, seed.dir() / name, name)["id"];
    for (auto* f : fetchers) wait_holders(*f, name, cid, {seed.name()});
    return cid;
}

json finished(Process& fetch, PeerFixture& peer) {
    const auto code = fetch.wait(kSwarmDeadline);
    INFO(fetch.describe() << "\n" << peer.describe());
    REQUIRE(code);
    REQUIRE(*code == 0);
    return parse_json(fetch.output());
}

}  // namespace

TEST_CASE("three fetchers started together on a 30 MB file: they serve each other, the publisher uploads under 2.5 x") {
    Swarm swarm{"seed", "f1", "f2", "f3"};
    auto& seed = swarm["seed"];
    constexpr std::uint64_t kSize = 30'000'000;
    std::vector<PeerFixture*> fetchers{&swarm["f1"], &swarm["f2"], &swarm["f3"]};
    const auto cid = seed_file(seed, fetchers, "crowd.bin", kSize, "5M");
    const auto src = seed.dir() / "crowd.bin";

    auto fetches = start_fetches(fetchers, "crowd.bin");
    bool any_from_a_fetcher = false;
    for (std::size_t i = 0; i < fetches.size(); ++i) {
        const auto j = finished(*fetches[i], *fetchers[i]);
        CHECK(file_difference(src, fetchers[i]->dir() / "crowd.bin").empty());
        for (const auto& s : j["sources"]) any_from_a_fetcher |= s.get<std::string>() != "seed";
    }
    CHECK(any_from_a_fetcher);
    const auto served = uploaded(seed);
    INFO("the seed uploaded " << served << " bytes for 3 fetchers of " << kSize);
    CHECK(served < kSize * 5 / 2);
    // Each fetcher is a complete holder now (shared by default).
    wait_holders(seed, "crowd.bin", cid, {"seed", "f1", "f2", "f3"}, kSwarmDeadline);
}

TEST_CASE("a fetcher SIGKILLed mid-swarm: the others complete") {
    Swarm swarm{"seed", "f1", "f2", "f3"};
    auto& seed = swarm["seed"];
    std::vector<PeerFixture*> fetchers{&swarm["f1"], &swarm["f2"], &swarm["f3"]};
    seed_file(seed, fetchers, "kill.bin", 12'000'000, "4M");
    const auto src = seed.dir() / "kill.bin";

    auto fetches = start_fetches(fetchers, "kill.bin");
    // Once f3 is a partial holder the others may be fetching from it: kill it.
    REQUIRE_MESSAGE(wait_until(
                        [&] {
                            const auto f = holding_of(swarm.tracker(), "f3", "kill.bin");
                            return f.is_object() && f.value("pieces_held", 0) >= 4;
                        },
                        kSwarmDeadline),
                    swarm["f3"].describe());
    swarm["f3"].kill();
    for (std::size_t i = 0; i < 2; ++i) {
        finished(*fetches[i], *fetchers[i]);
        CHECK(file_difference(src, fetchers[i]->dir() / "kill.bin").empty());
    }
}

TEST_CASE("two transfers of one content in one peerd are one partial holding; when the first ends, the other is served") {
    Swarm swarm{"host1", "host2"};
    auto& host1 = swarm["host1"];
    auto& host2 = swarm["host2"];
    constexpr std::uint64_t kPiece = 256 * 1024, kPieces = 40;
    const auto src = host1.dir() / "twice.bin";
    write_random(src, kPieces * kPiece, 63);
    ok_json(host1, "limit", "--up", "2M");   // slow enough to pause both halfway
    const std::string cid = publish(host1, src, "twice.bin")["id"];
    wait_holders(host2, "twice.bin", cid, {"host1"});

    const auto start = [&](const char* to) {
        return ok_json(host2, "fetch", "twice.bin", "-o", (host2.dir() / to).string(), "--detach")["transfer"]
            .get<std::uint64_t>();
    };
    const auto first = start("a"), second = start("b");
    const auto held = [&](std::uint64_t id) { return transfer(host2, id).value("done", std::uint64_t{0}); };
    REQUIRE_MESSAGE(wait_until([&] { return held(first) > 0 && held(second) > 0; }, kSwarmDeadline),
                    host2.describe());
    ok_json(host2, "pause", std::to_string(first));
    ok_json(host2, "pause", std::to_string(second));

    // The first transfer ends: the second one's pieces are served and host2
    // stays a partial holder at the tracker (the search goes over the same
    // connection as a withdrawal would have, after it).
    ok_json(host2, "cancel", std::to_string(first));
    const auto have = curl(host2, "/v1/files/" + cid + "/have", host2.dir());
    REQUIRE(have.status == 200);
    const auto map = bits(have.body, kPieces);
    const auto count = std::count(map.begin(), map.end(), '1');
    CHECK(count > 0);   // the second transfer's pieces: the first one's are gone with it
    CHECK(count < static_cast<std::ptrdiff_t>(kPieces));
    const auto listed = ok_json(host2, "search", "twice.bin")["files"];
    REQUIRE(listed.size() == 1);
    CHECK(listed[0]["partial_count"] == 1);

    ok_json(host2, "cancel", std::to_string(second));
    CHECK(curl(host2, "/v1/files/" + cid + "/have", host2.dir()).status == 404);
}
