// daemon/state/state_db.cpp — see state_db.hpp.
#include "daemon/state/state_db.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "daemon/state/move_aside.hpp"
#include "proto/content.hpp"
#include "proto/names.hpp"

namespace peershare::peerd {

using proto::Error;
using proto::ErrorCode;

namespace {

constexpr int kBusyTimeoutMs = 5000;   // another connection mid-write (a second peerd on the same dir)

constexpr const char* kSchema = R"(
CREATE TABLE meta(key TEXT PRIMARY KEY NOT NULL, value NOT NULL) WITHOUT ROWID;
CREATE TABLE publications(
    name TEXT PRIMARY KEY NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    content_id TEXT NOT NULL, piece_size INTEGER NOT NULL, pieces BLOB NOT NULL, published_at INTEGER NOT NULL,
    origin TEXT NOT NULL DEFAULT 'published'
) WITHOUT ROWID;
CREATE TABLE transfers(
    id INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL, content_id TEXT NOT NULL, size INTEGER NOT NULL,
    piece_size INTEGER NOT NULL, pieces BLOB NOT NULL, have BLOB NOT NULL, destination TEXT NOT NULL,
    partial_path TEXT NOT NULL, sources TEXT NOT NULL, from_peer TEXT NOT NULL, id_prefix TEXT NOT NULL,
    force INTEGER NOT NULL, state TEXT NOT NULL, error TEXT NOT NULL, created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL, share INTEGER NOT NULL DEFAULT 1
);
PRAGMA user_version = 2;
)";
static_assert(kStateSchemaVersion == 2, "kSchema writes user_version 2");

// Version 1 → 2 (issue 10): how a publication came to be, and whether a
// transfer shares its file once done. Rows of version 1 were published by
// their user and had no --no-share.
constexpr const char* kUpgradeFrom1 = R"(
ALTER TABLE publications ADD COLUMN origin TEXT NOT NULL DEFAULT 'published';
ALTER TABLE transfers ADD COLUMN share INTEGER NOT NULL DEFAULT 1;
PRAGMA user_version = 2;
)";

constexpr const char* kPeerKey = "peer_key";

Error io_error(const std::string& what) { return Error{ErrorCode::internal, what + ": " + std::strerror(errno)}; }

std::string random_key() {
    std::random_device rd;   // the kernel's CSPRNG on Linux
    std::array<std::uint8_t, 32> bytes{};
    for (auto& b : bytes) b = static_cast<std::uint8_t>(rd());
    return proto::to_hex(bytes);
}

// Opens an existing database for use: WAL, synchronous=FULL, checked. On
// damage, `damage` says what is wrong (and the error is returned too).
proto::Result<sqlite::Database> open_existing(const std::string& path, std::string& damage) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return io_error("cannot read " + path);
    if (st.st_size == 0) {
        damage = "empty";
        return Error{ErrorCode::internal, path + " is empty"};
    }
    sqlite::Failure failure;
    auto db = sqlite::Database::open(path, SQLITE_OPEN_READWRITE, failure);
    if (!db) {
        if (failure.damage()) damage = failure.message;
        return db.error();
    }
    // Each step either answers or fails; a failure that is damage (not a
    // database, corrupt) is told apart from one that is not (I/O, permissions).
    const auto fail = [&](std::string_view what) -> proto::Result<sqlite::Database> {
        auto f = db->failure(what);
        if (f.damage()) damage = std::string(sqlite3_errmsg(db->get()));
        return f.error();
    };
    auto version = db->query_text("PRAGMA user_version");
    if (!version) return fail("PRAGMA user_version");
    const int v = std::atoi(version->c_str());
    if (v > kStateSchemaVersion) {
        damage = "written by a newer peerd (schema version " + *version + "; this peerd knows " +
                 std::to_string(kStateSchemaVersion) + ")";
        return Error{ErrorCode::internal, path + ": " + damage};
    }
    if (v < 1) {
        damage = "not a peerd state database (schema version " + *version + ")";
        return Error{ErrorCode::internal, path + ": " + damage};
    }
    auto mode = db->query_text("PRAGMA journal_mode=WAL");
    if (!mode) return fail("PRAGMA journal_mode=WAL");
    if (*mode != "wal") return Error{ErrorCode::internal, path + ": cannot use WAL journal (" + *mode + ")"};
    auto check = db->query_text("PRAGMA quick_check");
    if (!check) return fail("PRAGMA quick_check");
    if (*check != "ok") {
        damage = "fails PRAGMA quick_check (" + *check + ")";
        return Error{ErrorCode::internal, path + ": " + damage};
    }
    if (auto ok = db->exec("PRAGMA synchronous=FULL"); !ok) return ok.error();
    sqlite3_busy_timeout(db->get(), kBusyTimeoutMs);
    if (v == 1) {
        auto tx = sqlite::Transaction::begin(*db);
        if (!tx) return tx.error();
        if (auto ok = db->exec(kUpgradeFrom1); !ok) return ok.error();
        if (auto ok = tx->commit(); !ok) return ok.error();
    }
    return db;
}

