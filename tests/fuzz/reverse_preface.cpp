// tests/fuzz/reverse_preface.cpp — the connect-back preface scan
// (proto/reverse.hpp), which judges the first bytes of every accepted upload
// connection. Invariants: a preface is found only in input that starts with
// exactly reverse_preface(token) for a valid token, and then `used` is its
// length; any input that is a proper prefix of a preface is incomplete; the
// verdict on a prefix never contradicts the verdict on the whole (http stays
// http, bad stays bad). Seeds: tests/fuzz/corpus/reverse_preface/.
#include <string>

#include "proto/reverse.hpp"
#include "tests/fuzz/check.hpp"

using namespace peershare;
using Kind = proto::PrefaceScan::Kind;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto text = fuzz::as_text(data, size);
    const auto scan = proto::scan_preface(text);
    if (scan.kind == Kind::preface) {
        FUZZ_CHECK(proto::valid_reverse_token(scan.token));
        FUZZ_CHECK(scan.used == proto::kReversePrefaceBytes);
        FUZZ_CHECK(text.starts_with(proto::reverse_preface(scan.token)));
    } else {
        FUZZ_CHECK(scan.used == 0 && scan.token.empty());
    }
    if (scan.kind == Kind::incomplete) FUZZ_CHECK(text.size() < proto::kReversePrefaceBytes);
    for (std::size_t cut = 0; cut < text.size(); ++cut) {
        const auto part = proto::scan_preface(text.substr(0, cut)).kind;
        if (part == Kind::http || part == Kind::bad) FUZZ_CHECK(scan.kind == part);
    }
    return 0;
}
