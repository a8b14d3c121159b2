// tests/unit/test_reverse_request.cpp — the tracker's verdict on a
// reverse_request (tracker/reverse/reverse_request.hpp), on an Index without
// network: forwarded with the fetcher's verified address and upload port, or
// refused (no reach check, itself, unknown holder, fetcher not reachable or
// not yet checked); and the per-session bound on a fake clock.
#include <doctest/doctest.h>

#include <string>
#include <variant>

#include "tracker/reverse/reverse_request.hpp"

using namespace peershare;
using tracker::ForwardConnectBack;
using tracker::Index;
using tracker::PeerId;
using tracker::PeerRecord;

namespace {

const std::string kToken = "00112233445566778899aabbccddeeff";

PeerId add(Index& index, const std::string& name, const std::string& address, std::uint16_t port) {
    return index.add_peer(PeerRecord{name, std::string(64, 'k'), address, port, 0, {}, {}, {}});
}

proto::Error refusal(const tracker::ReverseVerdict& v) {
    REQUIRE(std::holds_alternative<proto::Error>(v));
    return std::get<proto::Error>(v);
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

}  // namespace

TEST_CASE("a reverse_request from a reachable fetcher sends the holder the fetcher's verified address") {
    Index index(100);
    const PeerId bob = add(index, "bob", "10.0.0.5", 27011);
    const PeerId alice = add(index, "alice", "192.168.1.9", 27012);
    index.set_reach(bob, true, "answered at 10.0.0.5:27011");

    const auto v = tracker::judge_reverse_request(true, index, bob, {"alice", kToken});
    REQUIRE(std::holds_alternative<ForwardConnectBack>(v));
    const auto& f = std::get<ForwardConnectBack>(v);
    CHECK(f.holder == alice);
    CHECK(f.message.token == kToken);
    CHECK(f.message.address == "10.0.0.5");
    CHECK(f.message.port == 27011);
    CHECK(f.message.peer == "bob");
}

TEST_CASE("a reverse_request is refused with the error the protocol names") {
    Index index(100);
    const PeerId bob = add(index, "bob", "10.0.0.5", 27011);
    add(index, "alice", "192.168.1.9", 27012);

    SUBCASE("a tracker that does not check reachability") {
        index.set_reach(bob, true, "answered");
        const auto e = refusal(tracker::judge_reverse_request(false, index, bob, {"alice", kToken}));
        CHECK(e.code == proto::ErrorCode::unavailable);
        CHECK(contains(e.message, "--no-reach-check"));
    }
    SUBCASE("a fetcher naming itself, or nobody") {
        index.set_reach(bob, true, "answered");
        CHECK(refusal(tracker::judge_reverse_request(true, index, bob, {"bob", kToken})).code ==
              proto::ErrorCode::bad_request);
        const auto e = refusal(tracker::judge_reverse_request(true, index, bob, {"carol", kToken}));
        CHECK(e.code == proto::ErrorCode::not_found);
        CHECK(contains(e.message, "carol"));
    }
    SUBCASE("a fetcher whose check failed: its reason, and the relay as the way out") {
        index.set_reach(bob, false, "connection refused at 10.0.0.5:27011");
        const auto e = refusal(tracker::judge_reverse_request(true, index, bob, {"alice", kToken}));
        CHECK(e.code == proto::ErrorCode::unavailable);
        CHECK(contains(e.message, "bob"));
        CHECK(contains(e.message, "not reachable (connection refused at 10.0.0.5:27011)"));
        CHECK(contains(e.message, "alice cannot connect back"));
        CHECK(contains(e.message, "--relay-listen"));
    }
    SUBCASE("a fetcher whose check still runs") {
        index.set_reach(bob, std::nullopt, "checking");
        const auto e = refusal(tracker::judge_reverse_request(true, index, bob, {"alice", kToken}));
        CHECK(e.code == proto::ErrorCode::unavailable);
        CHECK(contains(e.message, "still running"));
    }
}

TEST_CASE("a session may send 16 reverse_requests at once, then 16 a second") {
    std::uint64_t now = 1'000'000'000;
    tracker::ReverseRequestBudget budget([&] { return now; });
    for (int i = 0; i < 16; ++i) CHECK(budget.spend());
    CHECK_FALSE(budget.spend());
    now += 1'000'000'000 / 16;   // one request's worth of time
    CHECK(budget.spend());
    CHECK_FALSE(budget.spend());
    now += 10'000'000'000;       // a long pause refills only up to the burst
    int granted = 0;
    for (int i = 0; i < 40; ++i) granted += budget.spend() ? 1 : 0;
    CHECK(granted == 16);
}
