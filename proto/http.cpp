// proto/http.cpp — request targets and byte ranges.
#include "proto/http.hpp"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <ctime>

#include "proto/content.hpp"
#include "proto/hex.hpp"
#include "proto/names.hpp"

namespace peershare::proto {
namespace {

std::optional<std::uint64_t> parse_number(std::string_view text) {
    if (text.empty() || text.size() > 19) return std::nullopt;
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return n;
}

}  // namespace

std::optional<FileTarget> parse_file_target(std::string_view path) {
    path = path.substr(0, path.find('?'));
    if (!path.starts_with(kFilesPrefix)) return std::nullopt;
    path.remove_prefix(kFilesPrefix.size());
    FileTarget t;
    constexpr std::string_view kPieces = "/pieces", kHave = "/have";
    if (path.ends_with(kPieces)) {
        t.pieces = true;
        path.remove_suffix(kPieces.size());
    } else if (path.ends_with(kHave)) {
        t.have = true;
        path.remove_suffix(kHave.size());
    }
    if (check_content_id(path)) return std::nullopt;
    t.id = std::string(path);
    return t;
}

std::string file_path(std::string_view id) { return std::string(kFilesPrefix) + std::string(id); }
std::string pieces_path(std::string_view id) { return file_path(id) + "/pieces"; }
std::string have_path(std::string_view id) { return file_path(id) + "/have"; }

std::optional<std::uint64_t> first_missing_piece(const Bitfield& have, std::uint64_t piece_size,
                                                 const ByteRange& r) {
    assert(piece_size > 0 && r.first <= r.last);
    if (have.size() == 0) return std::nullopt;   // an empty file: no piece to lack
    const auto last = std::min<std::uint64_t>(r.last / piece_size, have.size() - 1);
    for (auto piece = r.first / piece_size; piece <= last; ++piece) {
        if (!have.test(piece)) return piece;
    }
    return std::nullopt;
}

std::string have_etag(const Bitfield& have) {
    return "\"have-" + to_hex(sha256(have.bytes())).substr(0, 16) + "\"";
}

RangeRequest parse_range(std::string_view header, std::uint64_t size) {
    constexpr std::string_view kUnit = "bytes=";
    RangeRequest whole;
    if (!header.starts_with(kUnit)) return whole;
    header.remove_prefix(kUnit.size());
    const auto dash = header.find('-');
    if (dash == std::string_view::npos || header.find(',') != std::string_view::npos) return whole;
    const auto first_text = header.substr(0, dash);
    const auto last_text = header.substr(dash + 1);
    RangeRequest r{RangeKind::partial, {}};
    if (first_text.empty()) {   // suffix: the last n bytes
        auto n = parse_number(last_text);
        if (!n) return whole;
        if (*n == 0 || size == 0) return {RangeKind::unsatisfiable, {}};
        r.range = {size - std::min(*n, size), size - 1};
        assert(r.range.first <= r.range.last && r.range.last < size);   // tests/fuzz/http_range
        return r;
    }
    auto first = parse_number(first_text);
    if (!first) return whole;
    std::optional<std::uint64_t> last = last_text.empty() ? std::optional(size - 1) : parse_number(last_text);
    if (!first_text.empty() && *first >= size) return {RangeKind::unsatisfiable, {}};
    if (!last || *last < *first) return whole;
    r.range = {*first, std::min(*last, size - 1)};
    assert(r.range.first <= r.range.last && r.range.last < size);   // tests/fuzz/http_range
    return r;
}

std::string content_range(const ByteRange& r, std::uint64_t size) {
    return "bytes " + std::to_string(r.first) + "-" + std::to_string(r.last) + "/" + std::to_string(size);
}

bool if_none_match_hits(std::string_view header, std::string_view etag) {
    std::size_t start = 0;
    while (start <= header.size()) {
        auto end = header.find(',', start);
        if (end == std::string_view::npos) end = header.size();
        auto tag = header.substr(start, end - start);
        while (!tag.empty() && tag.front() == ' ') tag.remove_prefix(1);
        while (!tag.empty() && tag.back() == ' ') tag.remove_suffix(1);
        if (tag.starts_with("W/")) tag.remove_prefix(2);
        if (tag == "*" || tag == etag) return true;
        start = end + 1;
    }
    return false;
}

std::string_view reason_phrase(int status) {
    switch (status) {
        case 200: return "OK";
        case 206: return "Partial Content";
        case 304: return "Not Modified";
        case 400: return "Bad Request";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 413: return "Content Too Large";
        case 416: return "Range Not Satisfiable";
        case 421: return "Misdirected Request";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
    }
}

std::string http_date() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char text[64];
    const auto n = std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return {text, n};
}

std::string response_head(int status, std::optional<std::uint64_t> content_length,
                          std::string_view content_type, bool close, std::string_view extra) {
    std::string h;
    h.reserve(256 + extra.size());
    h += "HTTP/1.1 ";
    h += std::to_string(status);
    h += ' ';
    h += reason_phrase(status);
    h += "\r\nServer: peershare\r\nDate: ";
    h += http_date();
    h += "\r\n";
    if (!content_type.empty()) {
        h += "Content-Type: ";
        h += content_type;
        h += "\r\n";
    }
    if (content_length) {
        h += "Content-Length: ";
        h += std::to_string(*content_length);
        h += "\r\n";
    }
    h += extra;
    if (close) h += "Connection: close\r\n";
    h += "\r\n";
    return h;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
        return lower(x) == lower(y);
    });
}

}  // namespace peershare::proto
