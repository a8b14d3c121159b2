// daemon/state/state_db.hpp — peerd's state in one SQLite database
// (STATE_DIR/state.db): the peer key, one row per publication (its piece list
// as a BLOB of 32-byte SHA-256 digests) and one row per transfer (its
// verified-piece bitfield as a BLOB, proto::Bitfield::bytes()), the schema
// version in PRAGMA user_version (https://sqlite.org/pragma.html).
//
// Synchronous and thread-safe: every call takes the connection's mutex, so
// libuv's worker threads may call it (StateWriter does); the loop calls it
// only at start-up. Durability: WAL journal with synchronous=FULL
// (https://sqlite.org/wal.html): a committed write survives a crash of peerd
// *and* a power loss; NORMAL would survive a crash of peerd only, and would
// save one fsync per write, which the worker pool pays, not the loop.
//
// Damage: a file that is empty, not a database, fails PRAGMA quick_check or
// has a newer schema version is never used nor deleted: it is renamed to
// FILE.broken-UNIXTIME (its -wal and -shm beside it likewise) and a fresh
// database takes its place; open() says so in one line.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/catalog.hpp"
#include "daemon/state/sqlite.hpp"
#include "daemon/state/write_queue.hpp"
#include "daemon/transfer_record.hpp"
#include "proto/errors.hpp"

namespace peershare::peerd {

inline constexpr int kStateSchemaVersion = 2;   // 2: publications.origin, transfers.share (issue 10)

// Rows read back, and one line per row that was skipped because it does not
// hold a valid record ("transfer 7: its have bitfield …"); the rest are kept.
template <class T>
struct LoadedRows {
    std::vector<T> rows;
    std::vector<std::string> skipped;
};

class StateDb {
public:
    // Opens the database at `path`, creating it (mode 0600; it is first
    // written under PATH.new and renamed, so no half-made database ever has
    // the final name). A damaged file is moved aside as described above and
    // `note` says so ("PATH: not a database (…); moved it aside to … and
    // started fresh"); else `note` is left empty. Errors: a file that cannot
    // be read or written (permissions, a full disk), ErrorCode::internal.
    static proto::Result<std::unique_ptr<StateDb>> open(const std::string& path, std::string& note);

    StateDb(const StateDb&) = delete;
    StateDb& operator=(const StateDb&) = delete;

    const std::string& path() const { return path_; }

    // The peer key (64 hex digits), made at random and stored the first time.
    proto::Result<std::string> peer_key();
    // Stores `key` as the peer key unless one is stored; returns the one kept.
    proto::Result<std::string> adopt_peer_key(const std::string& key);

    proto::Result<LoadedRows<Publication>> load_publications();
    proto::Result<LoadedRows<TransferRecord>> load_transfers();
    // The smallest transfer id never handed out: above every stored transfer
    // and every ReserveTransferIds written. At least 1.
    proto::Result<std::uint64_t> first_free_transfer_id();

    // Applies `writes` in order in one transaction: all or none.
    proto::Result<bool> apply(const std::vector<StateWrite>& writes);
    proto::Result<bool> apply(const StateWrite& write) { return apply(std::vector<StateWrite>{write}); }

private:
    struct Key {   // only open() makes a StateDb
        explicit Key() = default;
    };

public:
    StateDb(Key, sqlite::Database db, std::string path) : db_(std::move(db)), path_(std::move(path)) {}

private:
    proto::Result<bool> apply_one(const StateWrite& write);
    proto::Result<std::string> meta(const std::string& key);
    proto::Result<bool> set_meta(const std::string& key, const std::string& value);

    std::mutex mutex_;
    sqlite::Database db_;
    std::string path_;
    std::map<const char*, sqlite::Statement> statements_;   // apply()'s, by their SQL; after db_
};

}  // namespace peershare::peerd
