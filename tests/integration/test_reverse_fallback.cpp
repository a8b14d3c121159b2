// tests/integration/test_reverse_fallback.cpp — reverse connections when the
// tracker's view is not the fetcher's (issue 11, docs/protocol.md §10.7 step
// 4): a holder the tracker found reachable whose address then stops
// answering is fetched from by connecting back once the direct connect
// failed; and a fetch of hidden holders made while the tracker is still
// checking the fetcher's own reachability waits for the verdict instead of
// failing; and an unreachable fetcher whose direct connect fails meets the
// holder at the tracker's relay. Real trackerd, peerd, peerctl on loopback. A peer listens on
// 127.0.0.1:P and advertises another loopback address (trackerd
// --trust-advertise); a forwarder in this process makes P answer there, or
// answer slowly, for as long as the test wants.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "tests/integration/harness.hpp"
#include "tests/integration/peer_helpers.hpp"

using namespace peershare;
using namespace peershare::test;
using nlohmann::json;

namespace {

struct Fd {
    int fd = -1;
    explicit Fd(int f) : fd(f) {}
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
};

sockaddr_in loopback(const std::string& address, std::uint16_t port) {
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(port);
    REQUIRE(::inet_pton(AF_INET, address.c_str(), &at.sin_addr) == 1);
    return at;
}

// Forwards every TCP connection made to FROM:port to 127.0.0.1:port, each
// in its own thread, bytes both ways until both sides have closed (at most
// 60 s), the first one (or, with `every`, each one) only after `delay` (a
// slow path) — until stop(),
// after which FROM:port refuses connections.
class Forwarder {
public:
    Forwarder(const std::string& from, std::uint16_t port, std::chrono::milliseconds delay = {}, bool every = false)
        : listener_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)), port_(port), delay_(delay), every_(every) {
        REQUIRE(listener_.fd >= 0);
        const int one = 1;
        ::setsockopt(listener_.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        const auto at = loopback(from, port);
        REQUIRE(::bind(listener_.fd, reinterpret_cast<const sockaddr*>(&at), sizeof at) == 0);
        REQUIRE(::listen(listener_.fd, 16) == 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~Forwarder() { stop(); }
    Forwarder(const Forwarder&) = delete;
    Forwarder& operator=(const Forwarder&) = delete;

    void stop() {
        if (stop_.exchange(true)) return;
        thread_.join();
        for (auto& t : pumps_) t.join();
        ::close(std::exchange(listener_.fd, -1));
    }
    unsigned forwarded() const { return forwarded_; }

private:
    void serve() {
        while (!stop_) {
            pollfd p{listener_.fd, POLLIN, 0};
            if (::poll(&p, 1, 50) != 1) continue;
            const int c = ::accept4(listener_.fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) continue;
            const auto delay = forwarded_++ == 0 || every_ ? delay_ : std::chrono::milliseconds{};
            pumps_.emplace_back([this, c, delay] { pump(c, delay); });
        }
    }
    void pump(int client_fd, std::chrono::milliseconds delay) {
        Fd client(client_fd);
        const auto start = std::chrono::steady_clock::now();
        while (!stop_ && std::chrono::steady_clock::now() - start < delay) {
            pollfd idle{-1, 0, 0};
            ::poll(&idle, 0, 10);   // the slow path: nothing moves until `delay` is over
        }
        Fd upstream(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        const auto to = loopback("127.0.0.1", port_);
        if (upstream.fd < 0 || ::connect(upstream.fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) return;
        bool open[2] = {true, true};   // client → upstream, upstream → client
        const int from[2] = {client.fd, upstream.fd}, into[2] = {upstream.fd, client.fd};
        char buf[16384];
        while (!stop_ && (open[0] || open[1]) && std::chrono::steady_clock::now() - start < std::chrono::seconds(60)) {
            pollfd p[2] = {{open[0] ? from[0] : -1, POLLIN, 0}, {open[1] ? from[1] : -1, POLLIN, 0}};
            if (::poll(p, 2, 50) <= 0) continue;
            for (int i = 0; i < 2; ++i) {
                if (!open[i] || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
                const auto n = ::recv(from[i], buf, sizeof buf, 0);
                if (n <= 0) {
                    open[i] = false;
                    ::shutdown(into[i], SHUT_WR);
                    continue;
                }
                for (ssize_t sent = 0; sent < n;) {
                    const auto k = ::send(into[i], buf + sent, static_cast<std::size_t>(n - sent), MSG_NOSIGNAL);
                    if (k <= 0) return;
                    sent += k;
                }
            }
        }
    }

    Fd listener_;
    std::uint16_t port_;
    std::chrono::milliseconds delay_;
    bool every_;
    std::atomic<bool> stop_{false};
    std::atomic<unsigned> forwarded_{0};
    std::thread thread_;
    std::vector<std::thread> pumps_;   // touched by serve(), then by stop() once serve() is over
};

// The source `peer` of the first transfer in `peerctl --json transfers`, while
// not dropped; null otherwise.
json live_source(PeerFixture& fetcher, const std::string& peer) {
    const auto list = parse_json(fetcher.peerctl("--json", "transfers").out);
    for (const auto& t : list["transfers"]) {
        for (const auto& s : t["sources"]) {
            if (s["peer"] == peer && !s["dropped"].get<bool>()) return s;
        }
    }
    return nullptr;
}

// Whether the first transfer in `peerctl --json transfers` is done.
bool first_transfer_done(PeerFixture& fetcher) {
    const auto list = parse_json(fetcher.peerctl("--json", "transfers").out);
    return !list["transfers"].empty() && list["transfers"][0]["state"] == "done";
}

// A holder the tracker checked and found reachable through a forwarder at
// 127.0.0.2, which then stops: the tracker still lists it reachable, but
// nobody can connect to it at that address. Plus a fetcher started with
// `fetcher_args`, its own verdict in. `far.bin` (`size` random bytes) is
// published.
struct FarHolder {
    FarHolder(TrackerFixture& tracker, const fs::path& dir, std::uint64_t size, std::uint64_t seed,
              std::vector<std::string> fetcher_args) {
        const auto port = free_port();
        Forwarder path("127.0.0.2", port);
        PeerFixture::Options holder_options{{"--advertise", "127.0.0.2"}, "127.0.0.1:" + std::to_string(port)};
        holder = start_peer("holder", tracker.endpoint(), dir, holder_options);
        fetcher = start_peer("fetcher", tracker.endpoint(), dir, {std::move(fetcher_args)});
        file = holder->dir() / "far.bin";
        write_random(file, size, seed);
        publish(*holder, file, "far.bin");
        REQUIRE(settled_status(*holder)["reachable"] == true);
        fetcher_reachable = settled_status(*fetcher)["reachable"] == true;
        REQUIRE(path.forwarded() >= 1);
        out = fetcher->dir() / "far.bin";
    }   // `path` stops here: 127.0.0.2 refuses from now on

    std::unique_ptr<PeerFixture> holder, fetcher;
    fs::path file, out;
    bool fetcher_reachable = false;
};

}  // namespace

TEST_CASE("reverse fallback 1: a holder the tracker reached but the fetcher cannot is fetched from by connecting back") {
    TempDir dir;
    TrackerFixture tracker(trusting_advertise());
    // The fetcher slowed down so that the running transfer is seen with its source.
    FarHolder far(tracker, dir.path(), 3'000'000, 31, {"--max-download-rate", "2M"});
    REQUIRE(far.fetcher_reachable);
    auto& fetcher = far.fetcher;
    auto& holder = far.holder;
    const auto& file = far.file;
    const auto out = fetcher->dir() / "far.bin";
    const auto started = fetcher->peerctl({"fetch", "far.bin", "-o", out.string(), "--detach"}, kDeadline);
    REQUIRE_MESSAGE(started.exit_code == 0, started.describe());
    json seen;
    const bool via_reverse = wait_until(
        [&] {
            seen = live_source(*fetcher, "holder");
            return seen.is_object() && seen["via"] == "reverse";
        },
        kDeadline);
    CHECK_MESSAGE(via_reverse, seen.dump() << "\n" << fetcher->describe());
    const bool done = wait_until([&] { return first_transfer_done(*fetcher); }, kBigTransfer);
    REQUIRE_MESSAGE(done, fetcher->describe() << "\n" << holder->describe());
    CHECK(file_difference(file, out).empty());
    const auto log = fetcher->process().errors();
    CHECK(contains(log, "cannot connect to holder at its address; asking for a reverse connection"));
    CHECK(contains(holder->process().errors(), "connected back to fetcher at 127.0.0.1:"));
}

TEST_CASE("reverse fallback 2: a transfer that looks for its hidden holder while our own reachability is checked waits for it") {
    // Deterministic: a restored transfer asks the tracker for holders the
    // moment the tracker welcomes peerd (TrackerLink::on_connected), a few
    // milliseconds, while the tracker's check of peerd's own address goes
    // through a forwarder that holds every connection 1.2 s (within the
    // check's 2 s deadline). Without the wait, the transfer would find every
    // holder unreachable and our own reachability unknown, and wait 1 s.
    TempDir dir;
    TrackerFixture tracker(trusting_advertise());
    auto hidden = start_peer("hidden", tracker.endpoint(), dir.path(), {{"--advertise", "127.0.0.2"}});
    const auto file = hidden->dir() / "hidden.bin";
    write_random(file, 3'000'000, 32);
    publish(*hidden, file, "hidden.bin");
    REQUIRE(settled_status(*hidden)["reachable"] == false);

    const auto port = free_port();
    Forwarder slow("127.0.0.3", port, std::chrono::milliseconds(1'200), /*every=*/true);
    PeerFixture::Options fetcher_options{{"--advertise", "127.0.0.3", "--max-download-rate", "500k"},
                                        "127.0.0.1:" + std::to_string(port)};
    auto fetcher = start_peer("fetcher", tracker.endpoint(), dir.path(), fetcher_options);
    REQUIRE(settled_status(*fetcher)["reachable"] == true);

    // A transfer under way by reverse connection, then peerd stopped.
    const auto out = fetcher->dir() / "hidden.bin";
    const auto started = fetcher->peerctl({"fetch", "hidden.bin", "-o", out.string(), "--detach"}, kDeadline);
    REQUIRE_MESSAGE(started.exit_code == 0, started.describe());
    json seen;
    const bool under_way = wait_until(
        [&] {
            seen = live_source(*fetcher, "hidden");
            return seen.is_object() && seen["via"] == "reverse" && seen["bytes"].get<std::uint64_t>() > 0;
        },
        kDeadline);
    REQUIRE_MESSAGE(under_way, seen.dump() << "\n" << fetcher->describe());
    REQUIRE(fetcher->stop() == 0);
    const auto checks = slow.forwarded();

    // Restarted: the restored transfer's look finds only the hidden holder
    // while the tracker's check is held; it waits for the verdict, then
    // fetches the rest by reverse connection.
    fetcher->start();
    const bool done = wait_until([&] { return first_transfer_done(*fetcher); }, kBigTransfer);
    REQUIRE_MESSAGE(done, fetcher->describe() << "\n" << hidden->describe());
    CHECK(file_difference(file, out).empty());
    CHECK(slow.forwarded() > checks);   // the tracker checked again, through the slow path
    const auto log = fetcher->process().errors();
    CHECK_MESSAGE(contains(log, "every holder is unreachable; waiting for the tracker's check of this peer's own "
                                "reachability"),
                  log);
    CHECK_FALSE(contains(log, "own reachability is not known"));
}

TEST_CASE("reverse fallback 3: an unreachable fetcher whose direct connect fails meets the holder at the relay") {
    TempDir dir;
    auto options = trusting_advertise();
    options.extra_args.insert(options.extra_args.end(), {"--relay-listen", "127.0.0.1:0"});
    TrackerFixture tracker(options);
    FarHolder far(tracker, dir.path(), 700'000, 33, {"--advertise", "127.0.0.3"});
    REQUIRE_FALSE(far.fetcher_reachable);
    fetch_ok(*far.fetcher, "far.bin", far.out);
    CHECK(file_difference(far.file, far.out).empty());
    const auto log = far.fetcher->process().errors();
    CHECK_MESSAGE(contains(log, "cannot connect to holder at its address; asking for a relay connection"), log);
    CHECK(contains(far.holder->process().errors(), "serving the relay for fetcher"));
    const auto stats = parse_json(tracker.trackerctl("--json", "stats").out);
    INFO(stats.dump());
    CHECK(stats["relay"]["circuits_opened"].get<std::uint64_t>() >= 1);
}

TEST_CASE("reverse fallback 4: an unreachable fetcher whose direct connect fails, with no relay, is told why and what would fix it") {
    TempDir dir;
    TrackerFixture tracker(trusting_advertise());
    FarHolder far(tracker, dir.path(), 300'000, 34, {"--advertise", "127.0.0.3"});
    REQUIRE_FALSE(far.fetcher_reachable);
    const auto r = fetch(*far.fetcher, {"far.bin", "-o", far.out.string()});
    INFO(r.describe());
    CHECK(r.exit_code == 1);
    CHECK(contains(r.err, "holder: cannot connect"));
    CHECK(contains(r.err, "no other way to it: this peer is unreachable too"));
    CHECK(contains(r.err, "trackerd --relay-listen"));
    CHECK_FALSE(fs::exists(far.out));

    // The kept transfer asks again with the backoff doubling (1, 2, 4 s):
    // holders found that fail at once do not restart it.
    const auto backed_off = [&] {
        return contains(far.fetcher->process().errors(), "; asking the tracker again in 4 s");
    };
    CHECK_MESSAGE(wait_until(backed_off, kDeadline), far.fetcher->process().errors());
    const auto log = far.fetcher->process().errors();
    CHECK(contains(log, "; asking the tracker again in 1 s"));
    CHECK(contains(log, "; asking the tracker again in 2 s"));
}
