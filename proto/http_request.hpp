// proto/http_request.hpp — reading HTTP/1.1 requests from bytes, for every
// HTTP server here (trackerd's dashboard and API, peerd's /metrics and its
// upload server, daemon/upload_server.hpp).
// http-parser does the parsing (RFC 9112); this keeps what those servers need
// (method, path, query, a few headers, a small body) and enforces the limits
// that keep one client's memory bounded. No sockets: bytes in, requests out,
// so a test feeds it literal strings split anywhere.
#pragma once

#include <http_parser.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace peershare::proto {

struct HttpRequest {
    std::string method;             // "GET", "POST", ... (http_method_str)
    std::string target;             // the request-target as sent (origin-, absolute- or asterisk-form)
    std::string path;               // its path, percent-encoded, as sent; "/" at least ("*" for asterisk-form)
    std::string query;              // after '?', without it; may be empty
    std::string token;              // the X-Peershare-Token header, if any
    std::string host;               // the Host header, if any (RFC 9110 §7.2: host, then maybe ":port")
    std::string accept;             // the Accept header, if any
    // Headers that may be sent more than once: every value, joined by ", "
    // (RFC 9110 5.3), so that a caller sees when there were several.
    std::string range;              // Range (RFC 9110 14.2)
    std::string if_range;           // If-Range (RFC 9110 13.1.5)
    std::string if_none_match;      // If-None-Match (RFC 9110 13.1.2)
    std::string body;               // at most HttpReaderLimits::max_body bytes; empty if !keep_body
    bool keep_alive = true;         // HTTP/1.1 without "Connection: close" (HTTP/1.0 and 2.0: false)
};

struct HttpReaderLimits {
    std::size_t max_header_bytes = 8 * 1024;   // request line + headers; past it: 431
    std::size_t max_body = 4 * 1024;           // past it: 413
    std::size_t max_queued = 4;                // parsed requests held before feed() stops taking bytes
    // false: a body is read past and dropped whatever its length (no 413),
    // for servers that answer GET and HEAD only.
    bool keep_body = true;
};

// Feeds bytes (any split) and queues complete requests. After an error the
// reader is failed for good: error_status() says what to answer (400 for
// syntax, 431 for too large headers, 413 for too large a body, 505 for an HTTP
// version other than 1.0 and 1.1, RFC 9110 §15.6.6) and the connection should
// close once that answer is sent. Requests queued before
// the error are whole and come first (answer them in order, then the error).
// http-parser 2.9 (RFC 7230 3.3.3) refuses a request with two Content-Length
// headers or with Content-Length and Transfer-Encoding: chunked (400). After
// an Upgrade or CONNECT request the rest is not HTTP: that request is queued
// with keep_alive false and the reader fails with 400 (which a server that
// closes after keep_alive false never needs to send).
class HttpRequestReader {
public:
    explicit HttpRequestReader(HttpReaderLimits limits = {});
    HttpRequestReader(const HttpRequestReader&) = delete;
    HttpRequestReader& operator=(const HttpRequestReader&) = delete;

    // Consumes bytes; returns how many were taken. Fewer than given only when
    // max_queued requests are waiting (call again with the rest after pop())
    // or after an error.
    std::size_t feed(std::string_view bytes);
    std::optional<HttpRequest> pop();
    bool has_request() const { return !queue_.empty(); }
    int error_status() const { return error_status_; }   // 0 while fine
    // Bytes of a request begun but not complete (its parse has started).
    bool in_request() const { return in_request_; }

private:
    static const http_parser_settings& settings();
    static HttpRequestReader& of(http_parser* p) { return *static_cast<HttpRequestReader*>(p->data); }
    bool count_header_bytes(std::size_t n);
    void commit_header();

    HttpReaderLimits limits_;
    http_parser parser_{};
    HttpRequest parsing_;
    std::string url_;
    std::string field_;
    std::string value_;
    bool in_value_ = false;
    bool in_request_ = false;
    bool too_large_ = false;
    bool upgraded_ = false;   // an Upgrade or CONNECT request is complete: no more HTTP
    std::size_t header_bytes_ = 0;
    int error_status_ = 0;
    std::deque<HttpRequest> queue_;
};

// "%41b+c" -> "Ab c" when `plus_is_space` (a query), "Ab+c" when not (a path).
// Nothing for a bad escape ("%4", "%zz") or an encoded NUL.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);
// The decoded value of `key` in a query "a=1&b=2" (the first one); nothing if
// absent or badly escaped.
std::optional<std::string> query_value(std::string_view query, std::string_view key);

// Whether `host` names this machine's loopback: "localhost", an IPv4 address
// in 127.0.0.0/8 or "::1" (also IPv4-mapped), bracketed or not, with or
// without ":port" — a Host header (RFC 9110 §7.2) or the IP of a listener.
// A server on loopback that answers only such Host headers cannot be read by
// a web page through DNS rebinding: the browser sends that page's host name.
bool loopback_host(std::string_view host);

}  // namespace peershare::proto
