// tests/unit/test_transfer_record.cpp — a transfer as a row of the state
// database and back (daemon/transfer_record.hpp: to_row, read_transfer), the
// pure half of StateDb::load_transfers that tests/fuzz/transfer_record fuzzes.
#include <doctest/doctest.h>

#include "daemon/transfer_record.hpp"
#include "proto/content.hpp"
#include "tests/unit/state_fixtures.hpp"

using namespace peershare;
using peershare::test_state::transfer;

TEST_CASE("transfer record: to_row then read_transfer gives the record back") {
    for (std::size_t pieces : {std::size_t{1}, std::size_t{8}, std::size_t{10}}) {
        const auto r = transfer(7, pieces);
        peerd::TransferRecord back;
        CHECK_FALSE(peerd::read_transfer(peerd::to_row(r), back));
        CHECK(back == r);
    }
    peerd::TransferRecord fresh;   // a transfer before its lookup: no content, no pieces
    fresh.id = 1;
    fresh.name = "n";
    peerd::TransferRecord back;
    CHECK_FALSE(peerd::read_transfer(peerd::to_row(fresh), back));
    CHECK(back == fresh);
}

TEST_CASE("transfer record: each damaged column is named") {
    const auto good = peerd::to_row(transfer(3));
    const auto why = [](peerd::TransferRow row) {
        peerd::TransferRecord out;
        return peerd::read_transfer(row, out).value_or("");
    };
    auto row = good;
    row.id = 0;
    CHECK(why(row) == "its id is not positive");
    row = good;
    row.size = -1;
    CHECK(why(row) == "its size is out of range");
    row = good;
    row.created_at = peerd::kMaxStoredInteger + 1;
    CHECK(why(row) == "its creation time is out of range");
    row = good;
    row.pieces.pop_back();
    CHECK(why(row) == "the piece list is not whole digests");
    row = good;
    row.pieces.resize(row.pieces.size() - 32);
    CHECK(why(row) == "the piece list does not match the file size");
    row = good;
    row.pieces[0] ^= 1;
    CHECK(why(row) == "the piece list does not hash to the content id");
    row = good;
    row.piece_size = 0;
    CHECK(why(row) == "the piece size is 0");
    row = good;
    row.have.push_back(0);
    CHECK(why(row).starts_with("its bitfield: "));
    row = good;
    row.destination = "relative/path";
    CHECK(why(row) == "its destination is not absolute");
    row = good;
    row.sources = R"([{"peer": "a", "host": "h", "port": 65536}])";
    CHECK(why(row) == "a source is not {peer, host, port}");
    row = good;
    row.state = "sleeping";
    CHECK(why(row) == "its state 'sleeping' is unknown");
}
