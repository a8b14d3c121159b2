// tests/unit/test_endpoint.cpp — "ADDR:PORT" parsing and printing, and IPs as
// text (common/net.hpp). No sockets are opened.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>

#include <string>
#include <vector>

#include "common/net.hpp"

using peershare::common::Endpoint;
using peershare::common::ip_to_string;
using peershare::common::parse_endpoint;
using peershare::common::refused_host;
using peershare::common::to_sockaddr;
using peershare::common::to_string;
using peershare::proto::ErrorCode;

namespace {

std::string why(const peershare::proto::Result<Endpoint>& r) {
    return r.ok() ? std::string("ok") : r.error().message;
}

Endpoint parsed(const std::string& text, bool allow_names = false) {
    auto e = parse_endpoint(text, allow_names);
    REQUIRE_MESSAGE(e.ok(), text << ": " << why(e));
    return *e;
}

void rejected(const std::string& text, bool allow_names = false) {
    INFO("'" << text << "'" << std::string(allow_names ? " with names allowed" : ""));
    auto e = parse_endpoint(text, allow_names);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().code == ErrorCode::bad_request);
    CHECK_FALSE(e.error().message.empty());
    if (!text.empty())
        CHECK(e.error().message.find(text) != std::string::npos);  // says which input
}

sockaddr_storage address_of(const std::string& host) {
    auto addr = to_sockaddr(Endpoint{host, 80});
    REQUIRE_MESSAGE(addr.ok(), host);
    return *addr;
}

}  // namespace

TEST_CASE("IPv4 and bracketed IPv6 endpoints parse into host and port") {
    struct Case {
        const char* text;
        const char* host;
        std::uint16_t port;
    };
    for (const auto& c : std::vector<Case>{
             {"0.0.0.0:9999", "0.0.0.0", 9999},
             {"127.0.0.1:0", "127.0.0.1", 0},
             {"192.168.1.20:65535", "192.168.1.20", 65535},
             {"[::1]:80", "::1", 80},
             {"[::]:9999", "::", 9999},
             {"[2001:db8::5]:1", "2001:db8::5", 1},
             {"[::ffff:10.0.0.1]:7000", "::ffff:10.0.0.1", 7000},
         }) {
        INFO(std::string(c.text));
        const auto e = parsed(c.text);
        CHECK(e.host == c.host);
        CHECK(e.port == c.port);
    }
}

TEST_CASE("malformed endpoints are rejected with a message naming them") {
    SUBCASE("missing port") {
        rejected("127.0.0.1");
        rejected("127.0.0.1:");
        rejected("[::1]");
        rejected("[::1]:");
    }
    SUBCASE("missing address") {
        rejected(":80");
        rejected("[]:80");
        rejected("");
        rejected(":");
    }
    SUBCASE("port out of range or not a number") {
        rejected("127.0.0.1:65536");
        rejected("127.0.0.1:99999999999999999999");
        rejected("127.0.0.1:-1");
        rejected("127.0.0.1:+80");
        rejected("127.0.0.1: 80");
        rejected("127.0.0.1:80 ");
        rejected("127.0.0.1:8o");
        rejected("127.0.0.1:0x50");
        rejected("[::1]:65536");
    }
    SUBCASE("a name where an IP is required") {
        rejected("abc:1");
        rejected("localhost:9999");
    }
    SUBCASE("IPv6 without brackets") {
        rejected("::1:80");
        rejected("2001:db8::5:80");
    }
    SUBCASE("bad brackets") {
        rejected("[::1]80");
        rejected("[::1:80");
        rejected("[::1]]:80");
        rejected("[[::1]]:80");
    }
    SUBCASE("not an IP address") {
        rejected("256.0.0.1:80");
        rejected("1.2.3:80");
        rejected("[::g]:80");
        rejected("[not-an-ip]:80");
    }
}

TEST_CASE("with names allowed, a host name may stand for the address") {
    SUBCASE("accepted") {
        const auto e = parsed("localhost:9999", true);
        CHECK(e.host == "localhost");
        CHECK(e.port == 9999);
        const auto f = parsed("tracker.example.org:1", true);
        CHECK(f.host == "tracker.example.org");
        CHECK(f.port == 1);
    }
    SUBCASE("IP literals still parse") {
        CHECK(parsed("10.0.0.1:80", true).host == "10.0.0.1");
        CHECK(parsed("[::1]:80", true).host == "::1");
    }
    SUBCASE("everything else is still rejected") {
        rejected("localhost", true);
        rejected("localhost:65536", true);
        rejected(":9999", true);
        rejected("bad host:1", true);
        rejected("a_b:1", true);
        rejected("host/x:1", true);
        rejected("::1:80", true);
        rejected("[::1]80", true);
        rejected("[::1", true);
        rejected(std::string(300, 'h') + ":1", true);
    }
}