// Makes a new database at `path`: schema written under PATH.new, then renamed.
proto::Result<bool> create_fresh(const std::string& path) {
    const std::string tmp = path + ".new";
    // Our own leftovers from a start that died while creating; nobody else's.
    ::unlink(tmp.c_str());
    ::unlink((tmp + "-journal").c_str());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return io_error("cannot create " + tmp);
    ::close(fd);
    {
        sqlite::Failure failure;
        auto db = sqlite::Database::open(tmp, SQLITE_OPEN_READWRITE, failure);
        if (!db) return db.error();
        if (auto ok = db->exec("PRAGMA synchronous=FULL"); !ok) return ok.error();
        auto tx = sqlite::Transaction::begin(*db);
        if (!tx) return tx.error();
        if (auto ok = db->exec(kSchema); !ok) return ok.error();
        if (auto ok = tx->commit(); !ok) return ok.error();
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) return io_error("cannot rename " + tmp + " to " + path);
    sync_parent_dir(path);
    return true;
}

// Moves a damaged database and its -wal and -shm aside under one name.
proto::Result<std::string> move_damaged(const std::string& path) {
    auto moved = move_aside(path, ".broken-" + std::to_string(std::time(nullptr)));
    if (!moved) return moved;
    for (const char* companion : {"-wal", "-shm"}) {
        const std::string from = path + companion;
        if (::access(from.c_str(), F_OK) != 0) continue;
        // Beside the moved copy under its name, so SQLite opens them together.
        if (::rename(from.c_str(), (*moved + companion).c_str()) != 0) {
            return io_error("cannot rename " + from);
        }
    }
    return moved;
}

// ---- rows ----

// Checks a stored piece list against its file size and content id; why not, or nothing.
std::optional<std::string> read_pieces(const std::vector<std::uint8_t>& blob, std::uint64_t size,
                                       std::uint64_t piece_size, const std::string& content_id,
                                       std::vector<proto::Digest>& out) {
    auto pieces = proto::pieces_from_blob(blob, size, piece_size, content_id);
    if (!pieces) return pieces.error().message;
    out = std::move(*pieces);
    return std::nullopt;
}

// A publication row (the columns of kSelectPublications) as a Publication, or why not.
std::optional<std::string> read_publication(const sqlite::Statement& row, Publication& p) {
    p.name = row.text(0);
    p.path = row.text(1);
    const auto size = row.integer(2), mtime = row.integer(3), piece_size = row.integer(5), at = row.integer(7);
    p.id = row.text(4);
    if (auto why = proto::check_name(p.name)) return "its name: " + *why;
    if (p.path.empty() || p.path.front() != '/') return "its path is not absolute";
    if (auto why = proto::check_content_id(p.id)) return "its content id: " + *why;
    for (auto [v, what] : {std::pair{size, "its size"}, {mtime, "its mtime"}, {piece_size, "its piece size"},
                           {at, "its publication time"}}) {
        if (auto why = check_stored_integer(v, what)) return why;
    }
    p.size = static_cast<std::uint64_t>(size);
    p.mtime_ns = mtime;
    p.piece_size = static_cast<std::uint64_t>(piece_size);
    p.published_at = at;
    const auto origin = parse_origin(row.text(8));
    if (!origin) return "its origin '" + row.text(8) + "' is unknown";
    p.origin = *origin;
    return read_pieces(row.blob(6), p.size, p.piece_size, p.id, p.pieces);
}

