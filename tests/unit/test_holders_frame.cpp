// tests/unit/test_holders_frame.cpp — the holders reply written directly
// (proto::make_holders_frame) is byte for byte what make_frame writes through
// nlohmann, for every kind of string a reply can carry.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "proto/messages.hpp"

using namespace peershare::proto;

namespace {

Holder holder(std::string peer, std::string address) {
    return {std::move(peer), std::move(address), 6881, 123'456'789, std::string(64, 'a'),
            256u << 10, 1'732'630'000};
}

void check_same(const Holders& reply, std::optional<std::uint64_t> id) {
    CHECK(make_holders_frame(reply, id) == make_frame(reply, id));
}

}  // namespace

TEST_CASE("the directly written holders frame is make_frame's, byte for byte") {
    Holders reply{"report.pdf", {holder("alpha", "127.0.0.1"), holder("beta", "::1")}};
    SUBCASE("with and without a request id") {
        check_same(reply, 7);
        check_same(reply, std::nullopt);
        check_same(reply, std::numeric_limits<std::uint64_t>::max());
    }
    SUBCASE("no holders") { check_same(Holders{"nobody-has-it", {}}, 1); }
    SUBCASE("names that need escapes") {
        reply.name = "a \"quoted\" \\ back\\slash";
        reply.holders[0].peer = "tab\there\nnew\rline\bback\fform";
        reply.holders[1].peer = std::string("ctl\x01\x1f\x7f", 6);
        check_same(reply, 3);
    }
    SUBCASE("UTF-8, valid and not") {
        reply.name = "résumé — 日本語 🎉";
        reply.holders[0].peer = "bad \xff\xfe utf-8 \xc3";
        check_same(reply, 4);
    }
    SUBCASE("extreme numbers") {
        reply.holders[0].size = 0;
        reply.holders[0].published_at = -1;
        reply.holders[1].size = std::numeric_limits<std::uint64_t>::max();
        reply.holders[1].port = 65535;
        check_same(reply, 0);
    }
    SUBCASE("partial holders, marked, among complete ones") {
        reply.holders[1].pieces_held = 12;
        reply.holders.push_back(holder("gamma", "10.0.0.3"));
        reply.holders.back().pieces_held = 1;
        check_same(reply, 5);
    }
    SUBCASE("reachable, unreachable and not yet checked holders") {
        reply.holders[0].reachable = true;
        reply.holders[1].reachable = false;
        reply.holders[1].pieces_held = 3;
        reply.holders.push_back(holder("gamma", "10.0.0.3"));
        check_same(reply, 6);
    }
    SUBCASE("many holders") {
        for (int i = 0; i < 500; ++i) reply.holders.push_back(holder("peer-" + std::to_string(i), "10.0.0.1"));
        check_same(reply, 99);
    }
}
