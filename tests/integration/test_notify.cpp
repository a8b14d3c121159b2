// tests/integration/test_notify.cpp — the daemons' side of systemd's
// Type=notify (issue 4): with NOTIFY_SOCKET set, as systemd sets it, trackerd
// and peerd send READY=1 once they serve, RELOADING=1 then READY=1 around a
// SIGHUP reload, and STOPPING=1 on SIGTERM. The test plays systemd: a
// datagram socket of its own, whose path the daemons inherit.
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/integration/harness.hpp"

using namespace peershare::test;
using namespace std::chrono_literals;

namespace {

// systemd's end of NOTIFY_SOCKET: a bound datagram socket; the variable is set
// only while a daemon is being started, so nothing else inherits it.
class NotifySocket {
public:
    explicit NotifySocket(const fs::path& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        REQUIRE(path.string().size() < sizeof addr.sun_path);
        path.string().copy(addr.sun_path, sizeof addr.sun_path - 1);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    }
    ~NotifySocket() { ::close(fd_); }
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;

    // Runs `start` with NOTIFY_SOCKET pointing here.
    template <class F>
    auto started(F start) {
        ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
        struct Unset {
            ~Unset() { ::unsetenv("NOTIFY_SOCKET"); }
        } unset;
        return start();
    }

    // The lines of the datagrams that arrive within `deadline` until one of
    // them is `wanted` (then returned with it last); all of them otherwise.
    std::vector<std::string> until(const std::string& wanted, Millis deadline = 10s) {
        std::vector<std::string> seen;
        const auto end = std::chrono::steady_clock::now() + deadline;
        while (std::chrono::steady_clock::now() < end) {
            pollfd p{fd_, POLLIN, 0};
            const auto left = std::chrono::duration_cast<Millis>(end - std::chrono::steady_clock::now());
            if (::poll(&p, 1, static_cast<int>(std::max<Millis::rep>(1, left.count()))) <= 0) continue;
            char buf[4096];
            const auto n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) continue;
            std::string datagram(buf, static_cast<std::size_t>(n));
            for (std::size_t at = 0; at < datagram.size();) {   // one assignment per line
                auto nl = datagram.find('\n', at);
                if (nl == std::string::npos) nl = datagram.size();
                seen.push_back(datagram.substr(at, nl - at));
                at = nl + 1;
            }
            for (const auto& line : seen) {
                if (line == wanted) return seen;
            }
        }
        return seen;
    }

private:
    fs::path path_;
    int fd_ = -1;
};

bool ends_with(const std::vector<std::string>& lines, const std::string& last) {
    return !lines.empty() && lines.back() == last;
}

}  // namespace

TEST_CASE("trackerd and peerd tell systemd when they are ready, reloading and stopping") {
    TempDir dir;
    NotifySocket systemd(dir / "notify.sock");

    auto tracker = systemd.started([] { return std::make_unique<TrackerFixture>(); });
    auto lines = systemd.until("READY=1");
    CHECK(ends_with(lines, "READY=1"));
    CHECK(tracker->trackerctl("stats").exit_code == 0);   // ready means serving

    auto peer = systemd.started([&] { return start_peer("host1", tracker->endpoint(), dir.path()); });
    lines = systemd.until("READY=1");
    CHECK(ends_with(lines, "READY=1"));
    CHECK(peer->peerctl("status").exit_code == 0);

    SUBCASE("trackerd") {
        tracker->process().signal(SIGHUP);
        lines = systemd.until("READY=1");
        INFO(tracker->process().describe());
        REQUIRE(lines.size() >= 2);
        CHECK(lines.front() == "RELOADING=1");
        CHECK(lines.back() == "READY=1");
        CHECK(tracker->trackerctl("stats").exit_code == 0);   // still serving after the reload

        CHECK(tracker->stop() == 0);
        CHECK(ends_with(systemd.until("STOPPING=1"), "STOPPING=1"));
    }
    SUBCASE("peerd") {
        peer->process().signal(SIGHUP);
        lines = systemd.until("READY=1");
        INFO(peer->describe());
        REQUIRE(lines.size() >= 2);
        CHECK(lines.front() == "RELOADING=1");
        CHECK(lines.back() == "READY=1");
        CHECK(peer->peerctl("status").exit_code == 0);

        CHECK(peer->stop() == 0);
        CHECK(ends_with(systemd.until("STOPPING=1"), "STOPPING=1"));
    }
}
