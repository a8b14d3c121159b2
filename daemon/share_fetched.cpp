// daemon/share_fetched.cpp — see share_fetched.hpp.
#include "daemon/share_fetched.hpp"

#include <cassert>

#include "proto/content.hpp"
#include "proto/hex.hpp"

namespace peershare::peerd {

using proto::Error;
using proto::ErrorCode;

namespace {

// What a transfer's publication and its partial holding share.
Publication from_transfer(const TransferRecord& r, const std::string& path) {
    Publication p;
    p.name = r.name;
    p.path = path;
    p.size = r.size;
    p.id = r.content_id;
    p.piece_size = r.piece_size;
    p.pieces = r.pieces;
    p.origin = Publication::Origin::fetched;
    return p;
}

}  // namespace

Publication partial_holding(const TransferRecord& r) {
    Publication p = from_transfer(r, r.partial_path);
    p.have = r.have;
    return p;
}

void hold_completed(Catalog& catalog, const TransferRecord& done) {
    assert(done.have.size() == done.pieces.size() && done.have.all());
    Publication stand_in = from_transfer(done, done.destination);
    stand_in.have = done.have;
    catalog.put_partial(std::move(stand_in));
}

void release_completed(Catalog& catalog, const TransferRecord& done) {
    catalog.remove_partial_at(done.content_id, done.destination);
}

proto::Result<Publication> fetched_publication(const TransferRecord& done, const FileStamp& on_disk) {
    const proto::PieceList list{done.size, done.piece_size, done.pieces};
    if (done.piece_size == 0 || done.pieces.size() != proto::piece_count(done.size, done.piece_size) ||
        proto::to_hex(list.content_id()) != done.content_id) {
        return Error{ErrorCode::bad_request, "its piece list does not match its content id"};
    }
    if (on_disk.size != done.size) {
        return Error{ErrorCode::bad_request, done.destination + " is " + std::to_string(on_disk.size) +
                                                 " bytes, not the " + std::to_string(done.size) + " fetched"};
    }
    Publication p = from_transfer(done, done.destination);
    p.mtime_ns = on_disk.mtime_ns;
    return p;
}

std::optional<std::string> share_conflict(const Publication* current, const TransferRecord& done) {
    if (!current || current->origin != Publication::Origin::published || current->id == done.content_id) {
        return std::nullopt;
    }
    return "this peer publishes another content as '" + done.name + "' (" + current->path + ")";
}

bool worth_announcing(std::uint64_t before, std::uint64_t now, std::uint64_t pieces) {
    if (now == 0 || now >= pieces) return false;   // nothing to offer, or complete (done is near)
    if (before == 0) return true;
    return now * 10 / pieces > before * 10 / pieces;
}

}  // namespace peershare::peerd