// A transfer row (the columns of kSelectTransfers) as a TransferRecord, or why not.
std::optional<std::string> read_transfer(const sqlite::Statement& row, TransferRecord& t) {
    return peerd::read_transfer(
        TransferRow{row.integer(0), row.text(1), row.text(2), row.integer(3), row.integer(4), row.blob(5),
                    row.blob(6), row.text(7), row.text(8), row.text(9), row.text(10), row.text(11),
                    row.integer(12), row.text(13), row.text(14), row.integer(15), row.integer(16),
                    row.integer(17)},
        t);
}

template <class... F>
struct Overload : F... {
    using F::operator()...;
};

}  // namespace

proto::Result<std::unique_ptr<StateDb>> StateDb::open(const std::string& path, std::string& note) {
    note.clear();
    if (::access(path.c_str(), F_OK) == 0) {
        std::string damage;
        auto db = open_existing(path, damage);
        if (db) return std::make_unique<StateDb>(Key{}, std::move(*db), path);
        if (damage.empty()) return db.error();
        auto moved = move_damaged(path);
        if (!moved) return moved.error();
        note = path + ": " + damage + "; moved it aside to " + *moved + " and started fresh";
    } else if (errno != ENOENT) {
        return io_error("cannot read " + path);
    }
    if (auto ok = create_fresh(path); !ok) return ok.error();
    std::string damage;
    auto db = open_existing(path, damage);
    if (!db) return db.error();
    return std::make_unique<StateDb>(Key{}, std::move(*db), path);
}

proto::Result<std::string> StateDb::meta(const std::string& key) {
    auto stmt = db_.prepare("SELECT value FROM meta WHERE key = ?1");
    if (!stmt) return stmt.error();
    stmt->bind(1, key);
    auto row = stmt->step();
    if (!row) return row.error();
    return *row ? stmt->text(0) : std::string();
}

proto::Result<bool> StateDb::set_meta(const std::string& key, const std::string& value) {
    auto stmt = db_.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)");
    if (!stmt) return stmt.error();
    return stmt->bind(1, key).bind(2, value).run();
}

proto::Result<std::string> StateDb::peer_key() { return adopt_peer_key(random_key()); }

proto::Result<std::string> StateDb::adopt_peer_key(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto tx = sqlite::Transaction::begin(db_);
    if (!tx) return tx.error();
    auto stored = meta(kPeerKey);
    if (!stored) return stored.error();
    if (!stored->empty()) {
        if (auto why = proto::check_peer_key(*stored)) {
            return Error{ErrorCode::internal, path_ + ": the stored peer key is invalid (" + *why +
                                                  "); move the file away to make a new identity"};
        }
        return *stored;
    }
    if (auto ok = set_meta(kPeerKey, key); !ok) return ok.error();
    if (auto ok = tx->commit(); !ok) return ok.error();
    return key;
}

namespace {

// Every row of `sql` read by `read` (T, or why not); `describe` names a
// skipped row for its line.
template <class T>
proto::Result<LoadedRows<T>> load_rows(sqlite::Database& db, std::string_view sql,
                                       std::optional<std::string> (*read)(const sqlite::Statement&, T&),
                                       std::string (*describe)(const sqlite::Statement&)) {
    auto stmt = db.prepare(sql);
    if (!stmt) return stmt.error();
    LoadedRows<T> out;
    for (;;) {
        auto row = stmt->step();
        if (!row) return row.error();
        if (!*row) return out;
        T item;
        if (auto why = read(*stmt, item)) {
            out.skipped.push_back(describe(*stmt) + " skipped: " + *why);
            continue;
        }
        out.rows.push_back(std::move(item));
    }
}

}  // namespace

proto::Result<LoadedRows<Publication>> StateDb::load_publications() {
    std::lock_guard lock(mutex_);
    return load_rows<Publication>(
        db_, "SELECT name, path, size, mtime_ns, content_id, piece_size, pieces, published_at, origin FROM publications "
        "ORDER BY name",
        read_publication, [](const sqlite::Statement& row) { return "publication '" + row.text(0) + "'"; });
}

proto::Result<LoadedRows<TransferRecord>> StateDb::load_transfers() {
    std::lock_guard lock(mutex_);
    return load_rows<TransferRecord>(
        db_,
        "SELECT id, name, content_id, size, piece_size, pieces, have, destination, partial_path, sources, "
        "from_peer, id_prefix, force, state, error, created_at, updated_at, share FROM transfers ORDER BY id",
        read_transfer, [](const sqlite::Statement& row) {
            return "transfer " + std::to_string(row.integer(0)) + " ('" + row.text(1) + "')";
        });
}

