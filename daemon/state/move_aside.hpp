// daemon/state/move_aside.hpp — keeping a user's file out of the way without
// ever deleting or replacing one: a damaged database, an imported state file.
#pragma once

#include <string>

#include "proto/errors.hpp"

namespace peershare::peerd {

// Renames `path` to PATH+SUFFIX, or PATH+SUFFIX.2, .3, … — the first name no
// file has (renameat2 with RENAME_NOREPLACE, man 2 rename) — and syncs the
// directory. Returns the new name; ErrorCode::internal with errno's words.
proto::Result<std::string> move_aside(const std::string& path, const std::string& suffix);

// fsync(2) of the directory holding `path`, so a rename or creation in it is durable.
void sync_parent_dir(const std::string& path);

}  // namespace peershare::peerd
