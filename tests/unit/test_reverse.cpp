// tests/unit/test_reverse.cpp — the pure parts of reverse connections: the
// connect-back preface (proto/reverse.hpp) and the one-time token table
// (common/token_table.hpp) with an injected clock.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include <unistd.h>

#include "common/token_table.hpp"
#include "daemon/fetch/handed_sockets.hpp"
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
