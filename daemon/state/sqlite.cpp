// daemon/state/sqlite.cpp — see sqlite.hpp.
#include "daemon/state/sqlite.hpp"

#include <utility>

namespace peershare::peerd::sqlite {

bool Failure::damage() const {
    const int primary = code & 0xff;
    return primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT;
}

Statement& Statement::bind(int index, std::int64_t value) {
    sqlite3_bind_int64(stmt_.get(), index, value);
    return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
    sqlite3_bind_text64(stmt_.get(), index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    return *this;
}

Statement& Statement::bind_blob(int index, std::span<const std::uint8_t> bytes) {
    // A zero-length blob, not NULL, for an empty span (a NULL pointer binds NULL).
    static constexpr std::uint8_t kNone = 0;
    sqlite3_bind_blob64(stmt_.get(), index, bytes.empty() ? &kNone : bytes.data(), bytes.size(),
                        SQLITE_TRANSIENT);
    return *this;
}

Result<bool> Statement::step() {
    const int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    sqlite3* db = sqlite3_db_handle(stmt_.get());
    return proto::Error{proto::ErrorCode::internal,
                        std::string(sqlite3_errmsg(db)) + " (in " + sqlite3_sql(stmt_.get()) + ")"};
}

Result<bool> Statement::run() {
    for (;;) {
        auto row = step();
        if (!row) return row.error();
        if (!*row) return true;
    }
}

void Statement::reset() {
    sqlite3_reset(stmt_.get());
    sqlite3_clear_bindings(stmt_.get());
}

std::string Statement::text(int column) const {
    const auto* p = sqlite3_column_text(stmt_.get(), column);
    const auto n = static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), column));
    return p ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
}

std::vector<std::uint8_t> Statement::blob(int column) const {
    const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_.get(), column));
    const auto n = static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), column));
    return p ? std::vector<std::uint8_t>(p, p + n) : std::vector<std::uint8_t>();
}

proto::Result<Database> Database::open(const std::string& path, int flags, Failure& failure) {
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    Database db;
    db.db_.reset(raw);   // sqlite3_open_v2 may hand out a handle even when it fails
    db.path_ = path;
    if (rc != SQLITE_OK) {
        failure = {raw ? sqlite3_extended_errcode(raw) : rc,
                   "cannot open " + path + ": " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc))};
        return failure.error();
    }
    sqlite3_extended_result_codes(raw, 1);
    return db;
}

Result<bool> Database::exec(std::string_view sql) {
    const std::string text(sql);
    if (sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
        return failure(text).error();
    }
    return true;
}

Result<Statement> Database::prepare(std::string_view sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &s, nullptr) != SQLITE_OK) {
        return failure(sql).error();
    }
    return Statement(s);
}

Result<std::string> Database::query_text(std::string_view sql) {
    auto stmt = prepare(sql);
    if (!stmt) return stmt.error();
    auto row = stmt->step();
    if (!row) return row.error();
    return *row ? stmt->text(0) : std::string();
}

Failure Database::failure(std::string_view what) const {
    return {sqlite3_extended_errcode(db_.get()),
            path_ + ": " + sqlite3_errmsg(db_.get()) + " (" + std::string(what) + ")"};
}

Result<Transaction> Transaction::begin(Database& db) {
    if (auto ok = db.exec("BEGIN IMMEDIATE"); !ok) return ok.error();
    return Transaction(db);
}

Transaction::~Transaction() {
    if (db_) (void)db_->exec("ROLLBACK");
}

Result<bool> Transaction::commit() {
    auto ok = db_->exec("COMMIT");
    if (ok) db_ = nullptr;   // else the destructor rolls back
    return ok;
}

}  // namespace peershare::peerd::sqlite
