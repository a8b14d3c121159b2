// proto/bitfield.hpp — a set of piece indices as BitTorrent's bitfield
// (BEP 3, "bitfield" message): one bit per piece, piece 0 in the most
// significant bit of byte 0, spare bits at the end of the last byte zero.
// peerd records the pieces of a transfer that are verified and durable with
// it, and serves it to other peers (docs/protocol.md).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "proto/errors.hpp"

namespace peershare::proto {

class Bitfield {
public:
    Bitfield() = default;
    // `pieces` bits, all clear.
    explicit Bitfield(std::uint64_t pieces);
    // From the wire/storage form: exactly (pieces + 7) / 8 bytes with the spare
    // bits clear; anything else is ErrorCode::bad_request naming what is wrong.
    static Result<Bitfield> from_bytes(std::span<const std::uint8_t> bytes, std::uint64_t pieces);

    std::uint64_t size() const { return size_; }      // pieces
    std::uint64_t count() const { return count_; }    // pieces set
    bool all() const { return count_ == size_; }
    bool none() const { return count_ == 0; }
    // `piece` < size(), asserted.
    bool test(std::uint64_t piece) const;
    void set(std::uint64_t piece);
    void reset(std::uint64_t piece);

    // (size() + 7) / 8 bytes, piece 0 in the most significant bit of byte 0.
    const std::vector<std::uint8_t>& bytes() const { return bytes_; }
    std::string to_hex() const;

    bool operator==(const Bitfield&) const = default;

private:
    std::vector<std::uint8_t> bytes_;
    std::uint64_t size_ = 0;
    std::uint64_t count_ = 0;
};

}  // namespace peershare::proto
