// daemon/state/json_import.hpp — peerd's state files from before the
// database (STATE_DIR/peer.key: 64 hex digits and a newline;
// STATE_DIR/publications.json: {"version": 1, "publications": [...]}) taken
// into the database on the first start that finds them, then kept as backups
// under NAME.imported (never deleted or overwritten; move_aside). A
// publication that does not check out is skipped with a line saying why; a
// file that is not valid JSON is imported as nothing and moved aside as
// NAME.broken-UNIXTIME.
#pragma once

#include <string>
#include <vector>

#include "daemon/state/state_db.hpp"
#include "proto/errors.hpp"

namespace peershare::peerd {

// Imports what `dir` holds into `db` (one transaction), then renames the
// files. Returns one line per thing done or skipped, for the log (none when
// there was nothing to import). Errors: the database could not be written or
// a file not renamed (it is then imported again at the next start, which
// changes nothing).
proto::Result<std::vector<std::string>> import_json_state(const std::string& dir, StateDb& db);

}  // namespace peershare::peerd
