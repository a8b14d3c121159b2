// tests/integration/test_relay_peer.cpp — the fetcher's side of the relay in
// peerd (daemon/reverse/relay_peer.hpp, make_relay_ask) against a real
// trackerd --relay-listen: an in-process TrackerLink and RelayDialer on a
// loop of the test's own; the holder is a raw session plus a raw connection
// to the relay. A relay source's ask gets a ticket, dials, and hands the
// joined socket to its HandedSockets; bytes go both ways. Asking for a peer
// that is not there fails the source with the tracker's reason.
#include <doctest/doctest.h>

#include <poll.h>
#include <sys/socket.h>

#include <functional>
#include <memory>

#include "common/log.hpp"
#include "common/uv.hpp"
#include "daemon/catalog.hpp"
#include "daemon/fetch/handed_sockets.hpp"
#include "daemon/reverse/relay_dialer.hpp"
#include "daemon/reverse/relay_peer.hpp"
#include "daemon/tracker_link.hpp"
#include "harness.hpp"
#include "proto/relay.hpp"

using namespace peershare;
using namespace peershare::test;

namespace {

// Runs the loop until `done` or the deadline; a ticking timer makes each
// UV_RUN_ONCE return.
bool run_until(common::Loop& loop, const std::function<bool()>& done) {
    common::Timer tick(loop.get());
    uv_timer_start(tick.get(), [](uv_timer_t*) {}, 10, 10);
    const auto until = Clock::now() + kDeadline;
    while (!done() && Clock::now() < until) uv_run(loop.get(), UV_RUN_ONCE);
    return done();
}

// The fetcher: a TrackerLink and a RelayDialer on the test's loop.
struct Fetcher {
    explicit Fetcher(TrackerFixture& tracker)
        : link(loop.get(), log, {{"127.0.0.1", tracker.port()}, "fetcher", hex64("key of fetcher"), 7001, {}},
               catalog),
          dialer(loop.get()) {
        link.start();
        REQUIRE(run_until(loop, [&] { return link.connected(); }));
    }
    ~Fetcher() { link.stop(); }
    common::Loop loop;
    common::Log log{"fetcher", common::LogLevel::error};
    peerd::Catalog catalog;
    peerd::TrackerLink link;
    peerd::RelayDialer dialer;
};

// A relay source as peerd makes one: its ask first, the HandedSockets after.
std::shared_ptr<peerd::HandedSockets> relay_source(Fetcher& f, const std::string& holder) {
    auto source = std::make_shared<std::weak_ptr<peerd::HandedSockets>>();
    auto sockets = std::make_shared<peerd::HandedSockets>(peerd::make_relay_ask(f.link, f.dialer, holder, source));
    *source = sockets;
    return sockets;
}

}  // namespace

TEST_CASE("relay, fetcher side: an ask gets a ticket, dials, and hands over the joined socket") {
    TrackerFixture::Options options;
    options.extra_args = {"--relay-listen", "127.0.0.1:0"};
    TrackerFixture tracker(options);
    auto holder = tracker.connect_peer("holder", 7002);
    Fetcher f(tracker);

    auto sockets = relay_source(f, "holder");
    CHECK(sockets->take(uv_now(f.loop.get())) == -1);   // none yet: one ask made
    CHECK(sockets->asks() == 1);
    REQUIRE(run_until(f.loop, [&] { return f.dialer.in_flight() == 1 || sockets->problem(uv_now(f.loop.get())); }));
    REQUIRE_FALSE(sockets->problem(uv_now(f.loop.get())));

    // The holder's side, by hand: its offer, its preface.
    std::optional<proto::RelayTicket> offer;
    for (int i = 0; i < 10 && !offer; ++i) {
        auto frame = holder->next(kDeadline);
        REQUIRE(frame);
        if (frame->type == proto::RelayOffer::kType) offer = proto::RelayOffer::from_json(frame->body)->ticket;
    }
    REQUIRE(offer);
    CHECK(offer->peer == "fetcher");
    RawConnection raw(offer->relay_port);
    REQUIRE(raw.send_all(proto::relay_preface(offer->token)));

    REQUIRE(run_until(f.loop, [&] { return sockets->received() == 1 || sockets->problem(uv_now(f.loop.get())); }));
    REQUIRE_MESSAGE(sockets->received() == 1, sockets->problem(uv_now(f.loop.get())).value_or("no problem"));
    common::UniqueFd socket(sockets->take(uv_now(f.loop.get())));
    REQUIRE(socket);
    const std::string request = "GET /v1/files/x HTTP/1.1\r\n\r\n";
    REQUIRE(::send(socket.get(), request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
    CHECK(raw.read_bytes(proto::relay_joined().size(), kDeadline) == std::optional(proto::relay_joined()));
    CHECK(raw.read_bytes(request.size(), kDeadline) == std::optional(request));
    REQUIRE(raw.send_all("HTTP/1.1 200 OK\r\n"));
    pollfd p{socket.get(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 10'000) == 1);
    char buf[64];
    const auto n = ::recv(socket.get(), buf, sizeof buf, 0);
    CHECK(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0) == "HTTP/1.1 200 OK\r\n");
}

TEST_CASE("relay, fetcher side: the tracker's refusal fails the source with its reason") {
    TrackerFixture::Options options;
    options.extra_args = {"--relay-listen", "127.0.0.1:0"};
    TrackerFixture tracker(options);
    Fetcher f(tracker);
    auto sockets = relay_source(f, "nobody");
    CHECK(sockets->take(uv_now(f.loop.get())) == -1);
    REQUIRE(run_until(f.loop, [&] { return sockets->problem(uv_now(f.loop.get())).has_value(); }));
    CHECK(*sockets->problem(uv_now(f.loop.get())) == "cannot reach nobody through the relay: no live peer named 'nobody'");
    CHECK(f.dialer.in_flight() == 0);
}
