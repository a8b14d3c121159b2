// tests/fuzz/http_range.cpp — a Range header value against a file size taken
// from the input (the last 8 bytes; the rest is the header). Invariants
// (RFC 9110, 14.1.2): a partial range lies inside the file, first <= last;
// an unsatisfiable one only where the file is empty or the range starts at or
// past its end or is a zero-length suffix; Content-Range names the range and
// the size; a range of plain decimals is exactly the one the RFC names
// (expected_range, written apart from the parser). Also the request target parser: what it accepts is a content id
// and prints back (file_path / pieces_path) as a path it accepts the same.
// Seeds: tests/fuzz/corpus/http_range/.
#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>
#include <string>

#include "proto/http.hpp"
#include "proto/names.hpp"
#include "tests/fuzz/check.hpp"

using namespace peershare::proto;
using peershare::fuzz::as_text;

namespace {

// A decimal of 1 to 18 digits (no sign, no space), or nothing.
std::optional<std::uint64_t> digits(std::string_view text) {
    if (text.empty() || text.size() > 18) return std::nullopt;
    if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
    std::uint64_t n = 0;
    std::from_chars(text.data(), text.data() + text.size(), n);
    return n;
}

// What RFC 9110 §14.1.2 makes of "bytes=FIRST-LAST", "bytes=FIRST-" and
// "bytes=-SUFFIX" with plain decimals, written apart from parse_range: the
// answer must be this one exactly, not only some range inside the file.
std::optional<RangeRequest> expected_range(std::string_view text, std::uint64_t size) {
    if (!text.starts_with("bytes=")) return std::nullopt;
    text.remove_prefix(6);
    const auto dash = text.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    const auto first = text.substr(0, dash), last = text.substr(dash + 1);
    if (first.empty()) {
        const auto n = digits(last);
        if (!n) return std::nullopt;
        if (*n == 0 || size == 0) return RangeRequest{RangeKind::unsatisfiable, {}};
        return RangeRequest{RangeKind::partial, {size - std::min(*n, size), size - 1}};
    }
    const auto a = digits(first);
    const auto b = last.empty() ? std::optional<std::uint64_t>(size - 1) : digits(last);
    if (!a || (!last.empty() && !b)) return std::nullopt;
    if (*a >= size) return RangeRequest{RangeKind::unsatisfiable, {}};
    if (*b < *a) return RangeRequest{RangeKind::whole, {}};
    return RangeRequest{RangeKind::partial, {*a, std::min(*b, size - 1)}};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::uint64_t file_size = 0;
    if (size >= 8) {
        std::memcpy(&file_size, data + size - 8, 8);
        size -= 8;
        // Mostly small sizes, where the edges are; sometimes any 64-bit size.
        if (file_size >> 63 == 0) file_size %= 1u << 20;
    }
    const auto text = as_text(data, size);

    const auto r = parse_range(text, file_size);
    switch (r.kind) {
        case RangeKind::partial:
            FUZZ_CHECK(file_size > 0);
            FUZZ_CHECK(r.range.first <= r.range.last);
            FUZZ_CHECK(r.range.last < file_size);
            FUZZ_CHECK(r.range.length() >= 1 && r.range.length() <= file_size);
            FUZZ_CHECK(content_range(r.range, file_size) ==
                       "bytes " + std::to_string(r.range.first) + "-" + std::to_string(r.range.last) + "/" +
                           std::to_string(file_size));
            break;
        case RangeKind::unsatisfiable:
            FUZZ_CHECK(text.starts_with("bytes="));
            break;
        case RangeKind::whole:
            break;
    }
    if (const auto expected = expected_range(text, file_size)) {
        FUZZ_CHECK(r.kind == expected->kind);
        if (r.kind == RangeKind::partial) {
            FUZZ_CHECK(r.range.first == expected->range.first && r.range.last == expected->range.last);
        }
    }
    // Whatever the size, an empty file never gets a partial range.
    FUZZ_CHECK(parse_range(text, 0).kind != RangeKind::partial);

    if (auto target = parse_file_target(text)) {
        FUZZ_CHECK(!check_content_id(target->id));
        const auto path = target->pieces ? pieces_path(target->id) : file_path(target->id);
        auto again = parse_file_target(path);
        FUZZ_CHECK(again && again->id == target->id && again->pieces == target->pieces);
    }
    return 0;
}
