// common/rate.hpp — rates (and sizes) with units, as peerd's options, its config file and
// `peerctl limit` take them, and as people read them. Pure functions on text.
//
// RATE = NUMBER [PREFIX] [UNIT] ["/s"], no spaces:
//   NUMBER  digits, optionally with a decimal point ("1.5"); at most 18 digits
//   PREFIX  k, M, G: powers of 1000 (SI, as network links are measured);
//           Ki, Mi, Gi: powers of 1024 (IEC 80000-13). The letter's case does
//           not matter (k = K, m = M: no rate is in milli-units); the "i" of
//           the binary prefixes is lowercase.
//   UNIT    none or B: bytes per second; "bit" (any case): bits per second.
//           A lone "b" is refused as ambiguous (20Mb: bytes or bits?).
// So 500k = 500,000 B/s, 20M = 20MB/s = 20,000,000 B/s, 1G = 10^9 B/s,
// 20Mbit = 2,500,000 B/s, 4Mi = 4,194,304 B/s, 1500 = 1,500 B/s, 0 = unlimited.
// Fractions of a byte are dropped; a rate that is not 0 but under 1 byte/s,
// and one over proto::kMaxRate (1 TB/s), is refused.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "proto/errors.hpp"

namespace peershare::common {

// Bytes per second (0 = unlimited), or bad_request with one line saying what
// is wrong with `text` and what a rate looks like.
proto::Result<std::uint64_t> parse_rate(std::string_view text);

// Bytes (a memory budget, a file size): the same NUMBER and PREFIX, then
// nothing or B; no "/s" and no bits. 0 is 0 (the caller decides whether it
// means anything); over 1024Gi (2^40 bytes) is refused. bad_request with one line.
proto::Result<std::uint64_t> parse_size(std::string_view text);

// For people: "unlimited" for 0, else three significant digits in SI units:
// "800 B/s", "500 kB/s", "2.5 MB/s", "1.23 GB/s".
std::string format_rate(std::uint64_t bytes_per_s);

}  // namespace peershare::common
