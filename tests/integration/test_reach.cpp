// tests/integration/test_reach.cpp — reachability (issue 11): the tracker
// dials each peer's upload address back on hello and on `peerctl
// reach-check`, and says what it found in `peerctl status`, `trackerctl
// peers` (REACH) and their --json. Real trackerd, peerd, peerctl, trackerctl
// on loopback. An unreachable peer is made by advertising 127.0.0.2 to a
// tracker that trusts advertised addresses: peerd listens on 127.0.0.1 only,
// so its port at 127.0.0.2 refuses connections.
#include <doctest/doctest.h>

#include "proto/reach.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/peer_helpers.hpp"

using namespace peershare;
using namespace peershare::test;
using nlohmann::json;

namespace {

// The peer `name` in `trackerctl --json peers`; null if not listed.
json listed_peer(TrackerFixture& tracker, const std::string& name) {
    const auto r = tracker.trackerctl("--json", "peers");
    if (r.exit_code != 0) return nullptr;
    const auto doc = parse_json(r.out);   // kept: the loop must not read a destroyed temporary
    for (const auto& p : doc["peers"])
        if (p["name"] == name) return p;
    return nullptr;
}

}  // namespace

TEST_CASE("reach 1: the tracker dials every peer back and says whether it could") {
    TempDir dir;
    TrackerFixture tracker(trusting_advertise());
    auto open = start_peer("open", tracker.endpoint(), dir.path());
    auto hidden = start_peer("hidden", tracker.endpoint(), dir.path(), {{"--advertise", "127.0.0.2"}});

    SUBCASE("a peer whose upload port answers is reachable; one whose advertised port refuses is not") {
        const auto yes = settled_status(*open);
        CHECK(yes["reachable"] == true);
        CHECK(contains(yes["reach_reason"].get<std::string>(), "127.0.0.1:" + std::to_string(open->port())));
        const auto no = settled_status(*hidden);
        CHECK(no["reachable"] == false);
        CHECK(contains(no["reach_reason"].get<std::string>(), "refused"));
        CHECK(contains(no["reach_reason"].get<std::string>(), "127.0.0.2:" + std::to_string(hidden->port())));

        const auto text = hidden->peerctl("status");
        CHECK(contains(text.out, "reachable  no ("));
        CHECK(contains(open->peerctl("status").out, "reachable  yes (answered at"));

        CHECK(listed_peer(tracker, "open")["reachable"] == true);
        const auto listed = listed_peer(tracker, "hidden");
        CHECK(listed["reachable"] == false);
        CHECK(contains(listed["reach_reason"].get<std::string>(), "refused"));
        const auto table = tracker.trackerctl("peers");
        INFO(table.describe());
        CHECK(contains(table.out, "REACH"));
        CHECK(contains(table.out, " yes "));
        CHECK(contains(table.out, " no "));
        // The peer's own log says what to do about it.
        CHECK(wait_until([&] { return contains(hidden->process().errors(), "--advertise"); }, kDeadline));
    }
    SUBCASE("peerctl reach-check asks again: exit 0 and 1, with the reason and what would fix it") {
        settled_status(*hidden);
        const auto yes = open->peerctl("reach-check");
        INFO(yes.describe());
        CHECK(yes.exit_code == 0);
        CHECK(contains(yes.out, "reachable: yes (answered at 127.0.0.1:"));
        const auto no = hidden->peerctl("reach-check");
        INFO(no.describe());
        CHECK(no.exit_code == 1);
        CHECK(contains(no.out, "reachable: no ("));
        CHECK(contains(no.out, "forwarding"));
        const auto j = parse_json(hidden->peerctl("--json", "reach-check").out);
        CHECK(j["reachable"] == false);
        CHECK(j["address"] == "127.0.0.2");
        CHECK(j["port"] == hidden->port());
    }
    SUBCASE("a reconnect is checked again") {
        CHECK(settled_status(*open)["reachable"] == true);
        tracker.restart();
        // The new tracker knows nothing until its own check is done.
        CHECK(wait_until([&] { return listed_peer(tracker, "open").is_object(); }, kReconnect));
        CHECK(settled_status(*open)["reachable"] == true);
        CHECK(wait_until([&] { return listed_peer(tracker, "open")["reachable"] == true; }, kDeadline));
    }
}

