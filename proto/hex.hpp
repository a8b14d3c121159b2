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
// Decodes exactly 64 lowercase hex digits.
std::optional<Digest> digest_from_hex(std::string_view hex);

}  // namespace peershare::proto
