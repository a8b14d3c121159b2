// tests/integration/test_holder_deadline.cpp — every request a fetch makes of
// a holder has a deadline from its start that no byte extends (issue 9, fault
// 1, as the review R9 reproduced it): a fake holder, announced by fake_peer
// to a trackerd run with --no-reach-check, answers every HTTP request with a
// 200 whose body it trickles one byte every 100 ms. The fetcher, peerd with
// --holder-deadline 1, must drop it for missing the deadline within seconds
// rather than wait for as long as it trickles. Real trackerd, peerd, peerctl
// on loopback.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "tests/integration/harness.hpp"
#include "tests/integration/peer_helpers.hpp"

using namespace peershare;
using namespace peershare::test;
using nlohmann::json;

namespace {

// An owned socket descriptor, closed with it.
struct Socket {
    explicit Socket(int fd) : fd(fd) {}
    ~Socket() {
        if (fd >= 0) ::close(fd);
    }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    int fd;
};

// An HTTP server on 127.0.0.1 that answers each request with a 200 of
// 100000 bytes, sent one byte every 100 ms (at most 600 bytes per
// connection: bounded even if nobody closes). Stops in its destructor.
class TricklingServer {
public:
    TricklingServer() {
        REQUIRE(listener_.fd >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener_.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(listener_.fd, 16) == 0);
        socklen_t len = sizeof a;
        REQUIRE(::getsockname(listener_.fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~TricklingServer() {
        stop_ = true;
        thread_.join();
    }
    TricklingServer(const TricklingServer&) = delete;
    TricklingServer& operator=(const TricklingServer&) = delete;

    std::uint16_t port() const { return port_; }
    int connections() const { return connections_; }

private:
    void serve() {
        std::vector<std::thread> handlers;
        while (!stop_) {
            pollfd p{listener_.fd, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            const int c = ::accept4(listener_.fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) continue;
            ++connections_;
            handlers.emplace_back([this, c] { trickle(c); });
        }
        for (auto& h : handlers) h.join();
    }
    void trickle(int fd) {
        const Socket socket(fd);
        const int c = socket.fd;
        char request[4096];
        pollfd p{c, POLLIN, 0};
        if (::poll(&p, 1, 2'000) > 0) (void)::recv(c, request, sizeof request, 0);
        const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
        (void)::send(c, head.data(), head.size(), MSG_NOSIGNAL);
        for (int i = 0; i < 600 && !stop_; ++i) {
            if (::send(c, "x", 1, MSG_NOSIGNAL) != 1) break;   // the fetcher closed it
            pollfd w{c, POLLRDHUP, 0};
            if (::poll(&w, 1, 100) > 0) break;   // closed by the fetcher
        }
    }

    Socket listener_{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> connections_{0};
    std::thread thread_;
};

}  // namespace

TEST_CASE("holder deadline: a holder that trickles its piece list is dropped at the deadline, not waited for") {
    TempDir dir;
    TrackerFixture::Options o;
    o.extra_args = {"--no-reach-check"};   // the fake holder's address is taken as given
    TrackerFixture tracker(o);
    TricklingServer slow;
    const std::string id(64, 'c');
    auto holder = tracker.start_peer(
        "slowholder", {"--port", std::to_string(slow.port()), "--publish", "slow.bin:1000:" + id});
    auto fetcher = start_peer("fetcher", tracker.endpoint(), dir.path(), {{"--holder-deadline", "1"}});
    Swarm::wait_connected(*fetcher);

    const auto out = fetcher->dir() / "slow.bin";
    // The fetch goes on waiting for a holder (as with no holder left), so it
    // is started in the background and its transfer watched.
    auto follow = fetcher->start_peerctl({"fetch", "slow.bin", "-o", out.string()});
    json transfer;
    const bool dropped = wait_until(
        [&] {
            const auto r = fetcher->peerctl("--json", "transfers");
            if (r.exit_code != 0) return false;
            const auto j = json::parse(r.out, nullptr, false);
            if (!j.is_object() || !j.contains("transfers") || j["transfers"].empty()) return false;
            transfer = j["transfers"][0];
            return contains(transfer.dump(), "deadline of 1 s");
        },
        Millis{20'000});   // the deadline, lookups and a margin: far less than the 60 s the trickle lasts
    INFO(transfer.dump());
    INFO(fetcher->describe());
    CHECK(dropped);
    CHECK(slow.connections() >= 1);
    CHECK_FALSE(fs::exists(out));
}
