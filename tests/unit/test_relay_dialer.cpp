// tests/unit/test_relay_dialer.cpp — peerd's relay dialer
// (daemon/reverse/relay_dialer.hpp) against the real relay
// (tracker/relay/relay_server.hpp, its own thread) on loopback: two dials with
// a pair's tokens are joined and bytes go both ways; bytes the other side sent
// right behind the relay's OK are not eaten by the dialer; a REFUSED reason
// reaches the caller; a partner that never comes ends at the dial's deadline;
// bad tokens and addresses are refused at once.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "common/uv.hpp"
#include "daemon/reverse/relay_dialer.hpp"
#include "proto/relay.hpp"
#include "tracker/relay/relay_server.hpp"

using namespace peershare;
using peerd::RelayDialer;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::chrono::milliseconds kWait{10'000};

// Runs the loop until `done` or `limit` passes; a ticking timer makes each
// UV_RUN_ONCE return.
bool run_until(common::Loop& loop, const std::function<bool()>& done, std::chrono::milliseconds limit = kWait) {
    common::Timer tick(loop.get());
    uv_timer_start(tick.get(), [](uv_timer_t*) {}, 10, 10);
    const auto until = Clock::now() + limit;
    while (!done() && Clock::now() < until) uv_run(loop.get(), UV_RUN_ONCE);
    return done();
}

struct Outcome {
    std::optional<common::UniqueFd> socket;   // set once done
    std::string why;
    bool done() const { return socket.has_value(); }
};

RelayDialer::DoneFn into(Outcome& out) {
    return [&out](common::UniqueFd s, const std::string& why) {
        out.socket = std::move(s);
        out.why = why;
    };
}

bool send_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, 5'000) != 1) return false;
        const auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) continue;
        if (n <= 0) return false;
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// Exactly n bytes from a non-blocking socket, or what came before the deadline.
std::string read_n(int fd, std::size_t n) {
    std::string got;
    const auto until = Clock::now() + kWait;
    char buf[4096];
    while (got.size() < n && Clock::now() < until) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) != 1) continue;
        const auto r = ::recv(fd, buf, std::min(sizeof buf, n - got.size()), 0);
        if (r <= 0) break;
        got.append(buf, static_cast<std::size_t>(r));
    }
    return got;
}

// A blocking TCP connection to 127.0.0.1:port, or (port 0) a port nobody
// listens on: bound, then closed.
common::UniqueFd loopback_socket(std::uint16_t port, std::uint16_t* free = nullptr) {
    common::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    at.sin_port = htons(port);
    if (free) {
        REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&at), sizeof at) == 0);
        socklen_t len = sizeof at;
        REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&at), &len) == 0);
        *free = ntohs(at.sin_port);
        return {};
    }
    REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&at), sizeof at) == 0);
    return fd;
}

struct Relay {
    Relay() {
        auto started = server.start({"127.0.0.1", 0});
        REQUIRE_MESSAGE(started, (started ? "" : started.error().message));
    }
    common::Endpoint at() const { return {"127.0.0.1", server.port()}; }
    tracker::RelayServer server{tracker::RelayLimits{}};
};

}  // namespace

