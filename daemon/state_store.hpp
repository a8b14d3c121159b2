// daemon/state_store.hpp — peerd's persisted state in its state directory:
// the peer key (its identity at the tracker, so a restart takes its name
// back) and the publications. Every write is atomic (write a temporary file,
// fsync, rename, fsync the directory): a crash leaves the old or the new
// state, never a torn one.
#pragma once

#include <string>
#include <vector>

#include "daemon/catalog.hpp"
#include "proto/errors.hpp"

namespace peershare::peerd {

class StateStore {
public:
    explicit StateStore(std::string dir) : dir_(std::move(dir)) {}

    // Creates the directory (0700) if missing.
    proto::Result<bool> open();
    // The persisted key, or a new random one persisted now.
    proto::Result<std::string> peer_key();
    proto::Result<std::vector<Publication>> load_publications() const;
    // Serialises on the caller's thread; the write itself may run anywhere.
    static std::string serialize(const Catalog& catalog);
    proto::Result<bool> write_publications(const std::string& contents) const;
    const std::string& dir() const { return dir_; }

private:
    std::string dir_;
};

// Writes `contents` to `path` atomically with `mode`.
proto::Result<bool> write_file_atomically(const std::string& path, const std::string& contents, int mode);

}  // namespace peershare::peerd
