// proto/bitfield.cpp — see bitfield.hpp.
#include "proto/bitfield.hpp"

#include <bit>
#include <cassert>

#include "proto/hex.hpp"

namespace peershare::proto {
namespace {

// (pieces + 7) / 8 without its overflow: near 2^64 that sum wraps to a handful
// of bytes, and from_bytes took an empty buffer for 2^64 - 1 pieces (found by
// tests/fuzz/transfer_record).
std::uint64_t bytes_for(std::uint64_t pieces) { return pieces / 8 + (pieces % 8 != 0 ? 1 : 0); }

}  // namespace

Bitfield::Bitfield(std::uint64_t pieces) : bytes_(bytes_for(pieces), 0), size_(pieces) {}

Result<Bitfield> Bitfield::from_bytes(std::span<const std::uint8_t> bytes, std::uint64_t pieces) {
    const std::uint64_t want = bytes_for(pieces);
    if (bytes.size() != want)
        return Error{ErrorCode::bad_request, "bitfield of " + std::to_string(bytes.size()) + " bytes for " +
                                                 std::to_string(pieces) + " pieces (want " +
                                                 std::to_string(want) + ")"};
    Bitfield b(pieces);
    b.bytes_.assign(bytes.begin(), bytes.end());
    if (pieces % 8 != 0) {
        const auto spare = static_cast<std::uint8_t>(0xffu >> (pieces % 8));
        if ((b.bytes_.back() & spare) != 0) return Error{ErrorCode::bad_request, "bitfield has spare bits set"};
    }
    for (auto byte : b.bytes_) b.count_ += static_cast<std::uint64_t>(std::popcount(byte));
    return b;
}

bool Bitfield::test(std::uint64_t piece) const {
    assert(piece < size_);
    return (bytes_[piece / 8] >> (7 - piece % 8)) & 1u;
}

void Bitfield::set(std::uint64_t piece) {
    if (test(piece)) return;
    bytes_[piece / 8] = static_cast<std::uint8_t>(bytes_[piece / 8] | (0x80u >> (piece % 8)));
    ++count_;
}

void Bitfield::reset(std::uint64_t piece) {
    if (!test(piece)) return;
    bytes_[piece / 8] = static_cast<std::uint8_t>(bytes_[piece / 8] & ~(0x80u >> (piece % 8)));
    --count_;
}

std::string Bitfield::to_hex() const { return proto::to_hex(bytes_); }

}  // namespace peershare::proto
