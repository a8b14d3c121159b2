// proto/http.hpp — the pure parts of HTTP shared by every server of ours:
// which file a request path names and what a Range header asks for (the data
// plane, docs/design.md, "Protocol layers"), and the status line and headers
// of a response. Parsing the HTTP message itself is http-parser's job
// (proto/http_request.hpp); this only interprets values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proto/bitfield.hpp"

namespace peershare::proto {

inline constexpr std::string_view kFilesPrefix = "/v1/files/";
// The header of a 503 that means "this piece is not here yet" (a partial
// holder lacks it; docs/protocol.md §11.8), with the piece's index: not a
// busy server, not a strike.
inline constexpr std::string_view kNotHereYetHeader = "Peershare-Missing-Piece";

struct FileTarget {
    std::string id;        // content id, validated
    bool pieces = false;   // /v1/files/<id>/pieces
    bool have = false;     // /v1/files/<id>/have
};

// nullopt for any path that is not exactly one of our three endpoints (a
// query string is ignored).
std::optional<FileTarget> parse_file_target(std::string_view path);
std::string file_path(std::string_view id);          // "/v1/files/<id>"
std::string pieces_path(std::string_view id);        // "/v1/files/<id>/pieces"
std::string have_path(std::string_view id);          // "/v1/files/<id>/have"

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

// ---- responses (RFC 9110, RFC 9112) ----

std::string_view reason_phrase(int status);   // "Not Found"; "Unknown" for codes we never send
std::string http_date();                      // now, as an IMF-fixdate (RFC 9110 §5.6.7)
// Status line and headers, ending in the empty line. Without a length the
// body runs until the connection closes (a stream). `extra` holds further
// header lines, each ending in CRLF.
std::string response_head(int status, std::optional<std::uint64_t> content_length,
                          std::string_view content_type, bool close, std::string_view extra = {});
// Whether an If-None-Match value (a list of entity tags, or "*") matches
// `etag` by weak comparison (RFC 9110 §13.1.2).
bool if_none_match_hits(std::string_view header, std::string_view etag);
// Header names compare without case (RFC 9110 §5.1).
bool equals_ignoring_case(std::string_view a, std::string_view b);

// The first piece (of `piece_size` bytes) that byte range `r` touches and
// `have` lacks, if any (docs/protocol.md §11.8: a partial holder answers
// "not here yet" for it). `have` covers the whole file; `r` lies within it.
std::optional<std::uint64_t> first_missing_piece(const Bitfield& have, std::uint64_t piece_size,
                                                 const ByteRange& r);

// The validator of a /have answer: a strong ETag, quoted, that changes
// whenever the bitfield does ("have-" and the first 16 hex digits of the
// SHA-256 of its bytes); If-None-Match with it gets 304 (RFC 9110 §13.1.2).
std::string have_etag(const Bitfield& have);

}  // namespace peershare::proto
