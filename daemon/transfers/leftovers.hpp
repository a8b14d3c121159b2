// daemon/transfers/leftovers.hpp — partial files that no transfer owns: left
// by an older peerd (`.NAME.peershare-part-XXXXXX`, random suffix) or by a
// state database that was lost. Blocking file-system calls: run them in the
// worker pool.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "daemon/fetch/partial_file.hpp"   // partial_path_for
#include "proto/transfers.hpp"

namespace peershare::peerd {

// Partial files in `dirs` (any `.*.peershare-part` or `.*.peershare-part-*`
// regular file) that are not in `owned` and that no one is writing (another
// peerd's live transfer holds its writer lock: lock_writer), sorted by path.
// Unreadable directories are skipped.
std::vector<proto::Leftover> find_leftovers(const std::set<std::string>& dirs, const std::set<std::string>& owned);

// Before a new transfer to `destination` starts: if its stable partial file
// exists, true (the engine adopts it after verifying every piece). Otherwise,
// if a partial file of an older peerd for the same destination exists
// (`.<basename>.peershare-part-XXXXXX`), it is renamed to the stable name and
// true is returned. False when there is nothing to adopt.
bool take_leftover(const std::string& destination);

}  // namespace peershare::peerd
