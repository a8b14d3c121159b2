// tests/integration/test_tracker.cpp — trackerd and trackerctl end to end:
// real processes over 127.0.0.1 and a private admin socket, peers played by
// fake_peer processes and in-process clients, malformed input written on raw
// sockets. Every test case starts its own tracker in its own temp dir, so
// cases never share state and may run in parallel with other suites.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "proto/frame.hpp"
#include "proto/messages.hpp"
#include "tests/integration/harness.hpp"

namespace {

using namespace peershare;
using namespace peershare::test;
using nlohmann::json;

// ---- reading what trackerctl printed ----

// Runs trackerctl --json ARGS and returns its document; the command must succeed.
template <class... A>
json ctl_json(TrackerFixture& tracker, A&&... args) {
    auto r = tracker.trackerctl("--json", std::string(std::forward<A>(args))...);
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    return parse_json(r.out);
}

std::vector<json> json_lines(const std::string& text) {
    std::vector<json> out;
    std::size_t start = 0;
    while (start < text.size()) {
        const auto end = text.find('\n', start);
        if (end == std::string::npos) break;  // a line still being written
        out.push_back(parse_json(text.substr(start, end - start)));
        start = end + 1;
    }
    return out;
}

std::vector<json> events_of(const json& events, std::string_view kind, std::string_view peer) {
    std::vector<json> out;
    for (const auto& e : events) {
        if (e.value("kind", "") == kind && e.value("peer", "") == peer) out.push_back(e);
    }
    return out;
}

std::set<std::string> live_peers(TrackerFixture& tracker) {
    std::set<std::string> names;
    const auto reply =
        ctl_json(tracker, "peers");  // kept: a range-for over a temporary's member dangles
    for (const auto& p : reply["peers"]) names.insert(p["name"].get<std::string>());
    return names;
}

// ---- an in-process peer ----

std::vector<proto::Holder> lookup(common::Client& client, const std::string& name) {
    auto reply = client.request<proto::Holders>(proto::Lookup{name}, kDeadline);
    REQUIRE_MESSAGE(reply.ok(), "lookup failed: " << (reply.ok() ? "" : reply.error().message));
    CHECK(reply->name == name);
    return reply->holders;
}

std::set<std::string> holder_names(const std::vector<proto::Holder>& holders) {
    std::set<std::string> names;
    for (const auto& h : holders) names.insert(h.peer);
    return names;
}

// The error a frame carries; fails the test if it is not an error frame.
proto::ErrorReply error_of(const std::optional<proto::Envelope>& frame) {
    REQUIRE_MESSAGE(frame.has_value(), "expected an error frame, got none");
    INFO("frame: " << frame->body.dump());
    REQUIRE(frame->type == "error");
    auto err = proto::ErrorReply::from_json(frame->body);
    REQUIRE(err.ok());
    return *err;
}

proto::Hello peer_hello(const std::string& name, std::uint32_t version = proto::kProtocolVersion) {
    proto::Hello hello;
    hello.version = version;
    hello.name = name;
    hello.port = 7000;
    hello.key = hex64("key of " + name);
    return hello;
}

std::string big_endian_length(std::uint32_t n) {
    return {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
            static_cast<char>(n)};
}

}  // namespace

// ---------------------------------------------------------------------------

TEST_CASE("peers that publish are found by lookup with their address, port, size and id") {
    TrackerFixture tracker;
    const auto song = hex64("song");
    const auto remix = hex64("remix");
    auto alice = tracker.start_peer(
        "alice",
        {"--port", "7001", "--publish", "song.ogg:1000:" + song, "--publish", "notes.txt:20"});
    auto bob = tracker.start_peer("bob", {"--port", "7002", "--publish", "song.ogg:1000:" + song});
    auto carol =
        tracker.start_peer("carol", {"--port", "7003", "--publish", "song.ogg:999:" + remix});
    auto looker = tracker.connect_peer("looker");

    const auto holders = lookup(*looker, "song.ogg");
    REQUIRE(holders.size() == 3);
    std::map<std::string, proto::Holder> by_peer;
    for (const auto& h : holders) by_peer[h.peer] = h;
    REQUIRE(by_peer.size() == 3);
    const struct {
        const char* peer;
        std::uint16_t port;
        std::uint64_t size;
        std::string id;
    } expected[] = {
        {"alice", 7001, 1000, song}, {"bob", 7002, 1000, song}, {"carol", 7003, 999, remix}};
    for (const auto& e : expected) {
        CAPTURE(e.peer);
        REQUIRE(by_peer.contains(e.peer));
        const auto& h = by_peer[e.peer];
        CHECK(h.address == "127.0.0.1");
        CHECK(h.port == e.port);
        CHECK(h.size == e.size);
        CHECK(h.id == e.id);
        CHECK(h.piece_size > 0);
        CHECK(h.published_at > 0);
    }

    const auto notes = lookup(*looker, "notes.txt");
    REQUIRE(notes.size() == 1);
    CHECK(notes[0].peer == "alice");
    CHECK(notes[0].size == 20);
    CHECK(notes[0].id.size() == 64);

    CHECK(lookup(*looker, "nobody-has-this").empty());
}

