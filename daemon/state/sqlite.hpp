// daemon/state/sqlite.hpp — a thin RAII layer over SQLite's C API
// (https://sqlite.org/c3ref/intro.html) for peerd's state database: a
// connection, a prepared statement, a transaction. Errors come back as
// proto::Result with SQLite's own words (sqlite3_errmsg); nothing throws.
// A Database is not locked here: its owner (StateDb) serialises use.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/errors.hpp"

namespace peershare::peerd::sqlite {

// An error that says what we tried, SQLite's message, and its extended code.
struct Failure {
    int code = SQLITE_OK;      // extended result code (sqlite3_extended_errcode)
    std::string message;
    proto::Error error() const { return {proto::ErrorCode::internal, message}; }
    // The file is not a database or is corrupt (SQLITE_NOTADB, SQLITE_CORRUPT):
    // damage, as opposed to a file we may not read or a full disk.
    bool damage() const;
};

template <class T>
using Result = proto::Result<T>;

class Statement {
public:
    Statement() = default;
    explicit Statement(sqlite3_stmt* s) : stmt_(s) {}

    // Parameters are 1-based (sqlite3_bind_*); text and blobs are copied
    // (SQLITE_TRANSIENT), so the caller's buffers need not outlive the call.
    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, std::string_view text);
    Statement& bind_blob(int index, std::span<const std::uint8_t> bytes);

    // One sqlite3_step: true with a row to read, false when done; the error
    // (SQLite's message) otherwise.
    Result<bool> step();
    // step() until done, for statements without rows.
    Result<bool> run();
    void reset();
    bool prepared() const { return stmt_ != nullptr; }

    // Columns are 0-based; the accessors copy.
    int type(int column) const { return sqlite3_column_type(stmt_.get(), column); }
    std::int64_t integer(int column) const { return sqlite3_column_int64(stmt_.get(), column); }
    std::string text(int column) const;
    std::vector<std::uint8_t> blob(int column) const;

private:
    struct Finalize {
        void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
    };
    std::unique_ptr<sqlite3_stmt, Finalize> stmt_;
};

class Database {
public:
    // sqlite3_open_v2 with `flags` (SQLITE_OPEN_*); SQLITE_OPEN_NOMUTEX is
    // added: the owner serialises. The failure keeps SQLite's code.
    static proto::Result<Database> open(const std::string& path, int flags, Failure& failure);

    Database() = default;
    Database(Database&&) noexcept = default;
    Database& operator=(Database&&) noexcept = default;

    // Runs `sql` (one or more statements, no rows wanted).
    Result<bool> exec(std::string_view sql);
    Result<Statement> prepare(std::string_view sql);
    // The first column of the first row of `sql` as text ("" when no row).
    Result<std::string> query_text(std::string_view sql);

    // What went wrong last, for `what` ("cannot read publications").
    Failure failure(std::string_view what) const;
    const std::string& path() const { return path_; }
    sqlite3* get() const { return db_.get(); }

private:
    struct Close {
        void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
    };
    std::unique_ptr<sqlite3, Close> db_;
    std::string path_;
};

// BEGIN IMMEDIATE … COMMIT; rolled back by the destructor unless committed.
class Transaction {
public:
    static Result<Transaction> begin(Database& db);
    Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
    Transaction& operator=(Transaction&&) = delete;
    ~Transaction();
    Result<bool> commit();

private:
    explicit Transaction(Database& db) : db_(&db) {}
    Database* db_;
};

}  // namespace peershare::peerd::sqlite
