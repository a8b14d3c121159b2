// proto/http_request.cpp — http-parser callbacks into HttpRequest values.
#include "proto/http_request.hpp"

#include "proto/http.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cassert>
#include <climits>

namespace peershare::proto {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

HttpRequestReader::HttpRequestReader(HttpReaderLimits limits) : limits_(limits) {
    assert(limits_.max_queued > 0);
    http_parser_init(&parser_, HTTP_REQUEST);
    parser_.data = this;
}

const http_parser_settings& HttpRequestReader::settings() {
    static const http_parser_settings s = [] {
        http_parser_settings init;
        http_parser_settings_init(&init);
        init.on_message_begin = [](http_parser* p) {
            auto& self = of(p);
            self.parsing_ = HttpRequest{};
            self.url_.clear();
            self.field_.clear();
            self.value_.clear();
            self.in_value_ = false;
            self.in_request_ = true;
            self.header_bytes_ = 0;
            return 0;
        };
        init.on_url = [](http_parser* p, const char* at, std::size_t n) {
            auto& self = of(p);
            if (!self.count_header_bytes(n + (self.url_.empty() ? 16 : 0))) return -1;   // method, version, CRLF
            self.url_.append(at, n);
            return 0;
        };
        init.on_header_field = [](http_parser* p, const char* at, std::size_t n) {
            auto& self = of(p);
            if (self.in_value_) self.commit_header();
            if (!self.count_header_bytes(n + (self.field_.empty() ? 4 : 0))) return -1;   // ": " and CRLF
            self.field_.append(at, n);
            return 0;
        };
        init.on_header_value = [](http_parser* p, const char* at, std::size_t n) {
            auto& self = of(p);
            self.in_value_ = true;
            if (!self.count_header_bytes(n)) return -1;
            self.value_.append(at, n);
            return 0;
        };
        init.on_headers_complete = [](http_parser* p) {
            auto& self = of(p);
            if (self.in_value_) self.commit_header();
            if (p->http_major != 1 || p->http_minor > 1) {   // RFC 9110 §15.6.6: only HTTP/1.0 and 1.1 are spoken here
                self.error_status_ = 505;
                return -1;
            }
            if (self.limits_.keep_body && p->content_length != ULLONG_MAX && p->content_length > self.limits_.max_body) {
                self.error_status_ = 413;
                return -1;
            }
            self.parsing_.method = http_method_str(static_cast<http_method>(p->method));
            self.parsing_.keep_alive = p->http_major == 1 && p->http_minor >= 1 && http_should_keep_alive(p) != 0;
            http_parser_url parts;
            http_parser_url_init(&parts);
            if (http_parser_parse_url(self.url_.data(), self.url_.size(), 0, &parts) != 0 ||
                !(parts.field_set & (1 << UF_PATH))) {
                self.error_status_ = 400;
                return -1;
            }
            const auto part = [&](int field) {
                return self.url_.substr(parts.field_data[field].off, parts.field_data[field].len);
            };
            self.parsing_.path = part(UF_PATH);
            if (parts.field_set & (1 << UF_QUERY)) self.parsing_.query = part(UF_QUERY);
            self.parsing_.target = std::move(self.url_);
            return 0;
        };
        init.on_body = [](http_parser* p, const char* at, std::size_t n) {
            auto& self = of(p);
            if (!self.limits_.keep_body) return 0;
            if (self.parsing_.body.size() + n > self.limits_.max_body) {   // chunked bodies have no length up front
                self.error_status_ = 413;
                return -1;
            }
            self.parsing_.body.append(at, n);
            return 0;
        };
        init.on_message_complete = [](http_parser* p) {
            auto& self = of(p);
            self.in_request_ = false;
            if (p->upgrade) {   // we speak nothing else: answer, then close
                self.parsing_.keep_alive = false;
                self.upgraded_ = true;
            }
            self.queue_.push_back(std::move(self.parsing_));
            self.parsing_ = HttpRequest{};
            if (self.queue_.size() >= self.limits_.max_queued) http_parser_pause(p, 1);
            return 0;
        };
        return init;
    }();
    return s;
}

bool HttpRequestReader::count_header_bytes(std::size_t n) {
    header_bytes_ += n;
    if (header_bytes_ <= limits_.max_header_bytes) return true;
    too_large_ = true;
    return false;
}

void HttpRequestReader::commit_header() {
    if (equals_ignoring_case(field_, "x-peershare-token")) parsing_.token = value_;
    if (equals_ignoring_case(field_, "accept")) parsing_.accept = value_;
    if (equals_ignoring_case(field_, "host")) parsing_.host = value_;
    const auto join = [this](std::string& into) {
        if (!into.empty()) into += ", ";
        into += value_;
    };
    if (equals_ignoring_case(field_, "range")) join(parsing_.range);
    if (equals_ignoring_case(field_, "if-range")) join(parsing_.if_range);
    if (equals_ignoring_case(field_, "if-none-match")) join(parsing_.if_none_match);
    field_.clear();
    value_.clear();
    in_value_ = false;
}

std::size_t HttpRequestReader::feed(std::string_view bytes) {
    if (error_status_ || queue_.size() >= limits_.max_queued) return 0;
    if (HTTP_PARSER_ERRNO(&parser_) == HPE_PAUSED) http_parser_pause(&parser_, 0);
    const std::size_t taken = http_parser_execute(&parser_, &settings(), bytes.data(), bytes.size());
    const auto err = HTTP_PARSER_ERRNO(&parser_);
    if (err == HPE_PAUSED) return taken;
    if (err != HPE_OK) {
        if (!error_status_) error_status_ = too_large_ || err == HPE_HEADER_OVERFLOW ? 431 : 400;
        return taken;
    }
    // The rest is not HTTP; the queued request is answered first. (Not
    // parser_.upgrade: that is set from the headers on, while the body of the
    // upgrade request may still be arriving.)
    if (upgraded_) error_status_ = 400;
    return taken;
}

std::optional<HttpRequest> HttpRequestReader::pop() {
    if (queue_.empty()) return std::nullopt;
    HttpRequest r = std::move(queue_.front());
    queue_.pop_front();
    return r;
}

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '+' && plus_is_space) {
            out += ' ';
        } else if (c != '%') {
            out += c;
        } else {
            if (i + 2 >= text.size()) return std::nullopt;
            const int hi = hex_value(text[i + 1]);
            const int lo = hex_value(text[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            const char decoded = static_cast<char>(hi * 16 + lo);
            if (decoded == '\0') return std::nullopt;
            out += decoded;
            i += 2;
        }
    }
    return out;
}