TEST_CASE("reach 2: the upload server answers the check only with the right proof; others get 404") {
    TempDir dir;
    TrackerFixture tracker;
    auto peer = start_peer("prover", tracker.endpoint(), dir.path());
    const std::string nonce(proto::kReachNonceDigits, 'a');
    const auto answer = raw_http(peer->port(), "GET " + proto::reach_path(nonce) + " HTTP/1.1\r\nHost: x\r\n"
                                               "Connection: close\r\n\r\n");
    REQUIRE(status_of(answer) == 200);
    const auto body = answer.substr(answer.find("\r\n\r\n") + 4);
    CHECK(body.size() == 65);   // 64 hex digits and a newline
    // Not the proof under another key: an answer no stranger can make.
    CHECK_FALSE(contains(body, proto::reach_proof(hex64("someone else"), nonce)));
    for (const auto& bad : std::vector<std::string>{"/v1/reach/", "/v1/reach/AAAA", "/v1/reach/" + std::string(33, 'a')}) {
        CAPTURE(bad);
        CHECK(status_of(raw_http(peer->port(), "GET " + bad + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) ==
              404);
    }
}

TEST_CASE("reach 3: trackerd --no-reach-check dials nobody") {
    TempDir dir;
    TrackerFixture::Options o;
    o.extra_args = {"--no-reach-check"};
    TrackerFixture tracker(o);
    auto peer = start_peer("unchecked", tracker.endpoint(), dir.path());
    Swarm::wait_connected(*peer);
    const auto st = ok_json(*peer, "status");
    CHECK(st["reachable"].is_null());
    CHECK(st["reach_reason"] == "not checked by this tracker");
    CHECK(listed_peer(tracker, "unchecked")["reachable"].is_null());
    const auto r = peer->peerctl("reach-check");
    CHECK(r.exit_code == 1);
    CHECK(contains(r.err, "--no-reach-check"));
}

TEST_CASE("reach 4: a fetch whose every holder is unreachable, by a fetcher unreachable too, fails at once, "
          "saying which sides and what would fix it") {
    TempDir dir;
    TrackerFixture tracker(trusting_advertise());
    auto hidden = start_peer("hidden", tracker.endpoint(), dir.path(), {{"--advertise", "127.0.0.2"}});
    // Unreachable too (a reachable fetcher would have the holder connect back: test_reverse.cpp).
    auto fetcher = start_peer("fetcher", tracker.endpoint(), dir.path(), {{"--advertise", "127.0.0.3"}});
    const auto file = hidden->dir() / "secret.bin";
    write_random(file, 300'000, 11);
    publish(*hidden, file, "secret.bin");
    REQUIRE(settled_status(*hidden)["reachable"] == false);
    REQUIRE(settled_status(*fetcher)["reachable"] == false);

    const auto out = fetcher->dir() / "secret.bin";
    // Well within the run's deadline: no connect timeout is waited out.
    const auto r = fetcher->peerctl({"fetch", "secret.bin", "-o", out.string()}, kDeadline);
    INFO(r.describe());
    CHECK_FALSE(r.timed_out);
    CHECK(r.exit_code == 1);
    CHECK(contains(r.err, "the only holder of 'secret.bin' is unreachable (hidden at 127.0.0.2:" +
                              std::to_string(hidden->port()) + ")"));
    CHECK(contains(r.err, "this peer is unreachable too ("));
    CHECK(contains(r.err, "127.0.0.3:" + std::to_string(fetcher->port())));
    CHECK(contains(r.err, "--advertise"));
    CHECK(contains(r.err, "trackerd --relay-listen"));
    CHECK(lines_in(r.err) == 1);
    CHECK_FALSE(fs::exists(out));
    CHECK(ok_json(*fetcher, "transfers")["transfers"].empty());   // nothing left to retry

    // Once it is reachable (here: advertising what it listens on), the same fetch works.
    hidden->stop();
    PeerFixture visible("hidden", tracker.endpoint(), dir.path());
    REQUIRE(settled_status(visible)["reachable"] == true);
    fetch_ok(*fetcher, "secret.bin", out);
    CHECK(file_difference(file, out).empty());
}

TEST_CASE("reach 5: a holder the tracker found unreachable is never dialled, even beside a reachable one") {
    TempDir dir;
    TrackerFixture tracker(trusting_advertise());
    auto hidden = start_peer("hidden", tracker.endpoint(), dir.path(), {{"--advertise", "127.0.0.2"}});
    auto visible = start_peer("visible", tracker.endpoint(), dir.path());
    // Unreachable too, so no reverse connection is asked of `hidden` either (no relay here).
    auto fetcher = start_peer("fetcher", tracker.endpoint(), dir.path(), {{"--advertise", "127.0.0.3"}});
    const auto file = hidden->dir() / "shared.bin";
    write_random(file, 300'000, 12);
    fs::copy_file(file, visible->dir() / "shared.bin");
    const auto id = publish(*hidden, file, "shared.bin")["id"].get<std::string>();
    publish(*visible, visible->dir() / "shared.bin", "shared.bin");
    REQUIRE(settled_status(*hidden)["reachable"] == false);
    REQUIRE(settled_status(*visible)["reachable"] == true);
    REQUIRE(settled_status(*fetcher)["reachable"] == false);
    wait_holders(*fetcher, "shared.bin", id, {"hidden", "visible"});

    const auto out = fetcher->dir() / "shared.bin";
    const auto j = fetch_ok(*fetcher, "shared.bin", out);
    CHECK(file_difference(file, out).empty());
    CHECK(j["sources"] == json::array({"visible"}));
    // Given as a source, it would have been dialled and dropped ("cannot connect").
    const auto log = fetcher->describe();
    CHECK_MESSAGE(!contains(log, "source hidden"), log);
}

TEST_CASE("reach 6: with the tracker's relay, a fetcher and a holder both unreachable exchange a file through it") {
    TempDir dir;
    auto options = trusting_advertise();
    options.extra_args.insert(options.extra_args.end(), {"--relay-listen", "127.0.0.1:0"});
    TrackerFixture tracker(options);
    auto hidden = start_peer("hidden", tracker.endpoint(), dir.path(), {{"--advertise", "127.0.0.2"}});
    auto fetcher = start_peer("fetcher", tracker.endpoint(), dir.path(), {{"--advertise", "127.0.0.3"}});
    const auto file = hidden->dir() / "secret.bin";
    write_random(file, 700'000, 12);   // three pieces of 256 KiB
    publish(*hidden, file, "secret.bin");
    REQUIRE(settled_status(*hidden)["reachable"] == false);
    REQUIRE(settled_status(*fetcher)["reachable"] == false);

    // Reach 4's fetch, which failed at once without a relay, now goes through it.
    const auto out = fetcher->dir() / "secret.bin";
    fetch_ok(*fetcher, "secret.bin", out);
    CHECK(file_difference(file, out).empty());
    // The relay joined them (its event comes when the circuit is made).
    const auto relayed = [&] {
        const auto r = tracker.trackerctl("events");
        return r.exit_code == 0 && contains(r.out, "relayed  fetcher");
    };
    CHECK(wait_until(relayed, kDeadline));
    const auto stats = parse_json(tracker.trackerctl("--json", "stats").out);
    INFO(stats.dump());
    CHECK(stats["relay"]["circuits_opened"].get<std::uint64_t>() >= 1);
}
