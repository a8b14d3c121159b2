// proto/content.hpp — content ids and piece hashing (docs/design.md,
// "Integrity and names"). A file is cut into pieces of a fixed size chosen from
// its length; its content id is the SHA-256 over the piece size (8 bytes,
// big-endian) followed by the SHA-256 of every piece in order. Peers serve the
// piece list; a downloader checks it against the id, then every piece against
// the list.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "proto/errors.hpp"
#include "proto/fields.hpp"
#include "proto/hex.hpp"

namespace peershare::proto {

inline constexpr std::uint64_t kTargetMaxPieces = 2048;

// Smallest power of two from 256 KiB to 16 MiB that keeps the file within
// kTargetMaxPieces pieces (larger files get more pieces of 16 MiB).
std::uint64_t choose_piece_size(std::uint64_t file_size);
std::uint64_t piece_count(std::uint64_t file_size, std::uint64_t piece_size);
// Byte length of piece `index` (the last one may be short).
std::uint64_t piece_length(std::uint64_t file_size, std::uint64_t piece_size, std::uint64_t index);

// Incremental SHA-256 over OpenSSL's EVP interface.
class Sha256 {
public:
    Sha256();
    void update(std::span<const std::uint8_t> bytes);
    void update(const void* data, std::size_t size) {
        update({static_cast<const std::uint8_t*>(data), size});
    }
    Digest finish();

private:
    struct Free {
        void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
    };
    std::unique_ptr<EVP_MD_CTX, Free> ctx_;
};

Digest sha256(std::span<const std::uint8_t> bytes);

// What a peer serves at /v1/files/<id>/pieces.
struct PieceList {
    std::uint64_t size = 0;
    std::uint64_t piece_size = 0;
    std::vector<Digest> pieces;

    Digest content_id() const;
    json to_json() const;   // {"id", "size", "piece_size", "pieces": [hex...]}
    // Parses and checks that the list is consistent with its size and that it
    // hashes to `expected_id`: a lying source is caught here.
    static Result<PieceList> from_json(const json& j, std::string_view expected_id);
};

// The storage form of a piece list (peerd's state database): the digests back
// to back, 32 bytes each, in piece order.
std::vector<std::uint8_t> pieces_blob(const std::vector<Digest>& pieces);
// The digests of `blob` for a file of `size` bytes in pieces of `piece_size`,
// checked to be whole digests, one per piece, hashing to `content_id` (hex);
// else ErrorCode::bad_request saying which ("the piece list does not hash to
// the content id").
Result<std::vector<Digest>> pieces_from_blob(std::span<const std::uint8_t> blob, std::uint64_t size,
                                             std::uint64_t piece_size, std::string_view content_id);

}  // namespace peershare::proto