TEST_CASE("relay dialer: both sides joined; bytes both ways, nothing eaten past OK") {
    Relay relay;
    auto pair = relay.server.issue("fetcher", "holder");
    REQUIRE(pair);
    common::Loop loop;
    RelayDialer dialer(loop.get());

    SUBCASE("two dials") {
        Outcome fetcher, holder;
        REQUIRE(dialer.dial(relay.at(), pair->fetcher_token, into(fetcher)));
        REQUIRE(dialer.dial(relay.at(), pair->holder_token, into(holder)));
        CHECK(dialer.in_flight() == 2);
        REQUIRE(run_until(loop, [&] { return fetcher.done() && holder.done(); }));
        REQUIRE_MESSAGE(*fetcher.socket, fetcher.why);
        REQUIRE_MESSAGE(*holder.socket, holder.why);
        CHECK(dialer.in_flight() == 0);
        const std::string request = "GET /v1/files/x HTTP/1.1\r\n\r\n";
        REQUIRE(send_all(fetcher.socket->get(), request));
        CHECK(read_n(holder.socket->get(), request.size()) == request);
        const std::string reply(100'000, 'z');
        REQUIRE(send_all(holder.socket->get(), reply));
        CHECK(read_n(fetcher.socket->get(), reply.size()) == reply);
    }
    SUBCASE("the other side's request right behind the OK stays on the socket") {
        // The fetcher by hand: its request comes with its preface, so the
        // relay copies it to the holder at once after the OK.
        const std::string request = "GET /v1/files/y HTTP/1.1\r\n\r\n";
        auto fetcher = loopback_socket(relay.server.port());
        REQUIRE(send_all(fetcher.get(), proto::relay_preface(pair->fetcher_token) + request));
        Outcome holder;
        REQUIRE(dialer.dial(relay.at(), pair->holder_token, into(holder)));
        REQUIRE(run_until(loop, [&] { return holder.done(); }));
        REQUIRE_MESSAGE(*holder.socket, holder.why);
        CHECK(read_n(holder.socket->get(), request.size()) == request);
        CHECK(read_n(fetcher.get(), proto::relay_joined().size()) == proto::relay_joined());
    }
}

TEST_CASE("relay dialer: a refusal's reason, a partner that never comes, bad input") {
    Relay relay;
    common::Loop loop;

    SUBCASE("an unknown token: the relay's reason") {
        RelayDialer dialer(loop.get());
        Outcome out;
        REQUIRE(dialer.dial(relay.at(), std::string(32, '7'), into(out)));
        REQUIRE(run_until(loop, [&] { return out.done(); }));
        CHECK_FALSE(*out.socket);
        CHECK_MESSAGE(out.why.starts_with("the relay refused: unknown, used or expired token"), out.why);
    }
    SUBCASE("the partner never comes: the dial's deadline") {
        RelayDialer dialer(loop.get(), 300);
        auto pair = relay.server.issue("fetcher", "holder");
        REQUIRE(pair);
        Outcome out;
        REQUIRE(dialer.dial(relay.at(), pair->holder_token, into(out)));
        REQUIRE(run_until(loop, [&] { return out.done(); }));
        CHECK_FALSE(*out.socket);
        CHECK(out.why == "no answer from the relay at 127.0.0.1:" + std::to_string(relay.server.port()) +
                             " within 300 ms");
    }
    SUBCASE("nobody listening: the connect error") {
        RelayDialer dialer(loop.get());
        Outcome out;
        std::uint16_t port = 0;
        loopback_socket(0, &port);
        REQUIRE(dialer.dial({"127.0.0.1", port}, std::string(32, '7'), into(out)));
        REQUIRE(run_until(loop, [&] { return out.done(); }));
        CHECK_FALSE(*out.socket);
        CHECK(out.why == "connection refused at 127.0.0.1:" + std::to_string(port));
    }
    SUBCASE("refused at once: a bad token, a name, a multicast address, too many dials") {
        RelayDialer dialer(loop.get());
        Outcome out;
        CHECK(dialer.dial(relay.at(), "nope", into(out)).error().code == proto::ErrorCode::bad_request);
        CHECK(dialer.dial({"relay.example", 9997}, std::string(32, '7'), into(out)).error().code ==
              proto::ErrorCode::bad_request);
        CHECK(dialer.dial({"224.0.0.1", 9997}, std::string(32, '7'), into(out)).error().code ==
              proto::ErrorCode::bad_request);
        std::vector<Outcome> many(peerd::kMaxRelayDials);
        for (auto& o : many) REQUIRE(dialer.dial(relay.at(), std::string(32, '8'), into(o)));
        CHECK(dialer.dial(relay.at(), std::string(32, '8'), into(out)).error().code == proto::ErrorCode::busy);
        dialer.abandon();   // closed, never called back
        CHECK(dialer.in_flight() == 0);
        run_until(loop, [] { return false; }, std::chrono::milliseconds{50});
        for (const auto& o : many) CHECK_FALSE(o.done());
    }
}
