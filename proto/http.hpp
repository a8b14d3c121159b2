// proto/http.hpp — the pure parts of the HTTP data plane (docs/design.md,
// "Protocol layers"): which file a request path names, and what a Range header
// asks for. Parsing the HTTP message itself is http-parser's job; this only
// interprets values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace peershare::proto {

inline constexpr std::string_view kFilesPrefix = "/v1/files/";

struct FileTarget {
    std::string id;        // content id, validated
    bool pieces = false;   // /v1/files/<id>/pieces
};

// nullopt for any path that is not exactly one of our two endpoints (a query
// string is ignored).
std::optional<FileTarget> parse_file_target(std::string_view path);
std::string file_path(std::string_view id);          // "/v1/files/<id>"
std::string pieces_path(std::string_view id);        // "/v1/files/<id>/pieces"

struct ByteRange {
    std::uint64_t first = 0;
    std::uint64_t last = 0;   // inclusive
    std::uint64_t length() const { return last - first + 1; }
};

enum class RangeKind {
    whole,            // no usable Range: serve 200 with the whole file
    partial,          // serve 206 with `range`
    unsatisfiable,    // 416
};

struct RangeRequest {
    RangeKind kind = RangeKind::whole;
    ByteRange range;
};

// Interprets a Range header value against a file of `size` bytes. A single
// "bytes=a-b", "bytes=a-" or "bytes=-n" is honoured; syntax we do not serve
// (other units, several ranges, garbage) is ignored as RFC 9110 allows.
RangeRequest parse_range(std::string_view header, std::uint64_t size);
std::string content_range(const ByteRange& r, std::uint64_t size);   // "bytes a-b/size"

}  // namespace peershare::proto
