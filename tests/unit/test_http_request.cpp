// tests/unit/test_http_request.cpp — proto::HttpRequestReader on literal
// bytes: any split parses the same, limits answer 431 and 413, garbage 400,
// a version other than 1.0/1.1 505;
// percent-decoding and query values.
#include <doctest/doctest.h>

#include <string>

#include "proto/http_request.hpp"

using namespace peershare::proto;

TEST_CASE("a request split at every byte reads the same as whole") {
    const std::string text =
        "POST /api/v1/peers/a%20b/ping?x=1 HTTP/1.1\r\nHost: h\r\nX-Peershare-Token: abc\r\n"
        "Content-Length: 3\r\n\r\nhey"
        "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n";
    for (std::size_t split = 0; split <= text.size(); ++split) {
        HttpRequestReader reader;
        std::string_view rest = text;
        rest.remove_prefix(reader.feed(rest.substr(0, split)));
        if (split < text.size()) CHECK(rest.size() == text.size() - split);
        CHECK(reader.feed(text.substr(split)) == text.size() - split);
        auto first = reader.pop();
        REQUIRE(first);
        CHECK(first->method == "POST");
        CHECK(first->path == "/api/v1/peers/a%20b/ping");
        CHECK(first->query == "x=1");
        CHECK(first->token == "abc");
        CHECK(first->body == "hey");
        CHECK(first->keep_alive);
        auto second = reader.pop();
        REQUIRE(second);
        CHECK(second->method == "GET");
        CHECK(second->path == "/metrics");
        CHECK_FALSE(second->keep_alive);
        CHECK_FALSE(reader.pop());
        CHECK(reader.error_status() == 0);
    }
}

TEST_CASE("headers past the limit are refused with 431, a body past it with 413") {
    HttpRequestReader reader({1024, 16, 4});
    reader.feed("GET / HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n");
    CHECK(reader.error_status() == 431);
    CHECK_FALSE(reader.pop());

    HttpRequestReader small({1024, 16, 4});
    small.feed("POST /x HTTP/1.1\r\nContent-Length: 17\r\n\r\n");
    CHECK(small.error_status() == 413);

    HttpRequestReader chunked({1024, 16, 4});
    chunked.feed("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" + std::string(32, 'b') + "\r\n0\r\n\r\n");
    CHECK(chunked.error_status() == 413);
}

TEST_CASE("garbage is a 400 and the reader stays failed") {
    HttpRequestReader reader;
    reader.feed("\x16\x03\x01\x02\x00garbage\r\n\r\n");
    CHECK(reader.error_status() == 400);
    CHECK(reader.feed("GET / HTTP/1.1\r\n\r\n") == 0);
    CHECK_FALSE(reader.pop());
}

TEST_CASE("an HTTP version other than 1.0 and 1.1 is a 505 (RFC 9110 §15.6.6)") {
    for (const char* version : {"HTTP/9.9", "HTTP/2.0", "HTTP/1.2", "HTTP/0.9"}) {
        CAPTURE(version);
        HttpRequestReader reader;
        reader.feed(std::string("GET / ") + version + "\r\nHost: 127.0.0.1\r\n\r\n");
        CHECK(reader.error_status() == 505);
        CHECK_FALSE(reader.pop());
    }
    for (const char* version : {"HTTP/1.0", "HTTP/1.1"}) {
        CAPTURE(version);
        HttpRequestReader reader;
        reader.feed(std::string("GET / ") + version + "\r\nHost: 127.0.0.1\r\n\r\n");
        CHECK(reader.error_status() == 0);
        CHECK(reader.pop());
    }
}

TEST_CASE("past max_queued requests the reader takes no more bytes until one is popped") {
    HttpRequestReader reader({8192, 16, 2});
    const std::string one = "GET /a HTTP/1.1\r\n\r\n";
    const std::string three = one + one + one;
    const auto taken = reader.feed(three);
    CHECK(taken == 2 * one.size());
    CHECK(reader.pop());
    CHECK(reader.feed(std::string_view(three).substr(taken)) == one.size());
    CHECK(reader.pop());
    CHECK(reader.pop());
    CHECK_FALSE(reader.pop());
}

TEST_CASE("percent-decoding of paths and query values") {
    CHECK(percent_decode("a%20b+c", false) == "a b+c");
    CHECK(percent_decode("a%20b+c", true) == "a b c");
    CHECK(percent_decode("%C3%A9t%C3%A9", false) == "\xC3\xA9t\xC3\xA9");
    CHECK_FALSE(percent_decode("%4", false));
    CHECK_FALSE(percent_decode("%zz", false));
    CHECK_FALSE(percent_decode("%00", false));
    CHECK(query_value("a=1&text=hello+world&text=2", "text") == "hello world");
    CHECK(query_value("flag&text=", "text") == "");
    CHECK_FALSE(query_value("a=1", "text"));
}

TEST_CASE("the Host header is kept, and loopback_host tells loopback names from others") {
    HttpRequestReader reader;
    reader.feed("GET / HTTP/1.1\r\nhOsT: 127.0.0.1:9998\r\n\r\n");
    auto request = reader.pop();
    REQUIRE(request);
    CHECK(request->host == "127.0.0.1:9998");

    for (const char* host : {"127.0.0.1", "127.0.0.1:9998", "127.9.8.7:1", "localhost", "LocalHost:9998", "[::1]",
                             "[::1]:9998", "::1", "[::ffff:127.0.0.1]:9998"}) {
        CAPTURE(host);
        CHECK(loopback_host(host));
    }
    for (const char* host : {"", "attacker.example", "attacker.example:9998", "localhost.attacker.example",
                             "127.0.0.1.nip.io:9998", "10.0.0.1:9998", "0.0.0.0", "[::]:9998", "[::2]", "[::1",
                             "[::1]x", "128.0.0.1", "127.0.0.1:9998:1", "::ffff:10.0.0.1"}) {
        CAPTURE(host);
        CHECK_FALSE(loopback_host(host));
    }
}
