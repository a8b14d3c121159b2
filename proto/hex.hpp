// proto/hex.hpp — lowercase hex for content ids, peer keys and digests.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace peershare::proto {

using Digest = std::array<std::uint8_t, 32>;   // a SHA-256

std::string to_hex(std::span<const std::uint8_t> bytes);
// `digits` (even, ≤ 64) lowercase hex digits of fresh random bytes from
// OpenSSL's RAND_bytes: nonces and one-time tokens.
std::string random_hex(std::size_t digits);
// True if `text` is exactly `digits` lowercase hex digits.
bool is_lower_hex(std::string_view text, std::size_t digits);
// Decodes exactly 64 lowercase hex digits.
std::optional<Digest> digest_from_hex(std::string_view hex);

}  // namespace peershare::proto
