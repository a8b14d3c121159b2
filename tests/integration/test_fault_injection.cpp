// tests/integration/test_fault_injection.cpp — hostile clients against the
// real binaries on loopback (issue 9, "Fault injection"; docs/robustness.md):
// on trackerd's session port, a thousand connections that never speak, a
// frame announcing 4 GiB, half a frame then silence, 10,000 publishes from
// one peer, a peer that never reads its replies, a hello flood with one key;
// on peerd's upload server, 10,000 idle keep-alive connections and a
// downloader that stops reading mid-body. After each, the daemon still serves
// a well-behaved client, and its resident memory (VmRSS) is back within a
// bound of what it was before; the figures go to the test's output (MESSAGE).
// Slowloris and endless headers are in test_faults.cpp (fault 1) and
// tests/unit/test_http_request.cpp; malformed frames in test_tracker.cpp.
// Every limit is made short on the command line, so each case takes seconds.
#include <doctest/doctest.h>

#include <sys/resource.h>

#include <algorithm>
#include <fstream>

#include "daemon/upload_server.hpp"
#include "tests/integration/peer_helpers.hpp"

namespace peershare::test {
namespace {

constexpr const char* kShortTimeout = "2";   // --request-timeout, seconds
constexpr Millis kClosedBy{2'000 + 8'000};   // that deadline, and slack for a loaded machine
const std::string kUnknown(64, 'a');            // a content id nobody publishes

// A field of /proc/PID/status in kB (VmRSS, VmHWM), -1 if absent.
long status_kb(pid_t pid, std::string_view field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with(field) && line.size() > field.size() && line[field.size()] == ':') {
            return std::stol(line.substr(field.size() + 1));
        }
    }
    return -1;
}

std::size_t open_fds(pid_t pid) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) ++n;
    return n;
}

// Under ASan (the SANITIZE=1 build) freed memory waits in ASan's quarantine
// (256 MB by default) before it is reused, so resident memory does not come
// back there: the memory bounds are asserted in the plain build only, and
// under ASan the figures are reported (ASan checks leaks and misuse instead).
// TSan likewise keeps shadow memory and delays frees (the TSan run failed on
// the bound with every other check passing), so there too they are reported.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kRssComesBack = false;
#else
constexpr bool kRssComesBack = true;
#endif

// RSS after a fault against RSS before it: within 10 % plus 2 MiB (what the
// allocator keeps of freed arenas and the first use of code pages).
void check_rss_returned(pid_t pid, long before_kb, std::string_view what) {
    const auto within = [&](long kb) { return kb <= before_kb + before_kb / 10 + 2048; };
    long after_kb = status_kb(pid, "VmRSS");
    // Freed memory is returned as the connections close; give it the deadline.
    if (kRssComesBack) wait_until([&] { return within(after_kb = status_kb(pid, "VmRSS")); }, kDeadline);
    MESSAGE(what << ": VmRSS " << before_kb << " kB before, " << after_kb << " kB after (peak "
                 << status_kb(pid, "VmHWM") << " kB), " << open_fds(pid) << " fds");
    if (kRssComesBack) CHECK(within(after_kb));
}

// Lets this process, and the peerd it starts (which inherits it), hold
// `want` descriptors: soft and hard RLIMIT_NOFILE raised (root, which the CI
// is: CAP_SYS_RESOURCE, up to fs.nr_open), or failing that the soft limit to
// the hard one. The soft limit now in force.
rlim_t raise_nofile(rlim_t want) {
    rlimit limit{};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &limit) == 0);
    if (limit.rlim_max < want) {
        const rlimit raised{want, want};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return want;
    }
    limit.rlim_cur = std::max(limit.rlim_cur, std::min(limit.rlim_max, want));
    REQUIRE(setrlimit(RLIMIT_NOFILE, &limit) == 0);
    return limit.rlim_cur;
}

// One GET of a 10-byte range on `c`: true if a 206 head and its 10 body bytes came back.
bool served_range(RawConnection& c, const std::string& get) {
    if (!c.send_all(get)) return false;
    std::string head;
    while (!head.ends_with("\r\n\r\n") && head.size() < 4096) {
        const auto byte = c.read_bytes(1, kDeadline);
        if (!byte) return false;
        head += *byte;
    }
    return head.starts_with("HTTP/1.1 206 ") && c.read_bytes(10, kDeadline).has_value();
}