TEST_CASE("trackerctl discover lists a peer's files as a table and as JSON") {
    TrackerFixture tracker;
    const auto id_a = hex64("a"), id_b = hex64("b");
    auto alice = tracker.start_peer(
        "alice", {"--publish", "b.bin:2048:" + id_b, "--publish", "a.txt:10:" + id_a});
    auto idle = tracker.start_peer("idle");

    auto table = tracker.trackerctl("discover", "alice");
    INFO(table.describe());
    CHECK(table.exit_code == 0);
    CHECK(contains(table.out, "NAME"));
    CHECK(contains(table.out, "a.txt"));
    CHECK(contains(table.out, "b.bin"));
    CHECK(contains(table.out, id_a.substr(0, 12)));
    CHECK(contains(table.out, id_b.substr(0, 12)));
    CHECK(table.err.empty());

    const auto j = ctl_json(tracker, "discover", "alice");
    CHECK(j["host"] == "alice");
    REQUIRE(j["files"].size() == 2);
    CHECK(j["files"][0]["name"] == "a.txt");  // sorted by name
    CHECK(j["files"][0]["size"] == 10);
    CHECK(j["files"][0]["id"] == id_a);
    CHECK(j["files"][1]["name"] == "b.bin");
    CHECK(j["files"][1]["size"] == 2048);
    CHECK(j["files"][1]["id"] == id_b);

    SUBCASE("a peer that publishes nothing") {
        auto r = tracker.trackerctl("discover", "idle");
        CHECK(r.exit_code == 0);
        CHECK(contains(r.out, "publishes nothing"));
        CHECK(ctl_json(tracker, "discover", "idle")["files"].empty());
    }
    SUBCASE("an unknown peer is an error naming it") {
        auto r = tracker.trackerctl("discover", "ghost");
        INFO(r.describe());
        CHECK(r.exit_code == 1);
        CHECK(contains(r.err, "ghost"));
        CHECK(r.out.empty());
    }
}

