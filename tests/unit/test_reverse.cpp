// tests/unit/test_reverse.cpp — the pure parts of reverse connections: the
// connect-back preface (proto/reverse.hpp) and the one-time token table
// (common/token_table.hpp) with an injected clock.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include <unistd.h>

#include "common/token_table.hpp"
#include "daemon/fetch/handed_sockets.hpp"
#include "daemon/reverse/expected_connect_backs.hpp"
#include "proto/messages.hpp"
#include "proto/reverse.hpp"

using namespace peershare;
using proto::PrefaceScan;

namespace {

const std::string kToken = "00112233445566778899aabbccddeeff";

struct Binding {
    std::string fetcher, holder, content;
};

}  // namespace

TEST_CASE("reverse tokens are 32 lowercase hex digits, new each time") {
    std::set<std::string> seen;
    for (int i = 0; i < 16; ++i) {
        const auto t = proto::random_reverse_token();
        CHECK(proto::valid_reverse_token(t));
        seen.insert(t);
    }
    CHECK(seen.size() == 16);
    CHECK_FALSE(proto::valid_reverse_token(""));
    CHECK_FALSE(proto::valid_reverse_token("00112233445566778899AABBCCDDEEFF"));
    CHECK_FALSE(proto::valid_reverse_token(kToken + "0"));
    CHECK(proto::reverse_preface(kToken) == "PEERSHARE-REVERSE " + kToken + "\r\n");
    CHECK(proto::reverse_preface(kToken).size() == proto::kReversePrefaceBytes);
}

TEST_CASE("the preface scan: HTTP passes, a preface in any split is found, a bad one is refused") {
    const auto preface = proto::reverse_preface(kToken);
    CHECK(proto::scan_preface("GET /v1/files/x HTTP/1.1\r\n").kind == PrefaceScan::Kind::http);
    CHECK(proto::scan_preface("G").kind == PrefaceScan::Kind::http);
    CHECK(proto::scan_preface("PEERSHARE-X").kind == PrefaceScan::Kind::http);
    CHECK(proto::scan_preface("").kind == PrefaceScan::Kind::incomplete);
    for (std::size_t n = 1; n < preface.size(); ++n) {
        CAPTURE(n);
        CHECK(proto::scan_preface(preface.substr(0, n)).kind == PrefaceScan::Kind::incomplete);
    }
    const auto whole = proto::scan_preface(preface);
    CHECK(whole.kind == PrefaceScan::Kind::preface);
    CHECK(whole.token == kToken);
    CHECK(whole.used == preface.size());
    // Bytes after it are the caller's to judge (a holder sends none).
    CHECK(proto::scan_preface(preface + "GET").used == preface.size());

    CHECK(proto::scan_preface("PEERSHARE-REVERSE abc\r\n").kind == PrefaceScan::Kind::bad);
    CHECK(proto::scan_preface("PEERSHARE-REVERSE " + std::string(32, 'G') + "\r\n").kind == PrefaceScan::Kind::bad);
    CHECK(proto::scan_preface("PEERSHARE-REVERSE " + kToken + "\n\n").kind == PrefaceScan::Kind::bad);
    CHECK(proto::scan_preface("PEERSHARE-REVERSE " + kToken + "0\r\n").kind == PrefaceScan::Kind::bad);
}