std::string frame_header(std::uint32_t length) {
    return {static_cast<char>(length >> 24), static_cast<char>(length >> 16), static_cast<char>(length >> 8),
            static_cast<char>(length)};
}

TrackerFixture::Options short_tracker() {
    TrackerFixture::Options o;
    o.extra_args = {"--request-timeout", kShortTimeout};
    return o;
}

// The tracker answers a real peer's lookup.
void tracker_serves(TrackerFixture& tracker) {
    auto client = tracker.connect_peer("witness");
    proto::Lookup lookup;
    lookup.name = "nothing-here";
    auto reply = client->wait_reply(client->send(lookup), kDeadline);
    CHECK_MESSAGE(static_cast<bool>(reply), "the tracker did not answer a lookup");
}

proto::Publish publish_of(std::size_t i) {
    proto::Publish p;
    p.file.name = "file-" + std::to_string(i);
    p.file.size = 1000 + i;
    p.file.id = hex64("content-" + std::to_string(i));
    p.file.piece_size = 262'144;
    return p;
}

}  // namespace

TEST_CASE("trackerd's session port: hostile sessions are closed, the tracker serves others, memory comes back") {
    TrackerFixture tracker(short_tracker());
    const pid_t pid = tracker.process().pid();
    tracker_serves(tracker);   // its code paths are warm before the first figure
    const long before = status_kb(pid, "VmRSS");

    SUBCASE("1,000 connections that never speak are closed at the hello deadline") {
        std::vector<std::unique_ptr<RawConnection>> silent;
        for (int i = 0; i < 1000; ++i) silent.push_back(std::make_unique<RawConnection>(tracker.port()));
        tracker_serves(tracker);   // while they are all open
        std::size_t closed = 0;
        for (auto& c : silent) closed += c->closed_within(kClosedBy) ? 1 : 0;
        CHECK(closed == silent.size());
        silent.clear();
        check_rss_returned(pid, before, "1,000 silent connections");
    }
    SUBCASE("a frame that announces 4 GiB is refused at its header") {
        RawConnection raw(tracker.port());
        REQUIRE(raw.send_all(frame_header(0xFFFF'FFFFu) + "{\"type\":"));
        CHECK(raw.closed_within(kDeadline));
        check_rss_returned(pid, before, "a 4 GiB frame header");
    }
    SUBCASE("half a frame, then silence, is closed at the frame deadline") {
        RawConnection raw(tracker.port());
        REQUIRE(raw.send_all(frame_header(1000) + std::string(500, ' ')));
        CHECK(raw.closed_within(kClosedBy));
        check_rss_returned(pid, before, "half a frame");
    }
    SUBCASE("10,000 publishes from one peer: all indexed up to the limit, the next refused") {
        auto client = tracker.connect_peer("hoarder");
        for (std::size_t i = 0; i < 10'000; ++i) client->send(publish_of(i));
        auto over = client->wait_reply(client->send(publish_of(10'000)), 30s);   // after the 10,000 in order
        REQUIRE(static_cast<bool>(over));
        CHECK(over->type == "error");
        const auto r = tracker.trackerctl("--json", "stats");
        REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
        CHECK(parse_json(r.out)["files"] == 10'000);
        tracker_serves(tracker);
        client.reset();   // the session ends: its 10,000 entries go
        CHECK(wait_until([&] {
            const auto s = tracker.trackerctl("--json", "stats");
            return s.exit_code == 0 && parse_json(s.out)["files"] == 0;
        }, kDeadline));
        // 10,000 index entries were held; the bound is what the allocator keeps of them.
        MESSAGE("10,000 publishes: VmRSS " << before << " kB before, peak " << status_kb(pid, "VmHWM")
                                           << " kB, after " << status_kb(pid, "VmRSS") << " kB");
        if (kRssComesBack) CHECK(status_kb(pid, "VmRSS") <= before + 16 * 1024);
    }
    SUBCASE("a peer that never reads its replies is dropped once 8 MiB wait for it") {
        auto hoarder = tracker.connect_peer("hoarder");
        for (std::size_t i = 0; i < 2'000; ++i) hoarder->send(publish_of(i));
        REQUIRE(static_cast<bool>(hoarder->wait_reply(hoarder->send(proto::Search{}), 30s)));   // all 2,000 indexed
        RawConnection raw(tracker.port());
        proto::Hello hello;
        hello.name = "deaf";
        hello.port = 7000;
        hello.key = hex64("deaf");
        REQUIRE(raw.send_all(proto::make_frame(hello, 1)));
        REQUIRE(raw.read_frame(kDeadline).has_value());
        // Each search answers ~2,000 rows (about 300 KB); 200 of them are 60 MB of replies.
        std::string searches;
        for (std::uint64_t id = 2; id < 202; ++id) searches += proto::make_frame(proto::Search{}, id);
        raw.send_all(searches);   // may fail part way once the tracker has dropped us
        CHECK(wait_until([&] {
            const auto s = tracker.trackerctl("--json", "peers");
            return s.exit_code == 0 && !contains(s.out, "\"deaf\"");
        }, kDeadline));
        tracker_serves(tracker);
        hoarder.reset();
        CHECK(wait_until([&] {
            const auto s = tracker.trackerctl("--json", "stats");
            return s.exit_code == 0 && parse_json(s.out)["files"] == 0;
        }, kDeadline));
        MESSAGE("a deaf peer: VmRSS " << before << " kB before, peak " << status_kb(pid, "VmHWM") << " kB, after "
                                      << status_kb(pid, "VmRSS") << " kB");
        if (kRssComesBack) CHECK(status_kb(pid, "VmRSS") <= before + 16 * 1024);
    }
    SUBCASE("a hello flood: 300 sessions with one name and key each replace the last; 300 names with one key") {
        std::vector<std::unique_ptr<common::Client>> sessions;
        for (int i = 0; i < 300; ++i) sessions.push_back(tracker.connect_peer("flood", 7000, hex64("flood")));
        for (int i = 0; i < 300; ++i) {
            sessions.push_back(tracker.connect_peer("flood-" + std::to_string(i), 7000, hex64("flood")));
        }
        const auto r = tracker.trackerctl("--json", "peers");
        REQUIRE(r.exit_code == 0);
        std::size_t floods = 0, named = 0;
        const auto peers = parse_json(r.out);   // kept: the loop must not read a destroyed temporary
        for (const auto& p : peers["peers"]) {
            const auto name = p["name"].get<std::string>();
            if (name == "flood") ++floods;
            if (name.starts_with("flood-")) ++named;
        }
        CHECK(floods == 1);   // each replaced the last
        CHECK(named == 300);  // one key may serve several names: each is its own peer
        tracker_serves(tracker);
        sessions.clear();
        CHECK(wait_until([&] {
            const auto s = tracker.trackerctl("--json", "peers");
            return s.exit_code == 0 && !contains(s.out, "flood");
        }, kDeadline));
        check_rss_returned(pid, before, "600 hellos with one key");
    }
    CHECK(tracker.running());
}

TEST_CASE("peerd's upload server: idle keep-alives and a reader that stops mid-body cost bounded memory and are freed") {
    // 10,000 idle connections cost peerd 20,000 descriptors (the socket and
    // the dup sendfile(2) and the writability poll use) and this process
    // 10,000: raised before peerd starts, so it inherits the limit.
    constexpr std::size_t kIdle = 10'000;
    const rlim_t nofile = raise_nofile(3 * kIdle + 1024);
    // One below peerd's connection cap for this limit, which the served
    // witness GET needs (it is 10,256 under the 31,024 asked for).
    const std::size_t idle_count =
        std::min({kIdle, static_cast<std::size_t>(nofile - 512) / 2, peerd::connection_cap(nofile) - 1});
    if (idle_count < kIdle) {
        MESSAGE("only " << idle_count << " idle connections: RLIMIT_NOFILE is " << nofile
                        << " and cannot be raised without CAP_SYS_RESOURCE (peerd's cap is "
                        << peerd::connection_cap(nofile) << ")");
    }
    TempDir dir;
    TrackerFixture tracker;
    // A deadline of 4 s, not 2: opening the 10,000 takes a few seconds on a
    // busy machine, and they must all be open at once before the first closes.
    auto peer = start_peer("p1", tracker.endpoint(), dir.path(),
                           {.extra_args = {"--request-timeout", "4", "--max-uploads", "1"}});
    const pid_t pid = peer->process().pid();
    const auto file = peer->dir() / "big.bin";
    write_random(file, 64u << 20, 7);
    const auto id = publish(*peer, file, "big.bin")["id"].get<std::string>();
    const std::string get = "GET /v1/files/" + id + " HTTP/1.1\r\nHost: p1\r\n";
    CHECK(status_of(raw_http(peer->port(), get + "Range: bytes=0-9\r\nConnection: close\r\n\r\n")) == 206);
    const long before = status_kb(pid, "VmRSS");
    const std::size_t fds_before = open_fds(pid);

    SUBCASE("10,000 idle keep-alive connections: served beside, closed at the request deadline") {
        const auto flood = [&] {
            std::vector<std::unique_ptr<RawConnection>> idle;
            for (std::size_t i = 0; i < idle_count; ++i) {
                idle.push_back(std::make_unique<RawConnection>(peer->port()));
                if (i % 2 == 0) idle.back()->send_all("GET /v1/files/" + kUnknown + " HTTP/1.1\r\nHost: p1\r\n\r\n");
            }
            CHECK(status_of(raw_http(peer->port(), get + "Range: bytes=0-9\r\nConnection: close\r\n\r\n")) == 206);
            MESSAGE(idle_count << " idle connections open: peerd has " << open_fds(pid) << " fds, VmRSS "
                               << status_kb(pid, "VmRSS") << " kB");
            std::size_t closed = 0;
            for (auto& c : idle) closed += c->closed_within(kClosedBy) ? 1 : 0;
            CHECK(closed == idle.size());
            idle.clear();
            CHECK(wait_until([&] { return open_fds(pid) <= fds_before; }, kDeadline));
        };
        // The first round leaves the allocator holding what the connections
        // used (glibc keeps freed heap that is not at its top: about 3 kB a
        // connection here). The second must cost nothing more: no leak.
        flood();
        const long warm = status_kb(pid, "VmRSS");
        MESSAGE("after the first round: VmRSS " << before << " kB before, " << warm << " kB after");
        flood();
        check_rss_returned(pid, warm, "a second round of idle keep-alives");
    }
    SUBCASE("a downloader that stops reading mid-body holds the only slot until the stall deadline") {
        RawConnection stalled(peer->port());
        REQUIRE(stalled.send_all(get + "\r\n"));   // 64 MiB; it reads none of it
        // While it holds the slot, another download is told to come back.
        CHECK(wait_until([&] {
            return status_of(raw_http(peer->port(), get + "Range: bytes=0-9\r\nConnection: close\r\n\r\n")) == 503;
        }, kDeadline));
        // Once the stall deadline passes the slot is free again (no byte moved for 4 s).
        CHECK(wait_until([&] {
            return status_of(raw_http(peer->port(), get + "Range: bytes=0-9\r\nConnection: close\r\n\r\n")) == 206;
        }, kClosedBy));
        CHECK(stalled.closed_within(kDeadline));
        check_rss_returned(pid, before, "a stalled downloader");
    }
    CHECK(peer->running());
    CHECK(peer->peerctl("status").exit_code == 0);
}

TEST_CASE("peerd's upload server: past --max-connections new connections are closed at once; peerctl still answers") {
    // Review R9b's reproduction (there under a 64-descriptor limit, whose
    // derived cap is 10; the cap is given here so the test needs no
    // RLIMIT_NOFILE of its own): served keep-alives left idle up to the cap,
    // then more.
    constexpr std::size_t kCap = 15;
    TempDir dir;
    TrackerFixture tracker;
    auto peer = start_peer("p1", tracker.endpoint(), dir.path(),
                           {.extra_args = {"--max-connections", std::to_string(kCap)}});
    const auto file = peer->dir() / "small.bin";
    write_random(file, 100'000, 9);
    const auto id = publish(*peer, file, "small.bin")["id"].get<std::string>();
    const std::string get = "GET /v1/files/" + id + " HTTP/1.1\r\nHost: p1\r\nRange: bytes=0-9\r\n\r\n";
    const auto served = [&](RawConnection& c) { return served_range(c, get); };
    std::vector<std::unique_ptr<RawConnection>> kept;
    for (std::size_t i = 0; i < kCap; ++i) {
        kept.push_back(std::make_unique<RawConnection>(peer->port()));
        CHECK(served(*kept.back()));
    }
    for (int i = 0; i < 3; ++i) {
        RawConnection refused(peer->port());
        refused.send_all(get);
        CHECK(refused.closed_within(kDeadline));
    }
    CHECK(peer->peerctl("status").exit_code == 0);
    kept.front().reset();   // one goes away: a new one is served
    CHECK(wait_until([&] {
        RawConnection c(peer->port());
        return served(c);
    }, kDeadline));
    CHECK(served(*kept.back()));   // the idle ones still are
    CHECK(peer->running());
}

}  // namespace peershare::test
