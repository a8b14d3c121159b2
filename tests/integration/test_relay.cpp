// tests/integration/test_relay.cpp — trackerd's relay (--relay-listen; issue
// 11, docs/protocol.md §7.11 and §15) with raw sockets: in-process peer
// sessions get a token pair (relay_request → relay_ticket, relay_offer down
// the holder's session), two raw connections present them and exchange bytes
// both ways; a reused or unknown token is refused and closed; the circuit cap
// refuses the next side; a circuit's rate, and the total rate over two
// circuits, hold within a 3x margin; stats,
// /metrics-backed counts and the `relayed` event say what happened; a tracker
// without a relay answers relay_request with `unavailable`. A holder peerd
// given a relay_offer dials the relay and serves a GET through it (the
// fetcher's side driven by hand: a raw preface and HTTP request).
#include <doctest/doctest.h>

#include <string>

#include "harness.hpp"
#include "peer_helpers.hpp"
#include "proto/relay.hpp"

using namespace peershare;
using namespace peershare::test;

namespace {

// The relay_offer that comes down a holder's session (other frames skipped).
proto::RelayTicket wait_offer(common::Client& holder) {
    for (int i = 0; i < 10; ++i) {
        auto frame = holder.next(kDeadline);
        REQUIRE_MESSAGE(frame, "no relay_offer: " << frame.error().message);
        if (frame->type == proto::RelayOffer::kType) {
            auto offer = proto::RelayOffer::from_json(frame->body);
            REQUIRE_MESSAGE(offer, offer.error().message);
            return offer->ticket;
        }
    }
    FAIL("ten frames and no relay_offer");
    return {};
}

struct Pair {
    proto::RelayTicket fetcher;   // the ticket the fetcher got
    proto::RelayTicket holder;    // the offer the holder got
};

Pair ask_relay(common::Client& fetcher, common::Client& holder, const std::string& holder_name) {
    auto ticket = fetcher.request<proto::RelayTicket>(proto::RelayRequest{holder_name}, kDeadline);
    REQUIRE_MESSAGE(ticket, ticket.error().message);
    return {*ticket, wait_offer(holder)};
}

// A raw connection to the relay that has sent its preface.
std::unique_ptr<RawConnection> present(const proto::RelayTicket& t) {
    CHECK(t.relay_address == "127.0.0.1");
    auto raw = std::make_unique<RawConnection>(t.relay_port);
    REQUIRE(raw->send_all(proto::relay_preface(t.token)));
    return raw;
}

void expect_joined(RawConnection& raw) {
    auto line = raw.read_bytes(proto::relay_joined().size(), kDeadline);
    REQUIRE(line);
    CHECK(*line == proto::relay_joined());
}

void expect_refused(RawConnection& raw, std::string_view why) {
    const auto answer = raw.read_until_closed(kDeadline);
    CHECK_MESSAGE(answer.starts_with("PEERSHARE-RELAY/1 REFUSED "), answer);
    CHECK_MESSAGE(contains(answer, why), answer);
}

}  // namespace

