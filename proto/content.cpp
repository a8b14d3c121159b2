// proto/content.cpp — piece layout, SHA-256 and content ids.
#include "proto/content.hpp"

#include "proto/limits.hpp"

namespace peershare::proto {

std::uint64_t choose_piece_size(std::uint64_t file_size) {
    std::uint64_t piece = 256 * 1024;
    while (piece < kMaxPieceSize && piece_count(file_size, piece) > kTargetMaxPieces) piece *= 2;
    return piece;
}

std::uint64_t piece_count(std::uint64_t file_size, std::uint64_t piece_size) {
    return file_size / piece_size + (file_size % piece_size != 0 ? 1 : 0);   // no overflow near 2^64
}

std::uint64_t piece_length(std::uint64_t file_size, std::uint64_t piece_size, std::uint64_t index) {
    const std::uint64_t start = index * piece_size;
    if (start >= file_size) return 0;
    return std::min(piece_size, file_size - start);
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr); }

void Sha256::update(std::span<const std::uint8_t> bytes) {
    EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size());
}

Digest Sha256::finish() {
    Digest d{};
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx_.get(), d.data(), &len);
    return d;
}

Digest sha256(std::span<const std::uint8_t> bytes) {
    Sha256 h;
    h.update(bytes);
    return h.finish();
}

Digest PieceList::content_id() const {
    Sha256 h;
    std::uint8_t be[8];
    for (int i = 0; i < 8; ++i) be[i] = static_cast<std::uint8_t>(piece_size >> (56 - 8 * i));
    h.update(be, sizeof be);
    for (const auto& p : pieces) h.update(p);
    return h.finish();
}

json PieceList::to_json() const {
    json list = json::array();
    for (const auto& p : pieces) list.push_back(to_hex(p));
    return {{"id", to_hex(content_id())}, {"size", size}, {"piece_size", piece_size},
            {"pieces", std::move(list)}};
}

Result<PieceList> PieceList::from_json(const json& j, std::string_view expected_id) {
    FieldReader r(j);
    PieceList list;
    list.size = r.number("size", 0, kMaxFileSize);
    list.piece_size = r.number("piece_size", kMinPieceSize, kMaxPieceSize);
    if (r.error()) return *r.error();
    const auto count = piece_count(list.size, list.piece_size);
    if (!j.contains("pieces") || !j["pieces"].is_array() || j["pieces"].size() != count) {
        return Error{ErrorCode::bad_request, "the piece list does not match the file size"};
    }
    list.pieces.reserve(count);
    for (const auto& p : j["pieces"]) {
        auto d = p.is_string() ? digest_from_hex(p.get_ref<const std::string&>()) : std::nullopt;
        if (!d) return Error{ErrorCode::bad_request, "a piece hash is not 64 hex digits"};
        list.pieces.push_back(*d);
    }
    if (to_hex(list.content_id()) != expected_id) {
        return Error{ErrorCode::bad_request, "the piece list does not hash to the content id"};
    }
    return list;
}

std::vector<std::uint8_t> pieces_blob(const std::vector<Digest>& pieces) {
    std::vector<std::uint8_t> out;
    out.reserve(pieces.size() * sizeof(Digest));
    for (const auto& d : pieces) out.insert(out.end(), d.begin(), d.end());
    return out;
}

Result<std::vector<Digest>> pieces_from_blob(std::span<const std::uint8_t> blob, std::uint64_t size,
                                             std::uint64_t piece_size, std::string_view content_id) {
    const auto bad = [](const char* why) { return Error{ErrorCode::bad_request, why}; };
    if (blob.size() % sizeof(Digest) != 0) return bad("the piece list is not whole digests");
    if (piece_size == 0) return bad("the piece size is 0");
    if (blob.size() / sizeof(Digest) != piece_count(size, piece_size)) {
        return bad("the piece list does not match the file size");
    }
    std::vector<Digest> out(blob.size() / sizeof(Digest));
    for (std::size_t i = 0; i < out.size(); ++i) {
        std::copy_n(blob.begin() + static_cast<std::ptrdiff_t>(i * sizeof(Digest)), sizeof(Digest), out[i].begin());
    }
    if (to_hex(PieceList{size, piece_size, out}.content_id()) != content_id) {
        return bad("the piece list does not hash to the content id");
    }
    return out;
}

}  // namespace peershare::proto