TEST_CASE("to_string prints an endpoint the way parse_endpoint reads it") {
    SUBCASE("IPv4 plain, IPv6 in brackets") {
        CHECK(to_string(Endpoint{"127.0.0.1", 9999}) == "127.0.0.1:9999");
        CHECK(to_string(Endpoint{"::1", 80}) == "[::1]:80");
        CHECK(to_string(Endpoint{"2001:db8::5", 0}) == "[2001:db8::5]:0");
        CHECK(to_string(Endpoint{"localhost", 65535}) == "localhost:65535");
    }
    SUBCASE("round trip") {
        for (const char* text : {"0.0.0.0:9999", "[::1]:80", "127.0.0.1:0", "[fe80::1]:65535"}) {
            INFO(std::string(text));
            CHECK(to_string(parsed(text)) == text);
        }
    }
}

TEST_CASE("to_sockaddr builds the address family and port of an IP literal") {
    SUBCASE("IPv4") {
        auto addr = to_sockaddr(Endpoint{"10.1.2.3", 9999});
        REQUIRE(addr.ok());
        REQUIRE(addr->ss_family == AF_INET);
        const auto* in = reinterpret_cast<const sockaddr_in*>(&*addr);
        CHECK(ntohs(in->sin_port) == 9999);
        CHECK(ntohl(in->sin_addr.s_addr) == 0x0a010203u);
    }
    SUBCASE("IPv6") {
        auto addr = to_sockaddr(Endpoint{"::1", 80});
        REQUIRE(addr.ok());
        REQUIRE(addr->ss_family == AF_INET6);
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&*addr);
        CHECK(ntohs(in6->sin6_port) == 80);
        CHECK(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
    }
    SUBCASE("a name is not an IP") {
        auto addr = to_sockaddr(Endpoint{"localhost", 80});
        REQUIRE_FALSE(addr.ok());
        CHECK(addr.error().code == ErrorCode::bad_request);
        CHECK(addr.error().message.find("localhost") != std::string::npos);
    }
}

TEST_CASE("ip_to_string prints IPs, and IPv4-mapped IPv6 as IPv4") {
    CHECK(ip_to_string(address_of("127.0.0.1")) == "127.0.0.1");
    CHECK(ip_to_string(address_of("0.0.0.0")) == "0.0.0.0");
    CHECK(ip_to_string(address_of("::1")) == "::1");
    CHECK(ip_to_string(address_of("2001:db8::5")) == "2001:db8::5");
    CHECK(ip_to_string(address_of("::ffff:10.1.2.3")) == "10.1.2.3");
    sockaddr_storage unknown{};
    unknown.ss_family = AF_UNIX;
    CHECK(ip_to_string(unknown).empty());
}

TEST_CASE("refused_host: never unspecified, multicast or broadcast; names are checked once resolved") {
    CHECK_FALSE(refused_host("localhost"));
    CHECK_FALSE(refused_host("bob.example.org"));
    CHECK_FALSE(refused_host("127.0.0.1"));
    CHECK_FALSE(refused_host("192.168.1.255"));  // a subnet's broadcast cannot be known here
    CHECK_FALSE(refused_host("::1"));
    CHECK_FALSE(refused_host("2001:db8::1"));
    CHECK(refused_host("0.0.0.0") == "0.0.0.0 is an unspecified address");
    CHECK(refused_host("224.0.0.1") == "224.0.0.1 is a multicast address");
    CHECK(refused_host("239.255.255.250") == "239.255.255.250 is a multicast address");
    CHECK(refused_host("255.255.255.255") == "255.255.255.255 is a broadcast address");
    CHECK(refused_host("::") == ":: is an unspecified address");
    CHECK(refused_host("ff02::1") == "ff02::1 is a multicast address");
    CHECK(refused_host("::ffff:224.0.0.1") == "::ffff:224.0.0.1 is a multicast address");
    CHECK_FALSE(refused_host("::ffff:127.0.0.1"));
}
