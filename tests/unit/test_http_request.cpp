// tests/unit/test_http_request.cpp — proto::HttpRequestReader on literal
// bytes: any split parses the same, limits answer 431 and 413, garbage 400,
// a version other than 1.0/1.1 505;
// percent-decoding and query values.
#include <doctest/doctest.h>

#include <string>
#include <vector>

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

// ---- what the upload server (daemon/upload_server.cpp) relies on ---------------

namespace {

// The upload server's limits: GET and HEAD only, bodies dropped, 8 pipelined.
HttpReaderLimits upload_limits() { return {8 * 1024, 0, 8, false}; }

// Feeds `text` whole and returns the reader's requests and error.
struct Read {
    std::vector<HttpRequest> requests;
    int error = 0;
};
Read read_all(std::string_view text, HttpReaderLimits limits = upload_limits()) {
    HttpRequestReader reader(limits);
    Read out;
    for (int round = 0; round < 1000 && !text.empty(); ++round) {
        const auto taken = reader.feed(text);
        text.remove_prefix(taken);
        while (auto r = reader.pop()) out.requests.push_back(std::move(*r));
        if (reader.error_status()) break;
        if (taken == 0) break;
    }
    while (auto r = reader.pop()) out.requests.push_back(std::move(*r));
    out.error = reader.error_status();
    return out;
}

}  // namespace

TEST_CASE("pipelined requests past the queue come out in order, each whole") {
    std::string text;
    for (int i = 0; i < 20; ++i) text += "GET /v1/files/" + std::to_string(i) + " HTTP/1.1\r\nRange: bytes=" +
                                         std::to_string(i) + "-\r\n\r\n";
    const auto read = read_all(text);
    CHECK(read.error == 0);
    REQUIRE(read.requests.size() == 20);
    for (int i = 0; i < 20; ++i) {
        CHECK(read.requests[i].path == "/v1/files/" + std::to_string(i));
        CHECK(read.requests[i].range == "bytes=" + std::to_string(i) + "-");
    }
}

TEST_CASE("Range, If-Range and If-None-Match sent twice are joined, so a caller sees both") {
    const auto read = read_all("GET /f HTTP/1.1\r\nrange: bytes=0-1\r\nRANGE: bytes=4-5\r\nIf-Range: \"a\"\r\n"
                               "If-None-Match: \"x\"\r\nIf-None-Match: \"y\"\r\n\r\n");
    REQUIRE(read.requests.size() == 1);
    CHECK(read.requests[0].range == "bytes=0-1, bytes=4-5");
    CHECK(read.requests[0].if_range == "\"a\"");
    CHECK(read.requests[0].if_none_match == "\"x\", \"y\"");
}

TEST_CASE("request-target forms (RFC 9112 3.2): origin, absolute and asterisk") {
    auto read = read_all("GET http://peer:7070/v1/files/abc?x=1 HTTP/1.1\r\n\r\n");
    REQUIRE(read.requests.size() == 1);
    CHECK(read.requests[0].target == "http://peer:7070/v1/files/abc?x=1");
    CHECK(read.requests[0].path == "/v1/files/abc");
    CHECK(read.requests[0].query == "x=1");

    read = read_all("OPTIONS * HTTP/1.1\r\n\r\n");
    REQUIRE(read.requests.size() == 1);
    CHECK(read.requests[0].method == "OPTIONS");
    CHECK(read.requests[0].path == "*");

    read = read_all("GET http://peer:7070 HTTP/1.1\r\n\r\n");   // no path at all
    CHECK(read.requests.empty());
    CHECK(read.error == 400);
}

TEST_CASE("two Content-Lengths, or Content-Length with chunked, on a GET are refused (RFC 9112 6.3)") {
    for (const char* headers : {"Content-Length: 0\r\nContent-Length: 0\r\n", "Content-Length: 1\r\nContent-Length: 5\r\n",
                                "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
                                "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"}) {
        CAPTURE(headers);
        const auto read = read_all(std::string("GET /f HTTP/1.1\r\n") + headers + "\r\n0\r\n\r\nGET /g HTTP/1.1\r\n\r\n");
        CHECK(read.requests.empty());   // the request that smuggles /g is not served, nor /g
        CHECK(read.error == 400);
    }
}

TEST_CASE("a GET body is read past and dropped when bodies are not kept, whatever its length") {
    const auto read = read_all("GET /f HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + std::string(100000, 'x') +
                               "GET /g HTTP/1.1\r\n\r\n");
    CHECK(read.error == 0);
    REQUIRE(read.requests.size() == 2);
    CHECK(read.requests[0].body.empty());
    CHECK(read.requests[1].path == "/g");
}

TEST_CASE("HTTP/1.0 and HTTP/2 prior knowledge") {
    auto read = read_all("GET /f HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    REQUIRE(read.requests.size() == 1);
    CHECK_FALSE(read.requests[0].keep_alive);   // we close after an HTTP/1.0 response, whatever it asks

    // The HTTP/2 connection preface (RFC 9113 3.4): never a request we serve.
    read = read_all(std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + std::string("\x00\x00\x12\x04\x00", 5));
    for (const auto& r : read.requests) CHECK_FALSE(r.keep_alive);
    CHECK(read.error == 400);
}

TEST_CASE("an Upgrade request is queued to be answered, then nothing more is read") {
    const auto read = read_all("GET /f HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x85garbage");
    REQUIRE(read.requests.size() == 1);
    CHECK_FALSE(read.requests[0].keep_alive);
    CHECK(read.error == 400);
}

TEST_CASE("header bytes: exactly the limit passes, one more is 431, and so do endless small headers") {
    // Counted: the target + 16 (method, version, CRLF), each field + 4 (": ", CRLF), each value.
    const HttpReaderLimits limits{1024, 0, 8, false};
    const std::size_t fits = 1024 - (1 + 16) - (1 + 4);
    auto read = read_all("GET / HTTP/1.1\r\nX: " + std::string(fits, 'v') + "\r\n\r\n", limits);
    CHECK(read.error == 0);
    CHECK(read.requests.size() == 1);
    read = read_all("GET / HTTP/1.1\r\nX: " + std::string(fits + 1, 'v') + "\r\n\r\n", limits);
    CHECK(read.error == 431);
    CHECK(read.requests.empty());

    std::string endless = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 2000; ++i) endless += "A: b\r\n";
    read = read_all(endless, limits);
    CHECK(read.error == 431);
}

TEST_CASE("requests before a malformed one are served first; nothing after it is read") {
    const auto read = read_all("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nBLAH\x01 / HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n");
    REQUIRE(read.requests.size() == 2);
    CHECK(read.requests[0].path == "/a");
    CHECK(read.requests[1].path == "/b");
    CHECK(read.error == 400);
}

TEST_CASE("an Upgrade request with a body split across reads is still read whole (found by fuzzing)") {
    const std::string text = "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: x\r\nContent-Length: 4\r\n\r\nabcd";
    for (std::size_t split = 1; split < text.size(); ++split) {
        CAPTURE(split);
        HttpRequestReader reader(upload_limits());
        CHECK(reader.feed(text.substr(0, split)) == split);
        CHECK(reader.error_status() == 0);
        reader.feed(text.substr(split));
        auto r = reader.pop();
        REQUIRE(r);
        CHECK_FALSE(r->keep_alive);
        CHECK(reader.error_status() == 400);
    }
}