std::optional<std::string> query_value(std::string_view query, std::string_view key) {
    while (!query.empty()) {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        const auto eq = pair.find('=');
        const auto name = pair.substr(0, eq);
        if (name != key) continue;
        return percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), true);
    }
    return std::nullopt;
}

bool loopback_host(std::string_view host) {
    if (host.starts_with('[')) {   // "[::1]" or "[::1]:9998"
        const auto close = host.find(']');
        if (close == std::string_view::npos) return false;
        const auto rest = host.substr(close + 1);
        if (!rest.empty() && !rest.starts_with(':')) return false;
        host = host.substr(1, close - 1);
    } else if (std::count(host.begin(), host.end(), ':') == 1) {   // "127.0.0.1:9998", "localhost:9998"
        host = host.substr(0, host.find(':'));
    }
    if (equals_ignoring_case(host, "localhost")) return true;
    if (host.empty() || host.size() >= INET6_ADDRSTRLEN) return false;
    const std::string text(host);
    unsigned char v4[4];
    if (inet_pton(AF_INET, text.c_str(), v4) == 1) return v4[0] == 127;
    unsigned char v6[16];
    if (inet_pton(AF_INET6, text.c_str(), v6) != 1) return false;
    static constexpr unsigned char kLoopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::equal(v6, v6 + 16, kLoopback) || (std::equal(v6, v6 + 12, kMapped) && v6[12] == 127);
}

}  // namespace peershare::proto
