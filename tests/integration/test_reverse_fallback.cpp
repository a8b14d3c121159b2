// tests/integration/test_reverse_fallback.cpp — reverse connections when the
// tracker's view is not the fetcher's (issue 11, docs/protocol.md §10.7 step
// 4a): a holder the tracker found reachable whose address then stops
// answering is fetched from by connecting back once the direct connect
// failed; and a fetch of hidden holders made while the tracker is still
// checking the fetcher's own reachability waits for the verdict instead of
// failing. Real trackerd, peerd, peerctl on loopback. A peer listens on
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
// 60 s), the first one only after `first_delay` (a slow path) — until stop(),
// after which FROM:port refuses connections.
class Forwarder {
public:
    Forwarder(const std::string& from, std::uint16_t port, std::chrono::milliseconds first_delay = {})
        : listener_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)), port_(port), first_delay_(first_delay) {
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
            const auto delay = forwarded_++ == 0 ? first_delay_ : std::chrono::milliseconds{};
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
    std::chrono::milliseconds first_delay_;
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

}  // namespace

TEST_CASE("reverse fallback 1: a holder the tracker reached but the fetcher cannot is fetched from by connecting back") {
    TempDir dir;
    TrackerFixture tracker(trusting_advertise());
    const auto port = free_port();
    // Its advertised address answers while the tracker checks it...
    Forwarder path("127.0.0.2", port);
    PeerFixture::Options holder_options{{"--advertise", "127.0.0.2"}, "127.0.0.1:" + std::to_string(port)};
    auto holder = start_peer("holder", tracker.endpoint(), dir.path(), holder_options);
    // Slowed down so that the running transfer is seen with its source.
    auto fetcher = start_peer("fetcher", tracker.endpoint(), dir.path(), {{"--max-download-rate", "2M"}});
    const auto file = holder->dir() / "far.bin";
    write_random(file, 3'000'000, 31);
    publish(*holder, file, "far.bin");
    REQUIRE(settled_status(*holder)["reachable"] == true);
    REQUIRE(settled_status(*fetcher)["reachable"] == true);
    CHECK(path.forwarded() >= 1);
    // ... and then refuses: the tracker still lists it reachable.
    path.stop();

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
    const bool done = wait_until(
        [&] {
            const auto list = parse_json(fetcher->peerctl("--json", "transfers").out);
            return !list["transfers"].empty() && list["transfers"][0]["state"] == "done";
        },
        kBigTransfer);
    REQUIRE_MESSAGE(done, fetcher->describe() << "\n" << holder->describe());
    CHECK(file_difference(file, out).empty());
    const auto log = fetcher->process().errors();
    CHECK(contains(log, "cannot connect to holder at its address; asking for a reverse connection"));
    CHECK(contains(holder->process().errors(), "connected back to fetcher at 127.0.0.1:"));
}

TEST_CASE("reverse fallback 2: a fetch of hidden holders made while our own reachability is checked waits for it") {
    TempDir dir;
    TrackerFixture tracker(trusting_advertise());
    auto hidden = start_peer("hidden", tracker.endpoint(), dir.path(), {{"--advertise", "127.0.0.2"}});
    const auto file = hidden->dir() / "hidden.bin";
    write_random(file, 600'000, 32);
    publish(*hidden, file, "hidden.bin");
    REQUIRE(settled_status(*hidden)["reachable"] == false);

    // The fetcher's advertised address answers, but the tracker's check of
    // it takes over a second (within the check's 2 s deadline).
    const auto port = free_port();
    Forwarder slow("127.0.0.3", port, std::chrono::milliseconds(1'200));
    PeerFixture::Options fetcher_options{{"--advertise", "127.0.0.3"}, "127.0.0.1:" + std::to_string(port)};
    auto fetcher = start_peer("fetcher", tracker.endpoint(), dir.path(), fetcher_options);
    json st;
    const bool checking = wait_until(
        [&] {
            st = parse_json(fetcher->peerctl("--json", "status").out);
            return st["connected"] == true;
        },
        kDeadline);
    REQUIRE_MESSAGE(checking, st.dump());
    REQUIRE_MESSAGE(st["reach_reason"] == "checking", st.dump());   // the verdict is not in yet

    const auto out = fetcher->dir() / "hidden.bin";
    const auto r = fetch(*fetcher, {"hidden.bin", "-o", out.string()});
    REQUIRE_MESSAGE(r.exit_code == 0, r.describe() << "\n" << fetcher->describe());
    CHECK(file_difference(file, out).empty());
    CHECK(settled_status(*fetcher)["reachable"] == true);
    CHECK(contains(fetcher->process().errors(), "waiting for the tracker's check of this peer's own reachability"));
}
