// tests/fuzz/http_range.cpp — a Range header value against a file size taken
// from the input (the last 8 bytes; the rest is the header). Invariants
// (RFC 9110, 14.1.2): a partial range lies inside the file, first <= last;
// an unsatisfiable one only where the file is empty or the range starts at or
// past its end or is a zero-length suffix; Content-Range names the range and
// the size. Also the request target parser: what it accepts is a content id
// and prints back (file_path / pieces_path) as a path it accepts the same.
// Seeds: tests/fuzz/corpus/http_range/.
#include <cstring>
#include <string>

#include "proto/http.hpp"
#include "proto/names.hpp"
#include "tests/fuzz/check.hpp"

using namespace peershare::proto;
using peershare::fuzz::as_text;

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
