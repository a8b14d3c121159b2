// tests/integration/test_dashboard.cpp — trackerd's HTTP listener (issue 12):
// /metrics passes `promtool check metrics` and its counters move with a
// scripted publish, lookup and ping; the API's documents equal `trackerctl
// --json`; the page and its token; bad input (garbage, huge headers, a slow
// client, 10,000 event-stream subscribers opening and closing, one that stops
// reading) leaves the tracker serving its peers.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <fstream>
#include <string>
#include <vector>

#include "harness.hpp"
#include "proto/frame.hpp"
#include "proto/messages.hpp"

using namespace peershare;
using namespace peershare::test;

namespace {

struct HttpReply {
    int status = 0;
    std::string body;
};

// curl, so the server is driven by a real client. `method` and headers optional.
HttpReply http(std::uint16_t port, const std::string& path, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv{"/usr/bin/curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("http://127.0.0.1:" + std::to_string(port) + path);
    auto r = run(argv);
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    const auto cut = r.out.rfind('\n');
    REQUIRE(cut != std::string::npos);
    return {std::stoi(r.out.substr(cut + 1)), r.out.substr(0, cut)};
}

nlohmann::json get_json(std::uint16_t port, const std::string& path) {
    auto reply = http(port, path);
    INFO(path << ": " << reply.body);
    REQUIRE(reply.status == 200);
    return parse_json(reply.body);
}

double metric(const std::string& text, const std::string& sample) { return metric_sample(text, sample); }

// One sample scraped now, or -1 when the scrape itself fails: for a wait_until
// while the listener may still be full of closing connections (a reset is
// then an answer to try again, not a failure of the test).
double scraped(std::uint16_t port, const std::string& sample) {
    const auto r = run({"/usr/bin/curl", "-sS", "--max-time", "2", "http://127.0.0.1:" + std::to_string(port) + "/metrics"});
    return r.exit_code == 0 ? metric(r.out, sample) : -1;
}

std::string page_token(std::uint16_t port) {
    auto page = http(port, "/");
    REQUIRE(page.status == 200);
    // No std::regex: GCC 12 warns inside it under ASan (maybe-uninitialized), and we build with -Werror.
    constexpr std::string_view kMeta = "name=\"peershare-token\" content=\"";
    const auto at = page.body.find(kMeta);
    REQUIRE(at != std::string::npos);
    const std::string token = page.body.substr(at + kMeta.size(), 32);
    REQUIRE(token.find_first_not_of("0123456789abcdef") == std::string::npos);
    REQUIRE(page.body.substr(at + kMeta.size() + 32, 1) == "\"");
    return token;
}

void lookup(common::Client& client, const std::string& name) {
    auto reply = client.request<proto::Holders>(proto::Lookup{name}, kDeadline);
    REQUIRE(reply);
}

// A client socket with a tiny receive buffer, for a reader that falls behind.
class SlowReader {
public:
    explicit SlowReader(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
        REQUIRE(fd_ >= 0);
        const int small = 4096;
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    }
    ~SlowReader() { ::close(fd_); }
    int fd() const { return fd_; }

private:
    int fd_;
};

}  // namespace

TEST_CASE("trackerd's /metrics passes promtool, and its counters move with publish, lookup and ping") {
    TrackerFixture tracker;
    const auto port = tracker.http_port();
    auto before = http(port, "/metrics");
    REQUIRE(before.status == 200);

    auto alice = tracker.start_peer("alice", {"--publish", "song.ogg:1000"});
    auto looker = tracker.connect_peer("looker");
    lookup(*looker, "song.ogg");
    lookup(*looker, "song.ogg");
    auto ping = tracker.trackerctl("ping", "alice");
    REQUIRE(ping.exit_code == 0);
    auto unknown = tracker.trackerctl("ping", "nobody");
    CHECK(unknown.exit_code == 1);

    auto after = http(port, "/metrics");
    REQUIRE(after.status == 200);
    auto check = promtool_check(after.body, tracker.dir().path());
    INFO(after.body);
    INFO(check.describe());
    CHECK(check.exit_code == 0);

    CHECK(metric(before.body, "peershare_tracker_peers") == 0);
    CHECK(metric(after.body, "peershare_tracker_peers") == 2);
    CHECK(metric(after.body, "peershare_tracker_holdings") == 1);
    CHECK(metric(after.body, "peershare_tracker_names") == 1);
    CHECK(metric(after.body, "peershare_tracker_sessions") == 2);
    CHECK(metric(after.body, "peershare_tracker_requests_total{type=\"publish\"}") == 1);
    CHECK(metric(after.body, "peershare_tracker_requests_total{type=\"lookup\"}") == 2);
    CHECK(metric(after.body, "peershare_tracker_events_total{kind=\"published\"}") == 1);
    CHECK(metric(after.body, "peershare_tracker_events_total{kind=\"looked_up\"}") == 2);
    CHECK(metric(after.body, "peershare_tracker_events_total{kind=\"joined\"}") == 2);
    CHECK(metric(after.body, "peershare_tracker_pings_total{result=\"live\"}") == 1);
    CHECK(metric(after.body, "peershare_tracker_pings_total{result=\"unknown\"}") == 1);
    CHECK(metric(after.body, "peershare_tracker_ping_rtt_seconds_count") == 1);
    CHECK(metric(after.body, "peershare_tracker_ping_rtt_seconds_sum") > 0);
    CHECK(metric(after.body, "peershare_tracker_request_duration_seconds_count") >=
          metric(before.body, "peershare_tracker_request_duration_seconds_count") + 5);
    CHECK(metric(after.body, "peershare_tracker_session_received_bytes_total") > 100);
    CHECK(metric(after.body, "peershare_tracker_session_sent_bytes_total") > 100);
    CHECK(metric(after.body, "process_resident_memory_bytes") > 1e6);
    CHECK(metric(after.body, "process_open_fds") > 5);
    CHECK(metric(after.body, "process_start_time_seconds") > 1.7e9);

    // A frame that is not JSON is counted by reason, and the session closed.
    RawConnection raw(tracker.port());
    REQUIRE(raw.send_all(std::string("\0\0\0\5hello", 9)));
    CHECK(raw.closed_within(kDeadline));
    auto last = http(port, "/metrics");
    CHECK(metric(last.body, "peershare_tracker_frames_rejected_total{reason=\"bad_envelope\"}") == 1);
}

TEST_CASE("right after start, /metrics has every labelled series at 0 (no series missing until its first event)") {
    TrackerFixture tracker;
    auto page = http(tracker.http_port(), "/metrics");
    REQUIRE(page.status == 200);
    auto check = promtool_check(page.body, tracker.dir().path());
    INFO(page.body);
    INFO(check.describe());
    CHECK(check.exit_code == 0);
    const std::vector<std::pair<std::string, std::vector<std::string>>> families{
        {"peershare_tracker_requests_total{type=",
         {"hello", "lookup", "heartbeat", "publish", "unpublish", "fetched", "search", "discover", "ping_peer",
          "list_peers", "list_events", "get_stats", "reach_check", "relay_request", "reverse_request"}},
        {"peershare_tracker_events_total{kind=",
         {"joined", "left", "looked_up", "published", "unpublished", "fetched", "relayed", "reverse"}},
        {"peershare_tracker_reverse_requests_total{result=",
         {"forwarded", "unavailable", "not_found", "bad_request", "busy"}},
        {"peershare_tracker_pings_total{result=", {"live", "timeout", "left", "unknown", "stopped"}},
        {"peershare_tracker_frames_rejected_total{reason=",
         {"no_hello", "version_mismatch", "bad_hello", "admin_hello", "malformed_message", "unknown_type",
          "bad_framing", "bad_envelope"}},
        {"peershare_tracker_http_refused_total{reason=", {"full", "deadline", "bad_request", "slow_stream"}}};
    for (const auto& [prefix, values] : families) {
        for (const auto& value : values) {
            const auto sample = prefix + "\"" + value + "\"}";
            CAPTURE(sample);
            CHECK(metric(page.body, sample) == 0);   // -1: absent
        }
    }
}

TEST_CASE("unknown message types on the admin socket are not counted as requests") {
    // They were: each became a `type` label (any string a client sent) and, past
    // 64 of them, the tracker's real request types went uncounted.
    TrackerFixture tracker;
    RawConnection admin(tracker.socket());
    proto::Hello hello;
    hello.role = "admin";
    REQUIRE(admin.send_all(proto::make_frame(hello, 1)));
    REQUIRE(admin.read_frame(kDeadline).has_value());
    for (int i = 0; i < 70; ++i) {
        const auto id = static_cast<std::uint64_t>(i + 2);
        REQUIRE(admin.send_all(proto::encode_frame(R"({"type":"teleport-)" + std::to_string(i) +
                                                   R"(","id":)" + std::to_string(id) + "}")));
        const auto reply = admin.read_frame(kDeadline);
        REQUIRE(reply.has_value());
        CHECK(reply->type == "error");
    }
    REQUIRE(tracker.trackerctl("files").exit_code == 0);   // a type not seen before: search

    const auto text = http(tracker.http_port(), "/metrics").body;
    INFO(text);
    CHECK_FALSE(contains(text, "teleport"));
    CHECK(metric(text, "peershare_tracker_requests_total{type=\"search\"}") == 1);
    auto stats = tracker.trackerctl("--json", "stats");
    REQUIRE(stats.exit_code == 0);
    CHECK_FALSE(contains(stats.out, "teleport"));
}

TEST_CASE("the API's documents equal trackerctl --json for the same state") {
    TrackerFixture tracker;
    const auto port = tracker.http_port();
    auto alice = tracker.start_peer("alice", {"--publish", "song.ogg:1000:" + hex64("song"), "--publish", "notes.txt:20"});
    auto bob = tracker.start_peer("bob", {"--publish", "song.ogg:1000:" + hex64("song"), "--publish", "b c.txt:3"});
    auto looker = tracker.connect_peer("looker");
    lookup(*looker, "song.ogg");

    const auto ctl = [&](std::vector<std::string> args) {
        args.insert(args.begin(), "--json");
        auto r = tracker.trackerctl(args);
        INFO(r.describe());
        REQUIRE(r.exit_code == 0);
        return parse_json(r.out);
    };
    CHECK(get_json(port, "/api/v1/peers") == ctl({"peers"}));
    CHECK(get_json(port, "/api/v1/files") == ctl({"files"}));
    CHECK(get_json(port, "/api/v1/files?text=son") == ctl({"files", "son"}));
    CHECK(get_json(port, "/api/v1/files?text=b%20c") == ctl({"files", "b c"}));
    CHECK(get_json(port, "/api/v1/peers/alice") == ctl({"discover", "alice"}));
    CHECK(get_json(port, "/api/v1/events") == ctl({"events"}));
    // stats: trackerctl's own request is counted before it is answered; HTTP requests are not.
    auto stats_ctl = ctl({"stats"});
    auto stats_http = get_json(port, "/api/v1/stats");
    CHECK(std::abs(stats_http["uptime_s"].get<double>() - stats_ctl["uptime_s"].get<double>()) <= 1);
    stats_http.erase("uptime_s");
    stats_ctl.erase("uptime_s");
    stats_http["requests"].erase("heartbeat");   // the peers' heartbeats may come in between
    stats_ctl["requests"].erase("heartbeat");
    CHECK(stats_http == stats_ctl);

    auto missing = http(port, "/api/v1/peers/nobody");
    CHECK(missing.status == 404);
    CHECK(contains(missing.body, "no live peer named 'nobody'"));

    SUBCASE("ping: a POST with the page's token, the document of trackerctl ping --json") {
        const auto token = page_token(port);
        auto refused = http(port, "/api/v1/peers/alice/ping", {"-X", "POST"});
        CHECK(refused.status == 403);
        auto wrong = http(port, "/api/v1/peers/alice/ping", {"-X", "POST", "-H", "X-Peershare-Token: " + std::string(32, '0')});
        CHECK(wrong.status == 403);
        auto get = http(port, "/api/v1/peers/alice/ping");
        CHECK(get.status == 405);
        auto live = http(port, "/api/v1/peers/alice/ping", {"-X", "POST", "-H", "X-Peershare-Token: " + token});
        REQUIRE(live.status == 200);
        auto doc = parse_json(live.body);
        auto expected = ctl({"ping", "alice"});
        CHECK(doc["host"] == "alice");
        CHECK(doc["live"] == true);
        CHECK(doc["rtt_ms"].get<double>() > 0);
        for (auto& [key, value] : expected.items()) CHECK(doc.contains(key));
        CHECK(doc.size() == expected.size());
        auto offline = http(port, "/api/v1/peers/nobody/ping", {"-X", "POST", "-H", "X-Peershare-Token: " + token});
        REQUIRE(offline.status == 200);
        CHECK(parse_json(offline.body)["live"] == false);
    }
}

TEST_CASE("the dashboard page is served from the binary with its token and a strict content policy") {
    TrackerFixture tracker;
    const auto port = tracker.http_port();
    auto head = run({"/usr/bin/curl", "-sS", "-D", "-", "-o", "/dev/null", "http://127.0.0.1:" + std::to_string(port) + "/"});
    REQUIRE(head.exit_code == 0);
    CHECK(contains(head.out, "Content-Type: text/html; charset=utf-8"));
    CHECK(contains(head.out, "Content-Security-Policy: default-src 'self'"));
    CHECK(page_token(port) != page_token(TrackerFixture().http_port()));   // random per start
    // A page that outlived a restart reads the new token here (tests/browser restarts the tracker).
    CHECK(get_json(port, "/api/v1/token") == nlohmann::json{{"token", page_token(port)}});
    CHECK(http(port, "/app.js").status == 200);
    CHECK(http(port, "/style.css").status == 200);
    CHECK(http(port, "/nothing-here").status == 404);
    CHECK(http(port, "/metrics", {"-X", "DELETE"}).status == 405);
    CHECK(http(port, "/api/v1/nothing").status == 404);
    CHECK(http(port, "/", {"-I"}).status == 200);   // HEAD
}

TEST_CASE("on loopback, a request naming another host is refused: no reading the API through DNS rebinding") {
    // A page of attacker.example whose name the attacker then points at
    // 127.0.0.1 is same-origin with what it loads from there: it could read
    // the token and the API. Its browser sends Host: attacker.example.
    TrackerFixture tracker;
    const auto port = tracker.http_port();
    for (const std::string path : {"/", "/api/v1/peers", "/metrics", "/api/v1/events/stream", "/api/v1/token"}) {
        CAPTURE(path);
        auto refused = http(port, path, {"-H", "Host: attacker.example:" + std::to_string(port)});
        CHECK(refused.status == 421);
        CHECK_FALSE(contains(refused.body, "peershare-token"));
    }
    CHECK(http(port, "/api/v1/peers", {"-H", "Host: localhost:" + std::to_string(port)}).status == 200);
    CHECK(http(port, "/api/v1/peers").status == 200);   // curl sends Host: 127.0.0.1:PORT
}

TEST_CASE("bad input on the HTTP listener leaves the tracker serving its peers") {
    TrackerFixture tracker;
    const auto port = tracker.http_port();
    auto alice = tracker.start_peer("alice", {"--publish", "a.txt:1"});

    SUBCASE("garbage, oversized headers and a slow client are answered or closed") {
        // A client that sends half a request and stops: closed at the request deadline.
        RawConnection slow(port);
        REQUIRE(slow.send_all("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
        // One that trickles a header byte every 250 ms: closed at the same deadline (not an idle timer).
        RawConnection trickle(port);
        REQUIRE(trickle.send_all("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: "));
        RawConnection garbage(port);
        REQUIRE(garbage.send_all(std::string("\x16\x03\x01\x00\xff garbage\r\n\r\n", 17)));
        CHECK(contains(garbage.read_until_closed(kDeadline), "HTTP/1.1 400"));
        RawConnection huge(port);
        huge.send_all("GET / HTTP/1.1\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n");
        CHECK(contains(huge.read_until_closed(kDeadline), "HTTP/1.1 431"));
        RawConnection body(port);
        body.send_all("POST /api/v1/peers/alice/ping HTTP/1.1\r\nContent-Length: 100000\r\n\r\n");
        CHECK(contains(body.read_until_closed(kDeadline), "HTTP/1.1 413"));
        bool trickle_closed = false;
        for (int i = 0; i < 80 && !trickle_closed; ++i) {   // 20 s at most, twice the deadline
            trickle_closed = trickle.closed_within(Millis{250}) || !trickle.send_all("a");
        }
        CHECK(trickle_closed);
        CHECK(slow.closed_within(Millis{20'000}));
        CHECK(metric(http(port, "/metrics").body, "peershare_tracker_http_refused_total{reason=\"deadline\"}") == 2);
    }

    SUBCASE("event-stream clients cannot take every connection: /metrics is still answered") {
        // 512 subscribers would fill the listener (512 connections): no scrape,
        // no page, until one leaves. Past 256 streams a subscriber gets 503.
        std::vector<std::unique_ptr<RawConnection>> streams;
        for (int i = 0; i < 512; ++i) {
            streams.push_back(std::make_unique<RawConnection>(port));
            REQUIRE(streams.back()->send_all("GET /api/v1/events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
        }
        CHECK(contains(streams.back()->read_until_closed(kDeadline), "HTTP/1.1 503"));
        CHECK(wait_until([&] { return scraped(port, "peershare_tracker_event_stream_subscribers") == 256; }, kDeadline));
        CHECK(scraped(port, "peershare_tracker_http_refused_total{reason=\"full\"}") >= 256);
    }

    SUBCASE("10,000 event-stream subscribers opening and closing") {
        constexpr int kBatch = 100;
        for (int round = 0; round < 100; ++round) {
            std::vector<std::unique_ptr<RawConnection>> batch;
            for (int i = 0; i < kBatch; ++i) {
                batch.push_back(std::make_unique<RawConnection>(port));
                REQUIRE(batch.back()->send_all("GET /api/v1/events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
            }
            if (round == 0) {   // the first batch is really subscribed: the metrics say so
                CHECK(wait_until([&] {
                    return scraped(port, "peershare_tracker_event_stream_subscribers") == kBatch;
                }, kDeadline));
            }
        }
        CHECK(wait_until([&] {
            return scraped(port, "peershare_tracker_event_stream_subscribers") == 0;
        }, kDeadline));
    }

    SUBCASE("a subscriber that stops reading is dropped, and memory returns to its level") {
        auto looker = tracker.connect_peer("looker");
        const auto rss = [&] { return metric(http(port, "/metrics").body, "process_resident_memory_bytes"); };
        for (int i = 0; i < 2000; ++i) lookup(*looker, "warm-up " + std::to_string(i));
        const double rss_before = rss();
        SlowReader reader(port);
        const std::string request = "GET /api/v1/events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        REQUIRE(::send(reader.fd(), request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
        const std::string long_name(200, 'n');
        const bool dropped = wait_until([&] {
            for (int i = 0; i < 500; ++i) lookup(*looker, long_name + std::to_string(i));
            return scraped(port, "peershare_tracker_http_refused_total{reason=\"slow_stream\"}") == 1;
        }, Millis{60'000});
        CHECK(dropped);
        CHECK(wait_until([&] {
            return scraped(port, "peershare_tracker_event_stream_subscribers") == 0;
        }, kDeadline));
        const double rss_after = rss();
        INFO("resident before " << rss_before << ", after " << rss_after);
#ifdef __SANITIZE_ADDRESS__
        constexpr double kSlack = 16e6 + 256 * 1048576.0;   // ASan keeps freed memory in a 256 MiB quarantine
#else
        constexpr double kSlack = 16e6;
#endif
        CHECK(rss_after < rss_before + kSlack);
    }

    // The tracker still serves peers and HTTP.
    auto r = tracker.trackerctl("discover", "alice");
    CHECK(r.exit_code == 0);
    CHECK(contains(r.out, "a.txt"));
    CHECK(http(port, "/api/v1/peers").status == 200);
    CHECK(tracker.running());
}

TEST_CASE("--http-listen: a non-loopback address is a warning, off turns it off, a taken explicit one an error") {
    TempDir dir;
    const auto start = [&](const std::string& http, const std::string& name) {
        return std::make_unique<Process>(trackerd_binary(),
                                         std::vector<std::string>{"--config", "/dev/null", "--listen", "127.0.0.1:0",
                                                                  "--admin-socket", (dir / (name + ".sock")).string(),
                                                                  "--http-listen", http},
                                         dir.path());
    };
    const auto logged = [](Process& p, std::string_view text) {
        return wait_until([&] { return contains(p.errors(), text) || p.exited(); }, kDeadline) &&
               contains(p.errors(), text);
    };
    auto open = start("0.0.0.0:0", "open");
    CHECK(logged(*open, "is not a loopback address: anyone who reaches it sees the dashboard"));
    auto off = start("off", "off");
    CHECK(logged(*off, "listening for peers on"));
    CHECK_FALSE(contains(off->errors(), "dashboard"));

    TrackerFixture taken;
    auto clash = start("127.0.0.1:" + std::to_string(taken.http_port()), "clash");
    CHECK(clash->wait(kDeadline) == 1);
    CHECK(contains(clash->errors(), "--http-listen: "));
}