TEST_CASE("trackerctl ping tells a live peer from a muted one and an unknown one") {
    TrackerFixture tracker;

    SUBCASE("a peer that answers is live") {
        auto alice = tracker.start_peer("alice");
        auto r = tracker.trackerctl("ping", "alice");
        INFO(r.describe());
        CHECK(r.exit_code == 0);
        CHECK(contains(r.out, "alice is live"));
        const auto j = ctl_json(tracker, "ping", "alice");
        CHECK(j["host"] == "alice");
        CHECK(j["live"] == true);
        REQUIRE(j["rtt_ms"].is_number());
        CHECK(j["rtt_ms"].get<double>() >= 0);
    }
    SUBCASE("a peer that does not answer is offline") {
        auto mute = tracker.start_peer("mute", {"--mute"});
        auto r = tracker.trackerctl("ping", "mute", "--timeout", "0.3");
        INFO(r.describe());
        CHECK(r.exit_code == 1);
        CHECK(contains(r.out, "offline"));
        auto j = tracker.trackerctl("--json", "ping", "mute", "--timeout", "0.3");
        CHECK(j.exit_code == 1);
        const auto doc = parse_json(j.out);
        CHECK(doc["host"] == "mute");
        CHECK(doc["live"] == false);
        CHECK(doc["rtt_ms"].is_null());
        CHECK(mute->running());  // muted, not gone: heartbeats keep it listed
    }
    SUBCASE("a peer that leaves while pinged is offline at once, not at the timeout") {
        auto mute = tracker.start_peer("mute", {"--mute"});
        const auto since = Clock::now();
        auto pinger = tracker.start_trackerctl({"--json", "ping", "mute", "--timeout", "30"});
        REQUIRE(
            wait_until([&] { return ctl_json(tracker, "stats")["requests"].contains("ping_peer"); },
                       kDeadline));
        mute->signal(SIGKILL);
        const auto code = pinger->wait(kDeadline);
        INFO(pinger->describe());
        REQUIRE(code.has_value());
        CHECK(*code == 1);
        CHECK(Clock::now() - since < Millis{30'000});
        CHECK(parse_json(pinger->output())["live"] == false);
    }
    SUBCASE("an unknown host is offline") {
        auto r = tracker.trackerctl("ping", "ghost");
        INFO(r.describe());
        CHECK(r.exit_code == 1);
        auto j = tracker.trackerctl("--json", "ping", "ghost");
        CHECK(j.exit_code == 1);
        CHECK(parse_json(j.out)["live"] == false);
    }
}

TEST_CASE("a pong answers only the ping sent down its own session") {
    TrackerFixture tracker;
    auto mute = tracker.start_peer("mute", {"--mute"});
    RawConnection spoofer(tracker.port());
    REQUIRE(spoofer.send_all(proto::make_frame(peer_hello("spoofer"), 1)));
    REQUIRE(spoofer.read_frame(kDeadline).has_value());

    auto pinger = tracker.start_trackerctl({"--json", "ping", "mute", "--timeout", "1"});
    REQUIRE(wait_until([&] { return ctl_json(tracker, "stats")["requests"].contains("ping_peer"); },
                       kDeadline));
    // Ping ids are small sequential numbers: another peer could guess the one in flight.
    for (std::uint64_t id = 1; id <= 16; ++id)
        REQUIRE(spoofer.send_all(proto::make_frame(proto::Pong{}, id)));

    const auto code = pinger->wait(kDeadline);
    INFO(pinger->describe());
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK(parse_json(pinger->output())["live"] == false);
}

TEST_CASE("trackerctl peers and files show the live peers and the index") {
    TrackerFixture tracker;
    const auto report = hex64("report"), song = hex64("song");
    auto alice =
        tracker.start_peer("alice", {"--port", "7001", "--publish", "report.pdf:100:" + report,
                                     "--publish", "song.ogg:5:" + song});
    auto bob = tracker.start_peer("bob", {"--port", "7002", "--publish", "song.ogg:5:" + song});

    SUBCASE("peers") {
        const auto j = ctl_json(tracker, "peers");
        CHECK(j["truncated"] == false);
        REQUIRE(j["peers"].size() == 2);
        const auto& a = j["peers"][0];  // sorted by name
        const auto& b = j["peers"][1];
        CHECK(a["name"] == "alice");
        CHECK(a["address"] == "127.0.0.1");
        CHECK(a["port"] == 7001);
        CHECK(a["files"] == 2);
        CHECK(a["since"].get<std::int64_t>() > 0);
        CHECK(b["name"] == "bob");
        CHECK(b["port"] == 7002);
        CHECK(b["files"] == 1);

        auto table = tracker.trackerctl("peers");
        INFO(table.describe());
        CHECK(table.exit_code == 0);
        for (const char* text : {"NAME", "alice", "bob", "127.0.0.1", "7001", "7002"}) {
            CAPTURE(text);
            CHECK(contains(table.out, text));
        }
    }
    SUBCASE("files, all and by TEXT") {
        const auto all = ctl_json(tracker, "files");
        CHECK(all["truncated"] == false);
        REQUIRE(all["files"].size() == 2);
        const auto& r = all["files"][0];  // sorted by name
        const auto& s = all["files"][1];
        CHECK(r["name"] == "report.pdf");
        CHECK(r["size"] == 100);
        CHECK(r["id"] == report);
        CHECK(r["holders"] == json::array({"alice"}));
        CHECK(s["name"] == "song.ogg");
        CHECK(s["size"] == 5);
        CHECK(s["id"] == song);
        const auto holders = s["holders"].get<std::set<std::string>>();
        CHECK(holders == std::set<std::string>{"alice", "bob"});

        const auto some = ctl_json(tracker, "files", "song");
        REQUIRE(some["files"].size() == 1);
        CHECK(some["files"][0]["name"] == "song.ogg");
        CHECK(ctl_json(tracker, "files", "zzz")["files"].empty());

        auto table = tracker.trackerctl("files");
        INFO(table.describe());
        CHECK(table.exit_code == 0);
        CHECK(contains(table.out, "report.pdf"));
        CHECK(contains(table.out, "song.ogg"));
        CHECK(contains(table.out, report.substr(0, 12)));
        auto none = tracker.trackerctl("files", "zzz");
        CHECK(none.exit_code == 0);
        CHECK(contains(none.out, "no files"));
    }
}

TEST_CASE("an index entry per content when peers offer different contents under one name") {
    TrackerFixture tracker;
    const auto first = hex64("first"), second = hex64("second");
    auto alice = tracker.start_peer("alice", {"--port", "7001", "--publish", "same.txt:10:" + first});
    auto bob = tracker.start_peer("bob", {"--port", "7002", "--publish", "same.txt:20:" + second});
    auto carol = tracker.start_peer("carol", {"--port", "7003", "--publish", "same.txt:10:" + first});

    const auto j = ctl_json(tracker, "files", "same");
    REQUIRE(j["files"].size() == 2);
    const auto& a = j["files"][0];   // in the order each content was first published
    const auto& b = j["files"][1];
    CHECK(a["name"] == "same.txt");
    CHECK(a["id"] == first);
    CHECK(a["size"] == 10);
    CHECK(a["holders"] == json::array({"alice", "carol"}));
    CHECK(a["holder_count"] == 2);
    CHECK(b["name"] == "same.txt");
    CHECK(b["id"] == second);
    CHECK(b["size"] == 20);
    CHECK(b["holders"] == json::array({"bob"}));
    CHECK(b["holder_count"] == 1);

    auto table = tracker.trackerctl("files");
    INFO(table.describe());
    CHECK(contains(table.out, first.substr(0, 12)));
    CHECK(contains(table.out, second.substr(0, 12)));
}

TEST_CASE("trackerctl events shows the history, and --follow streams new events") {
    TrackerFixture tracker;
    auto alice = tracker.start_peer("alice", {"--port", "7001", "--publish", "a.txt:1"});

    SUBCASE("the history, as a table and as JSON") {
        auto table = tracker.trackerctl("events");
        INFO(table.describe());
        CHECK(table.exit_code == 0);
        CHECK(contains(table.out, "joined  alice"));
        CHECK(contains(table.out, "published  alice  \"a.txt\""));

        const auto events = ctl_json(tracker, "events")["events"];
        const auto joined = events_of(events, "joined", "alice");
        REQUIRE(joined.size() == 1);
        CHECK(joined[0]["detail"] == "127.0.0.1:7001");
        CHECK(joined[0]["seq"].get<std::uint64_t>() > 0);
        CHECK(joined[0]["time"].get<std::int64_t>() > 0);
        const auto published = events_of(events, "published", "alice");
        REQUIRE(published.size() == 1);
        CHECK(published[0]["file"] == "a.txt");
    }
    SUBCASE("--follow --json prints one object per line as things happen") {
        auto follower = tracker.start_trackerctl({"events", "--follow", "--json"});
        const auto has = [&](std::string_view kind, std::string_view peer) {
            return !events_of(json_lines(follower->output()), kind, peer).empty();
        };
        // The history comes first: once it is printed, the follower is subscribed.
        REQUIRE_MESSAGE(wait_until([&] { return has("joined", "alice"); }, kDeadline),
                        follower->describe());

        auto dave = tracker.start_peer("dave", {"--publish", "d.txt:1"});
        REQUIRE_MESSAGE(
            wait_until([&] { return has("joined", "dave") && has("published", "dave"); },
                       kDeadline),
            follower->describe());
        auto looker = tracker.connect_peer("looker");
        lookup(*looker, "d.txt");
        REQUIRE_MESSAGE(wait_until([&] { return has("looked_up", "looker"); }, kDeadline),
                        follower->describe());
        dave->signal(SIGKILL);
        REQUIRE_MESSAGE(wait_until([&] { return has("left", "dave"); }, kDeadline),
                        follower->describe());

        const auto lines = json_lines(follower->output());
        const auto published = events_of(lines, "published", "dave");
        REQUIRE(published.size() == 1);
        CHECK(published[0]["file"] == "d.txt");
        const auto looked_up = events_of(lines, "looked_up", "looker");
        REQUIRE(looked_up.size() == 1);
        CHECK(looked_up[0]["file"] == "d.txt");
        for (std::size_t i = 1; i < lines.size(); ++i) {
            CHECK(lines[i]["seq"].get<std::uint64_t>() > lines[i - 1]["seq"].get<std::uint64_t>());
        }
        CHECK(follower->running());  // following does not end by itself
        follower->stop();
    }
}

TEST_CASE("trackerctl stats counts peers, files and requests by type") {
    TrackerFixture tracker;
    auto alice = tracker.start_peer("alice", {"--publish", "a.txt:1", "--publish", "shared.txt:2"});
    auto bob = tracker.start_peer("bob", {"--publish", "shared.txt:2"});
    auto looker = tracker.connect_peer("looker");
    lookup(*looker, "a.txt");
    lookup(*looker, "missing");

    const auto j = ctl_json(tracker, "stats");
    CHECK(j["peers"] == 3);
    CHECK(j["files"] == 3);
    CHECK(j["names"] == 2);
    CHECK(j["connections"] == 3);
    CHECK(j["uptime_s"].get<std::uint64_t>() < 600);
    const auto& requests = j["requests"];
    CHECK(requests["hello"] == 3);
    CHECK(requests["publish"] == 3);
    CHECK(requests["lookup"] == 2);
    CHECK(requests["get_stats"].get<std::uint64_t>() >= 1);

    auto human = tracker.trackerctl("stats");
    INFO(human.describe());
    CHECK(human.exit_code == 0);
    CHECK(contains(human.out, "peers"));
    CHECK(contains(human.out, "lookup"));
    CHECK(contains(human.out, "uptime"));
}

TEST_CASE("a peer whose connection closes is removed with all its files") {
    TrackerFixture tracker;
    auto alice =
        tracker.start_peer("alice", {"--publish", "a.txt:1", "--publish", "only-alice.txt:1"});
    auto bob = tracker.start_peer("bob", {"--publish", "a.txt:1"});
    auto looker = tracker.connect_peer("looker");
    REQUIRE(lookup(*looker, "only-alice.txt").size() == 1);

    alice->signal(SIGKILL);  // no goodbye: the tracker sees the connection close
    CHECK(wait_until([&] { return lookup(*looker, "only-alice.txt").empty(); }, kDeadline));
    CHECK(holder_names(lookup(*looker, "a.txt")) == std::set<std::string>{"bob"});
    CHECK(live_peers(tracker) == std::set<std::string>{"bob", "looker"});
    CHECK(ctl_json(tracker, "stats")["files"] == 1);
    CHECK(tracker.trackerctl("discover", "alice").exit_code == 1);

    const auto left = events_of(ctl_json(tracker, "events")["events"], "left", "alice");
    REQUIRE(left.size() == 1);
    CHECK(contains(left[0].value("detail", ""), "closed"));
}

TEST_CASE("a peer that goes silent is dropped after the peer timeout") {
    TrackerFixture tracker({.heartbeat_s = 1, .peer_timeout_s = 2, .extra_args = {}});
    auto chatty = tracker.start_peer("chatty", {"--publish", "c.txt:1"});
    auto quiet = tracker.start_peer("quiet", {"--silent", "--publish", "q.txt:1"});
    const auto quiet_since = Clock::now();

    // A silent peer does not answer pings either.
    CHECK(tracker.trackerctl("ping", "quiet", "--timeout", "0.2").exit_code == 1);

    // The tracker closes its session; fake_peer then ends on its own.
    REQUIRE_MESSAGE(quiet->wait(kDeadline).has_value(), quiet->describe());
    const auto dropped_after = Clock::now() - quiet_since;
    CHECK(dropped_after >= Millis{1500});  // not before the timeout (2 s, less scheduling slack)
    CHECK(quiet->exit_code() == 1);
    CHECK(contains(quiet->errors(), "session ended"));

    CHECK(wait_until([&] { return !live_peers(tracker).contains("quiet"); }, kDeadline));
    const auto left = events_of(ctl_json(tracker, "events")["events"], "left", "quiet");
    REQUIRE(left.size() == 1);
    CHECK(contains(left[0].value("detail", ""), "timed out"));

    // The peer that kept sending heartbeats is still there, with its file.
    CHECK(chatty->running());
    CHECK(live_peers(tracker) == std::set<std::string>{"chatty"});
    const auto files = ctl_json(tracker, "files")["files"];
    REQUIRE(files.size() == 1);
    CHECK(files[0]["name"] == "c.txt");
}

TEST_CASE("a second peer asking for a live name") {
    TrackerFixture tracker;
    const auto key = hex64("alice's key");
    auto first = tracker.start_peer("alice", {"--key", key, "--publish", "first.txt:1"});

    SUBCASE("with another key is refused with name_taken") {
        auto second = tracker.spawn_peer(
            "alice", {"--key", hex64("mallory's key"), "--publish", "evil.txt:1"});
        const auto code = second->wait(kDeadline);
        INFO(second->describe());
        REQUIRE(code.has_value());
        CHECK(*code != 0);
        CHECK(contains(second->errors(), "name_taken"));
        CHECK(contains(second->errors(), "'alice'"));
        CHECK_FALSE(contains(second->output(), "ready"));

        CHECK(first->running());
        const auto files = ctl_json(tracker, "discover", "alice")["files"];
        REQUIRE(files.size() == 1);
        CHECK(files[0]["name"] == "first.txt");
        CHECK(events_of(ctl_json(tracker, "events")["events"], "left", "alice").empty());
    }
    SUBCASE("with the same key replaces the old session") {
        auto second = tracker.start_peer("alice", {"--key", key, "--publish", "second.txt:1"});
        const auto code = first->wait(kDeadline);  // the tracker closed the old session
        INFO(first->describe());
        REQUIRE(code.has_value());
        CHECK(*code == 1);
        CHECK(second->running());

        CHECK(live_peers(tracker) == std::set<std::string>{"alice"});
        const auto files = ctl_json(tracker, "discover", "alice")["files"];
        REQUIRE(files.size() == 1);
        CHECK(files[0]["name"] == "second.txt");  // the old session's files went with it

        const auto events = ctl_json(tracker, "events")["events"];
        CHECK(events_of(events, "joined", "alice").size() == 2);
        const auto left = events_of(events, "left", "alice");
        REQUIRE(left.size() == 1);
        CHECK(contains(left[0].value("detail", ""), "replaced"));
    }
}

TEST_CASE("trackerctl exits 3 naming the socket when the tracker is not running") {
    SUBCASE("nothing at the socket path") {
        TempDir dir;
        const auto socket = (dir / "absent.sock").string();
        for (const bool json : {false, true}) {
            CAPTURE(json);
            std::vector<std::string> argv{trackerctl_binary().string(), "--socket", socket,
                                          "stats"};
            if (json) argv.push_back("--json");
            const auto r = run(argv);
            INFO(r.describe());
            CHECK(r.exit_code == 3);
            CHECK(contains(r.err, socket));
            CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);  // one line
            CHECK(r.out.empty());
        }
        const auto by_env =
            run({trackerctl_binary().string(), "peers"}, {{"TRACKER_SOCKET", socket}});
        INFO(by_env.describe());
        CHECK(by_env.exit_code == 3);
        CHECK(contains(by_env.err, socket));
    }
    SUBCASE("the tracker has stopped") {
        TrackerFixture tracker;
        CHECK(tracker.stop() == 0);  // a clean stop on SIGTERM
        CHECK_FALSE(fs::exists(tracker.socket()));
        const auto r = tracker.trackerctl("peers");
        INFO(r.describe());
        CHECK(r.exit_code == 3);
        CHECK(contains(r.err, tracker.socket().string()));
    }
}

TEST_CASE("trackerctl run by a user who may not use the socket says so, not 'is it running?'") {
    // ctest runs it as its own entry, integration_root, reported skipped when not root.
    REQUIRE_MESSAGE(::geteuid() == 0, "running trackerctl as another user needs root");
    TrackerFixture tracker;   // its socket lives in a 0700 directory of root's
    const auto r = run({"/usr/bin/setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
                        trackerctl_binary().string(), "--socket", tracker.socket().string(), "stats"});
    INFO(r.describe());
    CHECK(r.exit_code == 3);
    CHECK(contains(r.err, tracker.socket().string()));
    CHECK(contains(r.err, "permission denied"));
    CHECK(contains(r.err, "member of it"));
    CHECK_FALSE(contains(r.err, "is trackerd running"));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(tracker.trackerctl("stats").exit_code == 0);   // root still gets in
}

TEST_CASE("trackerctl exits 2 on a bad command line") {
    TempDir dir;  // no tracker: a usage error must be found before connecting
    const auto socket = (dir / "absent.sock").string();
    const std::vector<std::vector<std::string>> bad = {
        {},                                      // no subcommand
        {"bogus"},                               // unknown subcommand
        {"discover"},                            // missing HOST
        {"ping"},                                // missing HOST
        {"ping", "alice", "--timeout", "soon"},  // not a number
        {"ping", "alice", "--timeout", "0"},     // out of range
        {"stats", "--no-such-flag"},
        {"--no-such-flag", "peers"},
        {"discover", "alice", "extra"},
    };
    for (const auto& args : bad) {
        std::vector<std::string> argv{trackerctl_binary().string(), "--socket", socket};
        argv.insert(argv.end(), args.begin(), args.end());
        const auto r = run(argv);
        INFO("trackerctl " << [&] {
            std::string s;
            for (const auto& a : args) s += a + " ";
            return s;
        }() << "\n" << r.describe());
        CHECK(r.exit_code == 2);
        CHECK_FALSE(r.err.empty());
    }
    const auto help = run({trackerctl_binary().string(), "--help"});
    CHECK(help.exit_code == 0);
    CHECK(contains(help.out, "discover"));
}

TEST_CASE("--json is accepted before and after the subcommand") {
    TrackerFixture tracker;
    auto alice = tracker.start_peer("alice", {"--publish", "a.txt:10"});
    const std::vector<std::vector<std::string>> commands = {
        {"peers"},  {"files"}, {"files", "a"},    {"discover", "alice"},
        {"events"}, {"stats"}, {"ping", "alice"},
    };
    for (const auto& command : commands) {
        CAPTURE(command.front());
        std::vector<std::string> before{"--json"};
        before.insert(before.end(), command.begin(), command.end());
        std::vector<std::string> after = command;
        after.push_back("--json");
        const auto a = tracker.trackerctl(before);
        const auto b = tracker.trackerctl(after);
        INFO("before:\n" << a.describe() << "\nafter:\n" << b.describe());
        REQUIRE(a.exit_code == 0);
        REQUIRE(b.exit_code == 0);
        const auto ja = parse_json(a.out);
        const auto jb = parse_json(b.out);
        REQUIRE(ja.is_object());
        if (command.front() == "stats" || command.front() == "ping") {
            // Counters and round trips move between two runs; the shape must not.
            std::set<std::string> keys_a, keys_b;
            for (const auto& [k, v] : ja.items()) keys_a.insert(k);
            for (const auto& [k, v] : jb.items()) keys_b.insert(k);
            CHECK(keys_a == keys_b);
        } else {
            CHECK(ja == jb);
        }
    }
}

TEST_CASE("malformed input never stops the tracker nor disturbs its other peers") {
    TrackerFixture tracker;
    auto alice = tracker.start_peer("alice", {"--publish", "a.txt:1"});
    auto looker = tracker.connect_peer("looker");
    REQUIRE(lookup(*looker, "a.txt").size() == 1);

    SUBCASE("a frame of malformed JSON") {
        RawConnection raw(tracker.port());
        REQUIRE(raw.send_all(proto::encode_frame(R"({"type":"hello","version":)")));
        CHECK(error_of(raw.read_frame(kDeadline)).code == proto::ErrorCode::bad_request);
        CHECK(raw.closed_within(kDeadline));
    }
    SUBCASE("a frame of binary garbage") {
        RawConnection raw(tracker.port());
        REQUIRE(raw.send_all(proto::encode_frame(std::string("\x00\xff\xfe\x01garbage\x80", 12))));
        CHECK(error_of(raw.read_frame(kDeadline)).code == proto::ErrorCode::bad_request);
        CHECK(raw.closed_within(kDeadline));
    }
    SUBCASE("a length header of 2 MiB") {
        RawConnection raw(tracker.port());
        REQUIRE(raw.send_all(big_endian_length(2u << 20)));  // the limit is 1 MiB; no body follows
        CHECK(error_of(raw.read_frame(kDeadline)).code == proto::ErrorCode::bad_request);
        CHECK(raw.closed_within(kDeadline));
    }
    SUBCASE("garbage bytes (an HTTP request on the session port)") {
        RawConnection raw(tracker.port());
        REQUIRE(raw.send_all("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
        const auto frame = raw.read_frame(kDeadline);
        if (frame) CHECK(error_of(frame).code == proto::ErrorCode::bad_request);
        CHECK(raw.closed_within(kDeadline));
    }
    SUBCASE("a frame before the hello") {
        RawConnection raw(tracker.port());
        REQUIRE(raw.send_all(proto::make_frame(proto::Lookup{"a.txt"}, 1)));
        const auto err = error_of(raw.read_frame(kDeadline));
        CHECK(err.code == proto::ErrorCode::bad_request);
        CHECK(contains(err.message, "hello"));
        CHECK(raw.closed_within(kDeadline));
    }
    SUBCASE("a hello with another protocol version") {
        RawConnection raw(tracker.port());
        REQUIRE(raw.send_all(proto::make_frame(peer_hello("future", 99), 1)));
        const auto frame = raw.read_frame(kDeadline);
        const auto err = error_of(frame);
        CHECK(frame->id == 1u);
        CHECK(err.code == proto::ErrorCode::version_mismatch);
        CHECK(contains(err.message, std::to_string(proto::kProtocolVersion)));
        CHECK(contains(err.message, "99"));
        CHECK(raw.closed_within(kDeadline));
        CHECK_FALSE(live_peers(tracker).contains("future"));
    }
    SUBCASE("an admin hello on the peer port") {
        RawConnection raw(tracker.port());
        proto::Hello hello;
        hello.role = "admin";
        REQUIRE(raw.send_all(proto::make_frame(hello, 1)));
        CHECK(error_of(raw.read_frame(kDeadline)).code == proto::ErrorCode::bad_request);
        CHECK(raw.closed_within(kDeadline));
    }
    SUBCASE("connections that never say hello are closed after the hello timeout") {
        const auto since = Clock::now();
        RawConnection silent(tracker.port());
        RawConnection partial(tracker.port());
        REQUIRE(partial.send_all(big_endian_length(100) +
                                 "{\"type\":"));  // a frame begun, never finished
        // Both wait out the same timer (5 s), so together they cost one timeout.
        CHECK(silent.closed_within(kDeadline));
        CHECK(partial.closed_within(kDeadline));
        CHECK(Clock::now() - since >= Millis{proto::kHelloTimeoutMs} - Millis{1000});
    }
    SUBCASE("a hello written one byte at a time, then a lookup the same way") {
        RawConnection raw(tracker.port());
        REQUIRE(raw.send_bytewise(proto::make_frame(peer_hello("slow"), 1)));
        const auto welcome = raw.read_frame(kDeadline);
        REQUIRE(welcome.has_value());
        CHECK(welcome->type == "welcome");
        CHECK(welcome->id == 1u);
        REQUIRE(raw.send_bytewise(proto::make_frame(proto::Lookup{"a.txt"}, 2)));
        const auto holders = raw.read_frame(kDeadline);
        REQUIRE(holders.has_value());
        auto reply = proto::expect<proto::Holders>(*holders);
        REQUIRE(reply.ok());
        CHECK(holders->id == 2u);
        CHECK(holder_names(reply->holders) == std::set<std::string>{"alice"});
        CHECK(live_peers(tracker).contains("slow"));
    }
    SUBCASE("after the hello, an unknown type is answered and a malformed publish closes") {
        RawConnection raw(tracker.port());
        REQUIRE(raw.send_all(proto::make_frame(peer_hello("sloppy"), 1)));
        REQUIRE(raw.read_frame(kDeadline).has_value());
        REQUIRE(raw.send_all(proto::encode_frame(R"({"type":"teleport","id":2})")));
        const auto unknown = raw.read_frame(kDeadline);
        CHECK(error_of(unknown).code == proto::ErrorCode::bad_request);
        CHECK(unknown->id == 2u);
        REQUIRE(raw.send_all(proto::encode_frame(
            R"({"type":"publish","id":3,"file":{"name":"x","size":1,"id":"not-hex","piece_size":262144}})")));
        CHECK(error_of(raw.read_frame(kDeadline)).code == proto::ErrorCode::bad_request);
        CHECK(raw.closed_within(kDeadline));
        CHECK(wait_until([&] { return !live_peers(tracker).contains("sloppy"); }, kDeadline));
    }
    SUBCASE("garbage on the admin socket") {
        RawConnection raw(tracker.socket());
        REQUIRE(raw.send_all("\xff\xff\xff\xff not a frame"));
        CHECK(raw.closed_within(kDeadline));
    }

    // Whatever happened above, the tracker is up and its peers are served.
    INFO(tracker.process().describe());
    REQUIRE(tracker.running());
    CHECK(holder_names(lookup(*looker, "a.txt")) == std::set<std::string>{"alice"});
    CHECK(alice->running());
    auto newcomer = tracker.connect_peer("newcomer");
    CHECK(lookup(*newcomer, "a.txt").size() == 1);
    CHECK(tracker.trackerctl("stats").exit_code == 0);
    // Sanitizer builds report undefined behaviour on stderr and leaks in the exit code.
    CHECK_FALSE(contains(tracker.process().errors(), "runtime error"));
    CHECK(tracker.stop() == 0);
}

TEST_CASE("admin socket clients that never complete a hello are closed after the hello timeout") {
    TrackerFixture tracker;
    // A trackerctl-like session that did say hello: the timeout is not for it.
    auto greeted = common::Client::connect_unix(tracker.socket().string(), kDeadline);
    REQUIRE(greeted.ok());
    proto::Hello hello;
    hello.role = "admin";
    REQUIRE((*greeted)->request<proto::Welcome>(hello, kDeadline).ok());

    const auto since = Clock::now();
    RawConnection silent(tracker.socket());
    RawConnection partial(tracker.socket());
    REQUIRE(partial.send_all(big_endian_length(100) + "{\"type\":"));  // a frame begun, never finished
    // While they wait, the socket serves others.
    CHECK(tracker.trackerctl("stats").exit_code == 0);
    // Both wait out the same timeout (5 s), so together they cost one.
    CHECK(silent.closed_within(kDeadline));
    CHECK(partial.closed_within(kDeadline));
    CHECK(Clock::now() - since >= Millis{proto::kHelloTimeoutMs} - Millis{1000});

    INFO(tracker.process().describe());
    REQUIRE(tracker.running());
    CHECK((*greeted)->request<proto::Stats>(proto::GetStats{}, kDeadline).ok());
    const auto stats = ctl_json(tracker, "stats");
    CHECK(stats["peers"] == 0);
    CHECK_FALSE(contains(tracker.process().errors(), "runtime error"));
    CHECK(tracker.stop() == 0);
}

// ---------------------------------------------------------------------------
// Names at every length limit (issue 9, "Fault injection"): file and peer
// names of 255 bytes (proto::kMaxNameBytes) are taken; 256 and empty are
// refused with an error saying the limit, and, as for any known request with
// invalid fields (docs/protocol.md §9), that session is closed while the
// others go on; a frame of exactly proto::kMaxFrame bytes is read, one byte
// more is refused at its header and closed.

namespace {

// `message` as a frame whose payload is exactly `size` bytes: the JSON, then
// spaces (JSON allows whitespace after the value). The header written by hand,
// so a frame over the limit can be sent too.
std::string frame_of_size(json message, std::size_t size) {
    auto payload = message.dump();
    REQUIRE(payload.size() <= size);
    payload.append(size - payload.size(), ' ');
    return big_endian_length(static_cast<std::uint32_t>(size)) + payload;
}

std::string frame_of(const json& message) { return proto::encode_frame(message.dump()); }

json publish_json(const std::string& name, std::uint64_t id) {
    return {{"type", "publish"}, {"id", id},
            {"file", {{"name", name}, {"size", 1000}, {"id", hex64(name)}, {"piece_size", 262'144}}}};
}

json lookup_json(const std::string& name, std::uint64_t id) { return {{"type", "lookup"}, {"id", id}, {"name", name}}; }

json hello_json(const std::string& name) {
    auto j = peer_hello(name).to_json();
    j["type"] = "hello";
    j["id"] = 1;
    return j;
}

// The reply to request `id`.
proto::Envelope reply_to(RawConnection& raw, std::uint64_t id) {
    auto frame = raw.read_frame(kDeadline);
    REQUIRE_MESSAGE(frame.has_value(), "no reply to request " << id);
    CHECK(frame->id == id);
    return *frame;
}

// `request` on a session of its own refused: bad_request saying `why`, then closed.
void refused(TrackerFixture& tracker, const json& request, std::string_view why) {
    INFO("request: " << request.dump().substr(0, 80));
    RawConnection raw(tracker.port());
    if (request["type"] != "hello") {
        REQUIRE(raw.send_all(frame_of(hello_json("refused"))));
        REQUIRE(reply_to(raw, 1).type == "welcome");
    }
    REQUIRE(raw.send_all(frame_of(request)));
    const auto err = error_of(raw.read_frame(kDeadline));
    CHECK(err.code == proto::ErrorCode::bad_request);
    CHECK_MESSAGE(contains(err.message, why), err.message);
    CHECK(raw.closed_within(kDeadline));
}

}  // namespace

TEST_CASE("names at every length limit: 255 bytes taken, 256 and empty refused saying the limit, frames at 1 MiB read") {
    TrackerFixture tracker;
    const std::string longest(proto::kMaxNameBytes, 'n');
    const std::string one_over(proto::kMaxNameBytes + 1, 'n');

    // A hello whose peer name is 255 bytes, in a frame of exactly the frame limit.
    RawConnection raw(tracker.port());
    REQUIRE(raw.send_all(frame_of_size(hello_json(longest), proto::kMaxFrame)));
    CHECK(reply_to(raw, 1).type == "welcome");
    CHECK(live_peers(tracker).count(longest) == 1);
    // A publish of a 255-byte name, and a lookup of it in a frame of exactly the limit.
    REQUIRE(raw.send_all(frame_of(publish_json(longest, 2))));
    CHECK(reply_to(raw, 2).type == "ok");
    REQUIRE(raw.send_all(frame_of_size(lookup_json(longest, 3), proto::kMaxFrame)));
    const auto found = reply_to(raw, 3);
    REQUIRE(found.type == "holders");
    CHECK(found.body["holders"].size() == 1);

    // One over, and empty, in each message that carries a name.
    refused(tracker, hello_json(one_over), "at most 255 bytes");
    refused(tracker, hello_json(""), "empty");
    refused(tracker, publish_json(one_over, 2), "at most 255 bytes");
    refused(tracker, publish_json("", 2), "empty");
    refused(tracker, lookup_json(one_over, 2), "at most 255 bytes");
    refused(tracker, lookup_json("", 2), "empty");
    CHECK(live_peers(tracker) == std::set<std::string>{longest});   // none of them stayed

    // The first session was not disturbed: it still answers.
    REQUIRE(raw.send_all(frame_of(lookup_json(longest, 4))));
    CHECK(reply_to(raw, 4).type == "holders");
    auto looker = tracker.connect_peer("looker");
    CHECK(holder_names(lookup(*looker, longest)) == std::set<std::string>{longest});

    // One byte over the frame limit: refused at its header, saying the limit, and closed.
    REQUIRE(raw.send_all(frame_of_size(lookup_json(longest, 5), proto::kMaxFrame + 1).substr(0, 4)));
    const auto over = error_of(raw.read_frame(kDeadline));
    CHECK(contains(over.message, "over the limit of " + std::to_string(proto::kMaxFrame)));
    CHECK(raw.closed_within(kDeadline));
    CHECK(tracker.running());
    CHECK(lookup(*looker, longest).empty());   // its session ended, its files with it
}
