// daemon/share_fetched.hpp — a completed transfer as a publication (issue 10:
// every peer that fetches a file helps serve it). The file was verified piece
// by piece on its way in, so it is published from its destination without
// being hashed again; only its size and mtime are taken (by the caller, in the
// worker pool), so that a later change on disk stops it being served as for
// any publication (docs/protocol.md §11.6). Pure: no I/O.
#pragma once

#include <optional>
#include <string>

#include "daemon/catalog.hpp"
#include "daemon/hasher.hpp"
#include "daemon/transfer_record.hpp"
#include "proto/errors.hpp"

namespace peershare::peerd {

// The publication of a done transfer's file under the transfer's name, with
// origin `fetched`, given the file's stamp now (published_at is left 0 for the
// publisher to set). Errors (bad_request, with a one-line reason): the record
// has no piece list matching its content id, or the file on disk does not
// have the transfer's size (it changed since it was renamed into place).
proto::Result<Publication> fetched_publication(const TransferRecord& done, const FileStamp& on_disk);

// A running or stopped transfer's verified pieces as a partial holding
// (Catalog::put_partial): served from its partial file, origin `fetched`.
Publication partial_holding(const TransferRecord& r);

// The two steps of a shared transfer's completion on the loop thread, so that
// its content id is never answered 404 in between (a fetcher drops a source
// for a 404): the partial file is renamed into place when the transfer is
// done, but the publication follows only once the file's stat is back from
// the worker pool.
// - hold_completed, when the transfer is done (before the stat): a stand-in
//   holding takes the place of the partial holding, served from the
//   destination with every piece (Catalog::holding prefers a publication).
//   `done.have` must be full.
// - release_completed, in the stat's callback, after the publication was put
//   (or found impossible): the stand-in leaves, unless another holding of
//   that content took its place meanwhile.
void hold_completed(Catalog& catalog, const TransferRecord& done);
void release_completed(Catalog& catalog, const TransferRecord& done);

// Why a fetched file must not replace what this peer already publishes under
// its name (the user's own publication of another content), or nothing.
std::optional<std::string> share_conflict(const Publication* current, const TransferRecord& done);

// Whether a partial holding that held `before` verified pieces (0: not yet
// announced) and now holds `now` of `pieces` is worth a new announcement to
// the tracker: the first piece, then every further tenth of the file, so a
// transfer announces itself about ten times, not once per second.
bool worth_announcing(std::uint64_t before, std::uint64_t now, std::uint64_t pieces);

}  // namespace peershare::peerd