TEST_CASE("relay: matching tokens are joined; bytes go both ways; bad and reused tokens, the cap, the rate") {
    TrackerFixture::Options options;
    options.extra_args = {"--relay-listen", "127.0.0.1:0", "--relay-max-circuits", "2", "--relay-circuit-rate",
                          "200k", "--relay-rate", "0"};
    TrackerFixture tracker(options);
    auto fetcher = tracker.connect_peer("fetcher", 7001);
    auto holder = tracker.connect_peer("holder", 7002);

    auto a = ask_relay(*fetcher, *holder, "holder");
    CHECK(a.fetcher.peer == "holder");
    CHECK(a.holder.peer == "fetcher");
    CHECK(a.fetcher.relay_port == a.holder.relay_port);
    CHECK(a.fetcher.token != a.holder.token);

    // The fetcher's request may come with its preface: it waits for the holder.
    auto f = std::make_unique<RawConnection>(a.fetcher.relay_port);
    REQUIRE(f->send_all(proto::relay_preface(a.fetcher.token) + "GET /v1/x HTTP/1.1\r\n\r\n"));
    auto h = present(a.holder);
    expect_joined(*f);
    expect_joined(*h);
    auto request = h->read_bytes(22, kDeadline);
    REQUIRE(request);
    CHECK(*request == "GET /v1/x HTTP/1.1\r\n\r\n");
    REQUIRE(h->send_all("HTTP/1.1 200 OK\r\n"));
    auto reply = f->read_bytes(17, kDeadline);
    REQUIRE(reply);
    CHECK(*reply == "HTTP/1.1 200 OK\r\n");

    SUBCASE("a used token and an unknown one are refused and closed") {
        auto reused = present(a.fetcher);
        expect_refused(*reused, "unknown, used or expired token");
        auto unknown = std::make_unique<RawConnection>(a.fetcher.relay_port);
        REQUIRE(unknown->send_all(proto::relay_preface(std::string(32, '0'))));
        expect_refused(*unknown, "unknown, used or expired token");
        auto garbage = std::make_unique<RawConnection>(a.fetcher.relay_port);
        REQUIRE(garbage->send_all("GET / HTTP/1.1\r\n\r\n"));
        expect_refused(*garbage, "not a relay preface");
        // The circuit still works.
        REQUIRE(f->send_all("ping"));
        CHECK(h->read_bytes(4, kDeadline) == std::optional<std::string>("ping"));
    }

    SUBCASE("the circuit cap: a waiting side holds a place; the next side is refused") {
        auto b = ask_relay(*fetcher, *holder, "holder");
        auto waiting = present(b.holder);   // the second circuit's place
        auto c = ask_relay(*fetcher, *holder, "holder");
        auto refused = present(c.holder);
        expect_refused(*refused, "the relay is full (at most 2 circuits at once)");
        // Closing the first circuit makes room: b's partner joins.
        f.reset();
        h.reset();
        bool joined = false;
        std::unique_ptr<RawConnection> partner;
        auto d = ask_relay(*fetcher, *holder, "holder");
        CHECK(wait_until(
            [&] {
                auto stats = parse_json(tracker.trackerctl("stats", "--json").out);
                return stats["relay"]["circuits_open"] == 1;
            },
            kDeadline));
        partner = present(b.fetcher);
        expect_joined(*partner);
        expect_joined(*waiting);
        joined = true;
        CHECK(joined);
        auto late = present(d.holder);   // 1 of 2 open: d waits, it is not refused
        CHECK_FALSE(late->closed_within(Millis{200}));
    }

    SUBCASE("a circuit's rate holds (200 kB/s, within 3x)") {
        const std::string payload(300'000, 'r');
        const auto began = Clock::now();
        REQUIRE(h->send_all(payload));
        auto got = f->read_bytes(payload.size(), 20s);
        const double seconds = std::chrono::duration<double>(Clock::now() - began).count();
        REQUIRE(got);
        CHECK(*got == payload);
        // (300 kB - one 20 kB burst) / 200 kB/s = 1.4 s; a third of that at least.
        CHECK_MESSAGE(seconds > 1.4 / 3, "300 kB through a 200 kB/s circuit in " << seconds << " s");
    }

    SUBCASE("stats, /metrics and events count it") {
        auto unknown = std::make_unique<RawConnection>(a.fetcher.relay_port);
        REQUIRE(unknown->send_all(proto::relay_preface(std::string(32, '1'))));
        expect_refused(*unknown, "token");
        nlohmann::json relay;
        CHECK(wait_until(
            [&] {
                relay = parse_json(tracker.trackerctl("stats", "--json").out)["relay"];
                return relay["circuits_refused"] == 1;
            },
            kDeadline));
        CHECK(relay["circuits_opened"] == 1);
        CHECK(relay["circuits_open"] == 1);
        CHECK(relay["bytes_relayed"].get<std::uint64_t>() >= 22 + 17);
        const auto text = tracker.trackerctl("stats").out;
        CHECK_MESSAGE(contains(text, "1 open, 1 opened, 1 refused"), text);
        CHECK(wait_until([&] { return contains(tracker.trackerctl("events").out, "relayed"); }, kDeadline));
        const auto events = tracker.trackerctl("events").out;
        CHECK_MESSAGE(contains(events, "from holder through the relay"), events);
        auto metrics = run({"/usr/bin/curl", "-sf", "http://127.0.0.1:" + std::to_string(tracker.http_port()) + "/metrics"});
        CHECK(metric_sample(metrics.out, "peershare_tracker_relay_circuits_total{result=\"opened\"}") == 1);
        CHECK(metric_sample(metrics.out, "peershare_tracker_relay_circuits_total{result=\"bad_token\"}") == 1);
        CHECK(promtool_check(metrics.out, tracker.dir().path()).exit_code == 0);
    }
}

TEST_CASE("relay: the total rate holds over all circuits (200 kB/s shared by two, within 3x)") {
    TrackerFixture::Options options;
    options.extra_args = {"--relay-listen", "127.0.0.1:0", "--relay-circuit-rate", "0", "--relay-rate", "200k"};
    TrackerFixture tracker(options);
    auto fetcher = tracker.connect_peer("fetcher", 7001);
    auto holder = tracker.connect_peer("holder", 7002);
    std::vector<std::unique_ptr<RawConnection>> fetchers, holders;
    for (int i = 0; i < 2; ++i) {
        auto pair = ask_relay(*fetcher, *holder, "holder");
        fetchers.push_back(present(pair.fetcher));
        holders.push_back(present(pair.holder));
        expect_joined(*fetchers.back());
        expect_joined(*holders.back());
    }
    const std::string payload(150'000, 't');
    const auto began = Clock::now();
    for (auto& h : holders) REQUIRE(h->send_all(payload));
    for (auto& f : fetchers) {
        auto got = f->read_bytes(payload.size(), 20s);
        REQUIRE(got);
        CHECK(*got == payload);
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - began).count();
    // Each circuit is unlimited; together they share 200 kB/s: (300 kB - one
    // 20 kB burst) / 200 kB/s = 1.4 s; a third of that at least.
    CHECK_MESSAGE(seconds > 1.4 / 3, "2 x 150 kB through a relay limited to 200 kB/s in total in " << seconds << " s");
}

TEST_CASE("relay: without --relay-listen a relay_request is unavailable, and asks name no one") {
    TrackerFixture tracker;
    auto fetcher = tracker.connect_peer("fetcher", 7001);
    auto holder = tracker.connect_peer("holder", 7002);
    auto ticket = fetcher->request<proto::RelayTicket>(proto::RelayRequest{"holder"}, kDeadline);
    REQUIRE_FALSE(ticket);
    CHECK(ticket.error().code == proto::ErrorCode::unavailable);
    CHECK(contains(ticket.error().message, "--relay-listen"));
    CHECK_FALSE(parse_json(tracker.trackerctl("stats", "--json").out).contains("relay"));
}

TEST_CASE("relay: a ticket for a peer that is not there is not_found") {
    TrackerFixture::Options options;
    options.extra_args = {"--relay-listen", "127.0.0.1:0"};
    TrackerFixture tracker(options);
    auto fetcher = tracker.connect_peer("fetcher", 7001);
    auto ticket = fetcher->request<proto::RelayTicket>(proto::RelayRequest{"nobody"}, kDeadline);
    REQUIRE_FALSE(ticket);
    CHECK(ticket.error().code == proto::ErrorCode::not_found);
    auto self = fetcher->request<proto::RelayTicket>(proto::RelayRequest{"fetcher"}, kDeadline);
    REQUIRE_FALSE(self);
    CHECK(self.error().code == proto::ErrorCode::bad_request);
}

TEST_CASE("relay: a holder peerd given a relay_offer serves a GET through the relay") {
    Swarm swarm({"holder"}, [] {
        TrackerFixture::Options o;
        o.extra_args = {"--relay-listen", "127.0.0.1:0"};
        return o;
    }());
    auto& holder = swarm["holder"];
    const auto file = swarm.dir() / "served.bin";
    write_random(file, 300'000, 11);
    const auto id = publish(holder, file, "served.bin")["id"].get<std::string>();
    auto fetcher = swarm.tracker().connect_peer("fetcher", 7001);

    auto ticket = fetcher->request<proto::RelayTicket>(proto::RelayRequest{"holder"}, kDeadline);
    REQUIRE_MESSAGE(ticket, (ticket ? "" : ticket.error().message));
    RawConnection raw(ticket->relay_port);
    REQUIRE(raw.send_all(proto::relay_preface(ticket->token) + "GET /v1/files/" + id +
                         " HTTP/1.1\r\nHost: holder\r\nConnection: close\r\n\r\n"));
    const auto joined = raw.read_bytes(proto::relay_joined().size(), kDeadline);
    REQUIRE_MESSAGE(joined, holder.describe());
    CHECK(*joined == proto::relay_joined());
    const auto response = raw.read_until_closed(kDeadline);
    CHECK_MESSAGE(response.starts_with("HTTP/1.1 200 "), response.substr(0, 200));
    const auto body_at = response.find("\r\n\r\n");
    REQUIRE(body_at != std::string::npos);
    CHECK(response.size() - body_at - 4 == 300'000);
    CHECK(response.substr(body_at + 4) == read_bytes(file));
    CHECK(wait_until([&] { return contains(holder.describe(), "serving the relay for fetcher"); }, kDeadline));
}
