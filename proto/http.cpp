// proto/http.cpp — request targets and byte ranges.
#include "proto/http.hpp"

#include <algorithm>
#include <cassert>
#include <charconv>

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
        return r;
    }
    auto first = parse_number(first_text);
    if (!first) return whole;
    std::optional<std::uint64_t> last = last_text.empty() ? std::optional(size - 1) : parse_number(last_text);
    if (!first_text.empty() && *first >= size) return {RangeKind::unsatisfiable, {}};
    if (!last || *last < *first) return whole;
    r.range = {*first, std::min(*last, size - 1)};
    return r;
}

std::string content_range(const ByteRange& r, std::uint64_t size) {
    return "bytes " + std::to_string(r.first) + "-" + std::to_string(r.last) + "/" + std::to_string(size);
}

}  // namespace peershare::proto
