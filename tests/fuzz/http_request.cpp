// tests/fuzz/http_request.cpp — proto::HttpRequestReader, the request reader
// of every HTTP server here (the upload server, trackerd's API, /metrics), fed
// bytes whole and in random splits. Input: byte 0 picks the limits (bit 0:
// the upload server's, bodies dropped; else the API's, 4 KiB bodies kept) and
// seeds the splits; the rest is the stream. Invariants: any split reads the
// same requests and the same error as the whole; never more than max_queued
// requests held; every request has a method and a path, its header fields
// within max_header_bytes and a kept body within max_body; a failed reader
// takes no more bytes. Seeds: tests/fuzz/corpus/http_request/ (requests
// captured by capture_corpus.sh, pipelined, with ranges, and the tricky forms
// of tests/unit/test_http_request.cpp).
#include <string>
#include <vector>

#include "proto/http_request.hpp"
#include "tests/fuzz/check.hpp"

using namespace peershare::proto;
using peershare::fuzz::as_text;

namespace {

struct Outcome {
    std::vector<HttpRequest> requests;
    int error = 0;
};

bool same(const HttpRequest& a, const HttpRequest& b) {
    return a.method == b.method && a.target == b.target && a.path == b.path && a.query == b.query &&
           a.token == b.token && a.accept == b.accept && a.range == b.range && a.if_range == b.if_range &&
           a.if_none_match == b.if_none_match && a.body == b.body && a.keep_alive == b.keep_alive;
}

// Feeds `text` in pieces whose lengths come from `seed` (0: whole), popping
// as a server would, and checks the invariants on the way.
Outcome run(std::string_view text, const HttpReaderLimits& limits, unsigned seed) {
    HttpRequestReader reader(limits);
    Outcome out;
    std::string_view pending;   // taken from text, not yet accepted by the reader
    std::uint32_t x = seed * 2654435761u + 1;
    const std::size_t rounds = 2 * text.size() + 8;   // a byte per round at worst, and a round to pop
    for (std::size_t round = 0; round < rounds; ++round) {
        if (pending.empty()) {
            if (text.empty()) break;
            std::size_t n = text.size();
            if (seed != 0) {
                x = x * 1664525u + 1013904223u;
                n = 1 + (x >> 8) % std::min<std::size_t>(text.size(), 64);
            }
            pending = text.substr(0, n);
            text.remove_prefix(n);
        }
        const auto taken = reader.feed(pending);
        FUZZ_CHECK(taken <= pending.size());
        pending.remove_prefix(taken);
        if (reader.error_status()) break;
        std::size_t held = 0;
        while (auto r = reader.pop()) {
            ++held;
            out.requests.push_back(std::move(*r));
        }
        FUZZ_CHECK(held <= limits.max_queued);
        if (taken == 0 && held == 0 && !pending.empty()) FUZZ_CHECK(!"the reader took nothing and held nothing");
    }
    FUZZ_CHECK((pending.empty() && text.empty()) || reader.error_status());   // every byte taken, or an error
    while (auto r = reader.pop()) out.requests.push_back(std::move(*r));
    out.error = reader.error_status();
    FUZZ_CHECK(out.error == 0 || out.error == 400 || out.error == 413 || out.error == 431 || out.error == 505);
    if (out.error) FUZZ_CHECK(reader.feed("GET / HTTP/1.1\r\n\r\n") == 0);
    for (const auto& r : out.requests) {
        FUZZ_CHECK(!r.method.empty());
        FUZZ_CHECK(!r.path.empty());
        FUZZ_CHECK(r.target.size() <= limits.max_header_bytes);
        FUZZ_CHECK(r.range.size() + r.if_range.size() + r.if_none_match.size() + r.token.size() + r.accept.size() <=
                   limits.max_header_bytes);
        FUZZ_CHECK(r.body.size() <= (limits.keep_body ? limits.max_body : 0));
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const unsigned mode = data[0];
    const auto text = as_text(data + 1, size - 1);
    const HttpReaderLimits limits = (mode & 1) ? HttpReaderLimits{8 * 1024, 0, 8, false} : HttpReaderLimits{};

    const auto whole = run(text, limits, 0);
    const auto split = run(text, limits, mode | 0x100);
    FUZZ_CHECK(split.error == whole.error);
    FUZZ_CHECK(split.requests.size() == whole.requests.size());
    for (std::size_t i = 0; i < whole.requests.size(); ++i) FUZZ_CHECK(same(whole.requests[i], split.requests[i]));
    return 0;
}