proto::Result<std::uint64_t> StateDb::first_free_transfer_id() {
    std::lock_guard lock(mutex_);
    auto stmt = db_.prepare(
        "SELECT max(1, coalesce((SELECT max(id) + 1 FROM transfers), 1), "
        "coalesce((SELECT value FROM meta WHERE key = 'next_transfer_id'), 1))");
    if (!stmt) return stmt.error();
    auto row = stmt->step();
    if (!row) return row.error();
    return static_cast<std::uint64_t>(stmt->integer(0));
}

proto::Result<bool> StateDb::apply(const std::vector<StateWrite>& writes) {
    std::lock_guard lock(mutex_);
    auto tx = sqlite::Transaction::begin(db_);
    if (!tx) return tx.error();
    for (const auto& w : writes) {
        if (auto ok = apply_one(w); !ok) return ok.error();
    }
    return tx->commit();
}

proto::Result<bool> StateDb::apply_one(const StateWrite& write) {
    // One statement per kind of write, prepared once per call: a batch of
    // 10,000 rows costs 10,000 steps, not 10,000 prepares.
    const auto run = [this](const char* sql, const std::function<void(sqlite::Statement&)>& bind)
        -> proto::Result<bool> {
        auto& stmt = statements_[sql];
        if (!stmt.prepared()) {
            auto made = db_.prepare(sql);
            if (!made) return made.error();
            stmt = std::move(*made);
        }
        bind(stmt);
        auto ok = stmt.run();
        stmt.reset();
        return ok;
    };
    return std::visit(
        Overload{
            [&](const PutPublication& w) {
                const Publication& p = w.publication;
                return run("INSERT OR REPLACE INTO publications VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                           [&](sqlite::Statement& s) {
                               s.bind(1, p.name).bind(2, p.path).bind(3, static_cast<std::int64_t>(p.size));
                               s.bind(4, p.mtime_ns).bind(5, p.id).bind(6, static_cast<std::int64_t>(p.piece_size));
                               s.bind_blob(7, proto::pieces_blob(p.pieces)).bind(8, p.published_at);
                               s.bind(9, to_string(p.origin));
                           });
            },
            [&](const RemovePublication& w) {
                return run("DELETE FROM publications WHERE name = ?1",
                           [&](sqlite::Statement& s) { s.bind(1, w.name); });
            },
            [&](const PutTransfer& w) {
                const TransferRecord& t = w.record;   // stored as to_row(t)
                return run(
                    "INSERT OR REPLACE INTO transfers VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                    "?13, ?14, ?15, ?16, ?17, ?18)",
                    [&](sqlite::Statement& s) {
                        const TransferRow r = to_row(t);
                        s.bind(1, r.id).bind(2, r.name).bind(3, r.content_id).bind(4, r.size).bind(5, r.piece_size);
                        s.bind_blob(6, r.pieces).bind_blob(7, r.have).bind(8, r.destination);
                        s.bind(9, r.partial_path).bind(10, r.sources).bind(11, r.from).bind(12, r.id_prefix);
                        s.bind(13, r.force).bind(14, r.state).bind(15, r.error).bind(16, r.created_at);
                        s.bind(17, r.updated_at).bind(18, r.share);
                    });
            },
            [&](const TransferProgress& w) {
                return run("UPDATE transfers SET have = ?2, state = ?3, error = ?4, updated_at = ?5 WHERE id = ?1",
                           [&](sqlite::Statement& s) {
                               s.bind(1, static_cast<std::int64_t>(w.id)).bind_blob(2, w.have.bytes());
                               s.bind(3, to_string(w.state)).bind(4, w.error).bind(5, w.updated_at);
                           });
            },
            [&](const RemoveTransfer& w) {
                return run("DELETE FROM transfers WHERE id = ?1",
                           [&](sqlite::Statement& s) { s.bind(1, static_cast<std::int64_t>(w.id)); });
            },
            [&](const ReserveTransferIds& w) {
                return run(
                    "INSERT INTO meta(key, value) VALUES('next_transfer_id', ?1) "
                    "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
                    [&](sqlite::Statement& s) { s.bind(1, static_cast<std::int64_t>(w.next)); });
            },
        },
        write);
}

}  // namespace peershare::peerd
