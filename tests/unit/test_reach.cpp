// tests/unit/test_reach.cpp — the pure parts of the reachability check
// (proto/reach.hpp): nonces, the request path, the proof, the verdict on an
// answer; and the reachability messages.
#include <doctest/doctest.h>

#include <set>
#include <vector>

#include "proto/messages.hpp"
#include "proto/reach.hpp"

using namespace peershare::proto;

namespace {

const std::string kKey(64, 'b');
const std::string kNonce = "0123456789abcdef0123456789abcdef";

std::string ok_response(std::string_view body) {
    return "HTTP/1.1 200 OK\r\nServer: peershare\r\nContent-Type: text/plain\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + std::string(body);
}

}  // namespace

TEST_CASE("reach nonces are 32 lowercase hex digits, new each time, and only they make a reach path") {
    std::set<std::string> seen;
    for (int i = 0; i < 16; ++i) {
        const auto n = random_reach_nonce();
        CHECK(n.size() == kReachNonceDigits);
        CHECK(parse_reach_target(reach_path(n)) == n);
        seen.insert(n);
    }
    CHECK(seen.size() == 16);
    CHECK(reach_path(kNonce) == "/v1/reach/" + kNonce);
    for (const auto& bad : std::vector<std::string>{"/v1/reach/", "/v1/reach/" + kNonce + "0", "/v1/reach/" + kNonce.substr(1),
                                  "/v1/reach/0123456789ABCDEF0123456789abcdef", "/v1/files/" + kNonce,
                                  "/v1/reach/" + kNonce + "/", "/v1/reach/../" + kNonce.substr(3)}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_reach_target(bad).has_value());
    }
}

TEST_CASE("the reach proof is HMAC-SHA256 (RFC 4231 test case 2) keyed with the peer key's text") {
    // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?".
    CHECK(reach_proof("Jefe", "what do ya want for nothing?") ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    CHECK(reach_proof(kKey, kNonce).size() == 64);
    CHECK(reach_proof(kKey, kNonce) != reach_proof(std::string(64, 'c'), kNonce));
    CHECK(reach_proof(kKey, kNonce) != reach_proof(kKey, random_reach_nonce()));
}

TEST_CASE("the reach request asks for the path, with Host (brackets for IPv6) and Connection: close") {
    CHECK(reach_request("127.0.0.1", 7000, kNonce) ==
          "GET /v1/reach/" + kNonce + " HTTP/1.1\r\nHost: 127.0.0.1:7000\r\nConnection: close\r\n"
          "User-Agent: trackerd-reach\r\n\r\n");
    CHECK(reach_request("::1", 7000, kNonce).find("Host: [::1]:7000\r\n") != std::string::npos);
}

TEST_CASE("the verdict on an answer: only a 200 with the right proof is reachable") {
    const auto proof = reach_proof(kKey, kNonce);
    CHECK_FALSE(reach_problem(ok_response(proof + "\n"), proof).has_value());
    // Until the close: no Content-Length.
    CHECK_FALSE(reach_problem("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + proof + "\n", proof).has_value());
    CHECK(reach_problem(ok_response(reach_proof(std::string(64, 'c'), kNonce) + "\n"), proof)->find("wrong proof") !=
          std::string::npos);
    CHECK(reach_problem("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", proof)->find("HTTP 404") !=
          std::string::npos);
    CHECK(reach_problem("SSH-2.0-OpenSSH_9.2\r\n", proof)->find("not an HTTP response") != std::string::npos);
    CHECK(reach_problem("", proof)->find("closed without an answer") != std::string::npos);
    // Cut short in the headers.
    CHECK(reach_problem("HTTP/1.1 200 OK\r\nContent-", proof).has_value());
}

TEST_CASE("reachability and reach_check round trip; bad fields are refused") {
    const Reachability r{false, "connection refused at 127.0.0.2:7000", "127.0.0.2", 7000};
    auto env = parse_envelope(std::string_view(make_frame(r, 3)).substr(4));
    REQUIRE(env.ok());
    auto back = expect<Reachability>(*env);
    REQUIRE(back.ok());
    CHECK(back->reachable == false);
    CHECK(back->reason == r.reason);
    CHECK(back->address == "127.0.0.2");
    CHECK(back->port == 7000);
    CHECK_FALSE(Reachability::from_json({{"reason", "x"}, {"address", "a"}, {"port", 1}}).ok());
    CHECK_FALSE(Reachability::from_json({{"reachable", "yes"}, {"reason", "x"}, {"address", "a"}, {"port", 1}}).ok());
    CHECK(ReachCheck::from_json(json::object()).ok());

    PeerInfo p{"alice", "127.0.0.1", 7000, 2, 1, std::nullopt, "checking"};
    CHECK(p.to_json()["reachable"].is_null());
    auto parsed = PeerInfo::from_json(p.to_json());
    REQUIRE(parsed.ok());
    CHECK_FALSE(parsed->reachable.has_value());
    p.reachable = true;
    CHECK(PeerInfo::from_json(p.to_json())->reachable == true);
}
