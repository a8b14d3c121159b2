// tests/fuzz/transfer_record.cpp — a row of peerd's transfers table as a
// damaged or hand-edited state database may hold it (daemon/transfer_record.hpp:
// read_transfer), and the bitfield of verified pieces (proto/bitfield.hpp).
// The input is split by FuzzedDataProvider into the row's columns. Invariants:
// an accepted row's record stores (to_row) as a row read back equal; its
// bitfield has one bit per piece and counts its set bits right; set/reset
// keep the count; from_bytes of bytes() gives the same bitfield; an accepted
// record's name and content id are valid and its paths absolute.
// Seeds: tests/fuzz/corpus/transfer_record/, rows of state databases the
// suite wrote.
#include <fuzzer/FuzzedDataProvider.h>

#include <bit>

#include "daemon/transfer_record.hpp"
#include "proto/names.hpp"
#include "tests/fuzz/check.hpp"

using namespace peershare;

namespace {

void check_bitfield(const proto::Bitfield& b, FuzzedDataProvider& in) {
    std::uint64_t count = 0;
    for (auto byte : b.bytes()) count += static_cast<std::uint64_t>(std::popcount(byte));
    FUZZ_CHECK(count == b.count() && b.count() <= b.size());
    FUZZ_CHECK(b.bytes().size() == (b.size() + 7) / 8);
    auto same = proto::Bitfield::from_bytes(b.bytes(), b.size());
    FUZZ_CHECK(same && *same == b);
    if (b.size() == 0) return;
    proto::Bitfield changed = b;
    for (int i = 0; i < 8 && in.remaining_bytes() > 0; ++i) {
        const auto piece = in.ConsumeIntegralInRange<std::uint64_t>(0, b.size() - 1);
        const bool had = changed.test(piece);
        const auto before = changed.count();
        if (in.ConsumeBool()) {
            changed.set(piece);
            FUZZ_CHECK(changed.test(piece) && changed.count() == before + (had ? 0 : 1));
        } else {
            changed.reset(piece);
            FUZZ_CHECK(!changed.test(piece) && changed.count() == before - (had ? 1 : 0));
        }
    }
    auto back = proto::Bitfield::from_bytes(changed.bytes(), changed.size());
    FUZZ_CHECK(back && *back == changed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    peerd::TransferRow row;
    row.id = in.ConsumeIntegral<std::int64_t>();
    row.name = in.ConsumeRandomLengthString(300);
    row.content_id = in.ConsumeRandomLengthString(80);
    row.size = in.ConsumeIntegral<std::int64_t>();
    row.piece_size = in.ConsumeIntegral<std::int64_t>();
    const auto pieces = in.ConsumeRandomLengthString(4096);
    row.pieces.assign(pieces.begin(), pieces.end());
    const auto have = in.ConsumeRandomLengthString(512);
    row.have.assign(have.begin(), have.end());
    row.destination = in.ConsumeRandomLengthString(200);
    row.partial_path = in.ConsumeRandomLengthString(200);
    row.sources = in.ConsumeRandomLengthString(1000);
    row.from = in.ConsumeRandomLengthString(100);
    row.id_prefix = in.ConsumeRandomLengthString(100);
    row.force = in.ConsumeIntegral<std::int64_t>();
    row.state = in.ConsumeRandomLengthString(20);
    row.error = in.ConsumeRandomLengthString(200);
    row.created_at = in.ConsumeIntegral<std::int64_t>();
    row.updated_at = in.ConsumeIntegral<std::int64_t>();

    peerd::TransferRecord record;
    if (auto why = peerd::read_transfer(row, record)) {
        FUZZ_CHECK(!why->empty());
        // The bitfield alone, against the piece count the row claims.
        const auto bits = proto::Bitfield::from_bytes(row.have, static_cast<std::uint64_t>(row.have.size()) * 8 -
                                                                    in.ConsumeIntegralInRange<std::uint64_t>(0, 7));
        if (bits) check_bitfield(*bits, in);
        return 0;
    }
    FUZZ_CHECK(record.id > 0 && record.have.size() == record.pieces.size());
    FUZZ_CHECK(record.pieces.empty() || !record.content_id.empty());
    // What the record promises its readers (daemon/transfer_record.hpp): a valid name and
    // content id, absolute paths — no check in read_transfer can go without this failing.
    FUZZ_CHECK(!proto::check_name(record.name));
    FUZZ_CHECK(record.content_id.empty() || !proto::check_content_id(record.content_id));
    for (const auto* path : {&record.destination, &record.partial_path}) {
        FUZZ_CHECK(path->empty() || path->front() == '/');
    }
    peerd::TransferRecord again;
    FUZZ_CHECK(!peerd::read_transfer(peerd::to_row(record), again));
    FUZZ_CHECK(again == record);
    check_bitfield(record.have, in);
    return 0;
}
