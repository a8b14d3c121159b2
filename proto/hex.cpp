// proto/hex.cpp — hex encoding.
#include "proto/hex.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <cassert>

namespace peershare::proto {
namespace {

int nibble(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

}  // namespace

std::string to_hex(std::span<const std::uint8_t> bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    // Sized once and filled by index: every lookup reply hexes each holder's id.
    std::string out(bytes.size() * 2, '\0');
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        out[2 * i] = kDigits[bytes[i] >> 4];
        out[2 * i + 1] = kDigits[bytes[i] & 0xf];
    }
    return out;
}

std::optional<Digest> digest_from_hex(std::string_view hex) {
    Digest d{};
    if (hex.size() != d.size() * 2) return std::nullopt;
    for (std::size_t i = 0; i < d.size(); ++i) {
        const int hi = nibble(hex[2 * i]);
        const int lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        d[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return d;
}

std::string random_hex(std::size_t digits) {
    assert(digits % 2 == 0 && digits <= 64);
    std::array<std::uint8_t, 32> bytes{};
    const int ok = RAND_bytes(bytes.data(), static_cast<int>(digits / 2));
    assert(ok == 1);   // fails only without an entropy source, which OpenSSL aborts on at startup
    (void)ok;
    return to_hex(std::span<const std::uint8_t>(bytes.data(), digits / 2));
}

bool is_lower_hex(std::string_view text, std::size_t digits) {
    return text.size() == digits &&
           std::all_of(text.begin(), text.end(), [](char c) { return nibble(c) >= 0; });
}

}  // namespace peershare::proto
