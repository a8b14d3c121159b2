// tests/unit/test_bitfield.cpp — proto::Bitfield: BEP 3 bit order, counts,
// and the checks of from_bytes; the transfer state names.
#include <doctest/doctest.h>

#include <vector>

#include "daemon/transfer_record.hpp"
#include "proto/bitfield.hpp"

using peershare::proto::Bitfield;

TEST_CASE("bitfield: piece 0 is the most significant bit of byte 0") {
    Bitfield b(10);
    CHECK(b.bytes().size() == 2);
    CHECK(b.none());
    b.set(0);
    b.set(9);
    b.set(9);  // setting twice counts once
    CHECK(b.bytes() == std::vector<std::uint8_t>{0x80, 0x40});
    CHECK(b.count() == 2);
    CHECK(b.test(0));
    CHECK_FALSE(b.test(1));
    b.reset(0);
    CHECK(b.count() == 1);
    CHECK(b.to_hex() == "0040");
}

TEST_CASE("bitfield: from_bytes round trip and rejections") {
    Bitfield b(17);
    for (std::uint64_t i = 0; i < 17; ++i) b.set(i);
    CHECK(b.all());
    auto back = Bitfield::from_bytes(b.bytes(), 17);
    REQUIRE(back);
    CHECK(*back == b);
    CHECK(back->count() == 17);

    const std::vector<std::uint8_t> short_one{0xff, 0xff};
    CHECK_FALSE(Bitfield::from_bytes(short_one, 17));
    const std::vector<std::uint8_t> spare{0xff, 0xff, 0xc0};  // bit 17 set: spare
    CHECK_FALSE(Bitfield::from_bytes(spare, 17));
    CHECK(Bitfield::from_bytes({}, 0));
}

// Found by tests/fuzz/transfer_record (corpus/transfer_record/regression-
// bitfield-overflow): (pieces + 7) / 8 wrapped near 2^64, so an empty buffer
// passed for 2^64 - 1 pieces and from_bytes then read its last byte.
TEST_CASE("bitfield: piece counts near 2^64 do not wrap the byte count") {
    const std::vector<std::uint8_t> none;
    for (std::uint64_t k = 1; k <= 8; ++k) {
        CAPTURE(k);
        CHECK_FALSE(Bitfield::from_bytes(none, ~std::uint64_t{0} - k + 1));
    }
    CHECK(Bitfield::from_bytes(none, 0));
    CHECK_FALSE(Bitfield::from_bytes(std::vector<std::uint8_t>{0}, ~std::uint64_t{0}));
}

TEST_CASE("transfer states: names round trip") {
    using namespace peershare::peerd;
    for (auto s : {TransferState::queued, TransferState::running, TransferState::waiting, TransferState::paused,
                   TransferState::failed, TransferState::done}) {
        TransferState back{};
        REQUIRE(parse_transfer_state(to_string(s), back));
        CHECK(back == s);
    }
    TransferState x{};
    CHECK_FALSE(parse_transfer_state("bogus", x));
}
