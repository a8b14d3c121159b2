// tests/fuzz/piece_list.cpp — the piece list a source serves at
// /v1/files/<id>/pieces, checked against the content id the tracker gave
// (PieceList::from_json), and its storage form (pieces_from_blob). The id
// expected is the list's own "id" field when it has one (so lists that hash
// right are reached), else an id of zeros. Invariants: an accepted list hashes
// to the expected id, has one digest per piece of its size, its pieces cover
// the file exactly; it re-encodes (to_json, pieces_blob) to forms accepted
// back equal.
// Seeds: tests/fuzz/corpus/piece_list/, lists served in the suite.
#include <string>

#include "proto/content.hpp"
#include "proto/limits.hpp"
#include "tests/fuzz/check.hpp"

using namespace peershare::proto;
using peershare::fuzz::as_text;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto j = json::parse(as_text(data, size), nullptr, false);
    if (j.is_discarded()) return 0;
    std::string expected(64, '0');
    if (j.is_object() && j.contains("id") && j["id"].is_string()) expected = j["id"].get<std::string>();

    auto list = PieceList::from_json(j, expected);
    if (!list) return 0;
    FUZZ_CHECK(to_hex(list->content_id()) == expected);
    FUZZ_CHECK(list->piece_size >= kMinPieceSize && list->piece_size <= kMaxPieceSize);
    FUZZ_CHECK(list->size <= kMaxFileSize);
    const auto count = piece_count(list->size, list->piece_size);
    FUZZ_CHECK(list->pieces.size() == count);
    std::uint64_t covered = 0;
    for (std::uint64_t i = 0; i < count; ++i) {
        const auto len = piece_length(list->size, list->piece_size, i);
        FUZZ_CHECK(len >= 1 && len <= list->piece_size);
        covered += len;
    }
    FUZZ_CHECK(covered == list->size);
    FUZZ_CHECK(piece_length(list->size, list->piece_size, count) == 0);

    const auto again = PieceList::from_json(list->to_json(), expected);
    FUZZ_CHECK(again && again->pieces == list->pieces && again->size == list->size &&
               again->piece_size == list->piece_size);
    const auto blob = pieces_blob(list->pieces);
    const auto stored = pieces_from_blob(blob, list->size, list->piece_size, expected);
    FUZZ_CHECK(stored && *stored == list->pieces);
    // A list that is one digest short, or checked against another id, is refused.
    if (!blob.empty()) {
        FUZZ_CHECK(!pieces_from_blob(std::span(blob).first(blob.size() - 32), list->size, list->piece_size, expected));
    }
    std::string other = expected;
    other[0] = other[0] == '0' ? '1' : '0';
    FUZZ_CHECK(!PieceList::from_json(j, other));
    return 0;
}
