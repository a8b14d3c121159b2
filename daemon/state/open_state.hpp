// daemon/state/open_state.hpp — what peerd does with its state directory at
// start: create it (0700), open STATE_DIR/state.db (a damaged one moved
// aside), import the JSON files of older versions, and read the peer key,
// the publications and the transfers. Runs on the loop before it serves anything.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/log.hpp"
#include "daemon/state/state_db.hpp"

namespace peershare::peerd {

inline constexpr const char* kStateFile = "state.db";

struct OpenedState {
    std::shared_ptr<StateDb> db;
    std::string peer_key;
    std::vector<Publication> publications;
    std::vector<TransferRecord> transfers;   // for the transfer registry to resume
    std::uint64_t next_transfer_id = 1;      // for StateWriter
};

// Every note (a damaged file moved aside, an import, a row skipped because it
// does not hold a valid record) is one line on `log`; the other rows are kept. Errors: the directory cannot be made or written (a
// read-only file system, permissions), the database cannot be made or read
// (a full disk), ErrorCode::internal; each message names the path.
proto::Result<OpenedState> open_state(const std::string& dir, const common::Log& log);

}  // namespace peershare::peerd
