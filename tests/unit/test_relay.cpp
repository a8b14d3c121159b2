// tests/unit/test_relay.cpp — the relay's pure parts, no network: the token
// table (pairs, single use, expiry, the bound on pending pairs), the circuit
// cap and budget, and the preface and answer lines (proto/relay.hpp).
#include <doctest/doctest.h>

#include <string>
#include <variant>

#include "proto/relay.hpp"
#include "tracker/relay/admission.hpp"
#include "tracker/relay/tokens.hpp"

using namespace peershare;
using tracker::RelaySide;
using tracker::RelayTokens;

namespace {

// Distinct, well-formed tokens: 32 hex digits from a counter.
RelayTokens::MakeToken counter_tokens() {
    return [n = 0]() mutable {
        std::string digits = std::to_string(++n);
        return std::string(proto::kRelayTokenDigits - digits.size(), '0') + digits;
    };
}

}  // namespace

TEST_CASE("a pair's two tokens name one circuit, each side once") {
    RelayTokens tokens(counter_tokens(), 1'000, 8);
    auto ticket = tokens.issue("fetcher1", "holder1", 100);
    REQUIRE(ticket);
    CHECK(ticket->fetcher_token != ticket->holder_token);
    auto holder = tokens.claim(ticket->holder_token, 200);
    REQUIRE(holder);
    CHECK(holder->side == RelaySide::holder);
    CHECK(holder->fetcher == "fetcher1");
    CHECK(holder->holder == "holder1");
    auto fetcher = tokens.claim(ticket->fetcher_token, 300);
    REQUIRE(fetcher);
    CHECK(fetcher->side == RelaySide::fetcher);
    CHECK(fetcher->circuit == holder->circuit);
    // Used: a second claim finds nothing.
    CHECK_FALSE(tokens.claim(ticket->fetcher_token, 300));
    CHECK_FALSE(tokens.claim(ticket->holder_token, 300));
    CHECK(tokens.pending_tokens() == 0);
    // Another pair is another circuit.
    auto next = tokens.issue("fetcher1", "holder1", 400);
    REQUIRE(next);
    CHECK(next->circuit != ticket->circuit);
}

TEST_CASE("unknown and expired tokens are refused") {
    RelayTokens tokens(counter_tokens(), 1'000, 8);
    CHECK_FALSE(tokens.claim(std::string(32, 'a'), 0));
    auto ticket = tokens.issue("f", "h", 5'000);
    REQUIRE(ticket);
    CHECK(tokens.claim(ticket->holder_token, 5'999));   // just within
    CHECK_FALSE(tokens.claim(ticket->fetcher_token, 6'000));   // expired at issue + ttl
    auto later = tokens.issue("f", "h", 10'000);
    REQUIRE(later);
    tokens.expire(11'000);
    CHECK(tokens.pending_tokens() == 0);
}

TEST_CASE("pending pairs are bounded; expired ones make room") {
    RelayTokens tokens(counter_tokens(), 1'000, 2);
    REQUIRE(tokens.issue("a", "b", 0));
    REQUIRE(tokens.issue("a", "b", 0));
    auto third = tokens.issue("a", "b", 10);
    REQUIRE_FALSE(third);
    CHECK(third.error().code == proto::ErrorCode::busy);
    CHECK(tokens.issue("a", "b", 1'000));   // the first two expired
}

TEST_CASE("the circuit cap admits up to its maximum, then refuses until one closes") {
    tracker::CircuitAdmission admission(2);
    CHECK(admission.open());
    CHECK(admission.open());
    CHECK_FALSE(admission.open());
    CHECK(admission.active() == 2);
    admission.close();
    CHECK(admission.open());
}

TEST_CASE("a circuit's budget: bytes and lifetime") {
    tracker::RelayLimits limits;
    limits.circuit_bytes = 1'000;
    limits.circuit_seconds = 10;
    CHECK_FALSE(tracker::circuit_spent(limits, 999, 5'000, 14'999));
    auto bytes = tracker::circuit_spent(limits, 1'000, 5'000, 5'001);
    REQUIRE(bytes);
    CHECK(bytes->find("1000 bytes") != std::string::npos);
    auto lifetime = tracker::circuit_spent(limits, 0, 5'000, 15'000);
    REQUIRE(lifetime);
    CHECK(lifetime->find("10 s") != std::string::npos);
}

TEST_CASE("relay prefaces: parsed with what follows, bad ones said why") {
    const std::string token(32, 'f');
    const auto preface = proto::relay_preface(token);
    CHECK(preface == "PEERSHARE-RELAY/1 " + token + "\r\n");
    auto parsed = proto::parse_relay_preface(preface + "GET / HTTP/1.1\r\n");
    REQUIRE(std::holds_alternative<proto::RelayLine>(parsed));
    CHECK(std::get<proto::RelayLine>(parsed).text == token);
    CHECK(std::get<proto::RelayLine>(parsed).consumed == preface.size());

    CHECK(std::holds_alternative<proto::RelayIncomplete>(proto::parse_relay_preface("PEERSHARE-REL")));
    CHECK(std::holds_alternative<proto::RelayIncomplete>(proto::parse_relay_preface(preface.substr(0, 30))));
    // Not ours at the first differing byte, not after 256.
    CHECK(std::holds_alternative<proto::RelayBad>(proto::parse_relay_preface("GET / HTTP/1.1")));
    CHECK(std::holds_alternative<proto::RelayBad>(proto::parse_relay_preface("PEERSHARE-RELAY/1 ABC\r\n")));
    CHECK(std::holds_alternative<proto::RelayBad>(
        proto::parse_relay_preface("PEERSHARE-RELAY/1 " + std::string(31, 'a') + "\r\n")));
    CHECK(std::holds_alternative<proto::RelayBad>(
        proto::parse_relay_preface("PEERSHARE-RELAY/1 " + std::string(300, 'a'))));
}

TEST_CASE("relay answers: OK, and a refusal on one line") {
    auto ok = proto::parse_relay_answer(proto::relay_joined() + "HTTP/1.1 200 OK\r\n");
    REQUIRE(std::holds_alternative<proto::RelayLine>(ok));
    CHECK(std::get<proto::RelayLine>(ok).consumed == proto::relay_joined().size());
    const auto refusal = proto::relay_refused("the relay is full\r\n(64 circuits)");
    CHECK(refusal.find('\n') == refusal.size() - 1);
    auto refused = proto::parse_relay_answer(refusal);
    REQUIRE(std::holds_alternative<proto::RelayBad>(refused));
    CHECK(std::get<proto::RelayBad>(refused).why == "the relay refused: the relay is full  (64 circuits)");
    CHECK(proto::relay_refused(std::string(1000, 'x')).size() == proto::kMaxRelayLineBytes);
}