TEST_CASE("a token is good once, for its binding, until its deadline") {
    common::TokenTable<Binding> table(5'000, 4);
    REQUIRE(table.add(kToken, {"bob", "alice", "c1"}, 1'000));
    CHECK_FALSE(table.add(kToken, {"eve", "alice", "c1"}, 1'001));   // never bound twice
    auto first = table.redeem(kToken, 5'999);
    REQUIRE(first.binding);
    CHECK(first.binding->fetcher == "bob");
    CHECK(first.binding->holder == "alice");
    auto replay = table.redeem(kToken, 6'000);
    CHECK_FALSE(replay.binding);
    CHECK(replay.refusal == common::TokenRefusal::unknown);
    CHECK(table.size() == 0);

    auto forged = table.redeem("ffffffffffffffffffffffffffffffff", 1'000);
    CHECK_FALSE(forged.binding);
    CHECK(forged.refusal == common::TokenRefusal::unknown);
}

TEST_CASE("an expired token is refused as expired, and expired ones make room") {
    common::TokenTable<Binding> table(5'000, 2);
    REQUIRE(table.add("a", {}, 0));
    REQUIRE(table.add("b", {}, 100));
    CHECK_FALSE(table.add("c", {}, 4'000));   // full of live tokens
    auto late = table.redeem("a", 5'000);      // the deadline is exclusive
    CHECK_FALSE(late.binding);
    CHECK(late.refusal == common::TokenRefusal::expired);
    CHECK(table.add("c", {}, 5'100));          // "b" expired at 5'100: swept
    CHECK(table.size() == 1);
    CHECK(table.sweep(10'100) == 1);
    CHECK(table.size() == 0);
}

TEST_CASE("handed sockets: a relay source waits as long as it is given") {
    peerd::HandedSockets handed([] {}, 2, 16'000);
    CHECK(handed.take(0) == -1);
    CHECK_FALSE(handed.problem(peerd::kConnectBackWaitMs));
    CHECK_FALSE(handed.problem(15'999));
    CHECK(handed.problem(16'000)->find("within 16 s") != std::string::npos);
}

TEST_CASE("handed sockets: one ask at a time, bounded in number and in waiting time") {
    int asked = 0;
    peerd::HandedSockets handed([&] { ++asked; }, 2);
    CHECK(handed.take(0) == -1);          // nothing here: ask
    CHECK(asked == 1);
    CHECK(handed.take(10) == -1);         // one pending: no second ask
    CHECK(asked == 1);
    CHECK_FALSE(handed.problem(peerd::kConnectBackWaitMs - 1));
    CHECK(handed.problem(peerd::kConnectBackWaitMs)->find("did not connect back") != std::string::npos);
    const int fd = ::dup(0);
    REQUIRE(fd >= 0);
    CHECK(handed.give(common::UniqueFd(fd)));
    CHECK_FALSE(handed.problem(1'000'000));
    CHECK(handed.take(20) == fd);
    ::close(fd);
    CHECK(handed.take(30) == -1);         // the second ask
    CHECK(asked == 2);
    CHECK(handed.give(common::UniqueFd(::dup(0))));
    const common::UniqueFd second(handed.take(40));
    CHECK(second);
    CHECK(handed.take(50) == -1);         // no third ask
    CHECK(asked == 2);
    CHECK(handed.problem(50)->find("no more asked") != std::string::npos);
    handed.fail("refused by the tracker");
    CHECK(*handed.problem(60) == "refused by the tracker");
    CHECK_FALSE(handed.give(common::UniqueFd(::dup(0))));
}

TEST_CASE("reverse_request and connect_back: round trip, and every field checked") {
    const proto::ReverseRequest ask{"alice", kToken};
    auto back = proto::ReverseRequest::from_json(ask.to_json());
    REQUIRE(back);
    CHECK(back->holder == "alice");
    CHECK(back->token == kToken);
    CHECK_FALSE(proto::ReverseRequest::from_json({{"holder", "alice"}, {"token", "ABC"}}));
    CHECK_FALSE(proto::ReverseRequest::from_json({{"holder", "alice"}, {"token", std::string(32, 'A')}}));
    CHECK_FALSE(proto::ReverseRequest::from_json({{"holder", ""}, {"token", kToken}}));
    CHECK_FALSE(proto::ReverseRequest::from_json({{"token", kToken}}));

    const proto::ConnectBack offer{kToken, "10.0.0.5", 27011, "bob"};
    auto got = proto::ConnectBack::from_json(offer.to_json());
    REQUIRE(got);
    CHECK(got->token == kToken);
    CHECK(got->address == "10.0.0.5");
    CHECK(got->port == 27011);
    CHECK(got->peer == "bob");
    auto with = [&](const char* key, proto::json value) {
        auto j = offer.to_json();
        j[key] = std::move(value);
        return proto::ConnectBack::from_json(j);
    };
    CHECK_FALSE(with("port", 0));
    CHECK_FALSE(with("port", 65536));
    CHECK_FALSE(with("token", "00112233"));
    CHECK_FALSE(with("address", ""));
    CHECK_FALSE(with("peer", ""));
}

TEST_CASE("expected connect-backs: taken once, then refused: replayed, unknown, expired, source gone") {
    peerd::ExpectedConnectBacks expected;
    int asked = 0;
    auto source = std::make_shared<peerd::HandedSockets>([&] { ++asked; });
    const auto other = std::string(31, 'f') + "0";
    const auto late = std::string(31, 'e') + "0";
    const auto orphan = std::string(31, 'd') + "0";
    CHECK(expected.expect(kToken, {source, "alice", "ab12"}, 0));
    CHECK_FALSE(expected.expect(kToken, {source, "alice", "ab12"}, 0));   // never bound twice
    CHECK(expected.expect(late, {source, "alice", "ab12"}, 0));
    std::string why;

    // Good: the socket reaches the source that asked.
    const int fd = ::dup(0);
    REQUIRE(fd >= 0);
    CHECK(expected.take(kToken, common::UniqueFd(fd), 100, why));
    CHECK(source->received() == 1);
    const common::UniqueFd got(source->take(200));
    CHECK(got.get() == fd);

    // Replayed: the same token again is unknown.
    CHECK_FALSE(expected.take(kToken, common::UniqueFd(::dup(0)), 300, why));
    CHECK(why.find("unknown or already used") != std::string::npos);
    // Unknown: never expected.
    CHECK_FALSE(expected.take(other, common::UniqueFd(::dup(0)), 300, why));
    CHECK(why.find("unknown") != std::string::npos);
    // Expired: presented at its deadline.
    CHECK_FALSE(expected.take(late, common::UniqueFd(::dup(0)), peerd::kExpectedConnectBackMs, why));
    CHECK(why.find("expired") != std::string::npos);
    // Source gone: its fetch ended before the holder connected back.
    CHECK(expected.expect(orphan, {source, "alice", "ab12"}, 400));
    source.reset();
    CHECK_FALSE(expected.take(orphan, common::UniqueFd(::dup(0)), 500, why));
    CHECK(why.find("has ended") != std::string::npos);
    CHECK(expected.size() == 0);
    CHECK(source == nullptr);
    CHECK(asked == 0);   // the table never asks: the source does
}

TEST_CASE("expected connect-backs: a source that gave up refuses the socket; a forgotten token is unknown") {
    peerd::ExpectedConnectBacks expected;
    auto source = std::make_shared<peerd::HandedSockets>(nullptr);
    const auto second = std::string(31, 'c') + "0";
    REQUIRE(expected.expect(kToken, {source, "alice", "ab12"}, 0));
    REQUIRE(expected.expect(second, {source, "alice", "ab12"}, 0));
    source->fail("cannot have alice connect back: no");
    std::string why;
    CHECK_FALSE(expected.take(kToken, common::UniqueFd(::dup(0)), 10, why));
    CHECK(why.find("gave up") != std::string::npos);
    expected.forget(second, 20);
    CHECK_FALSE(expected.take(second, common::UniqueFd(::dup(0)), 30, why));
    CHECK(why.find("unknown") != std::string::npos);
}
