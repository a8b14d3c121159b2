// daemon/state/open_state.cpp — see open_state.hpp.
#include "daemon/state/open_state.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon/state/json_import.hpp"

namespace peershare::peerd {

namespace {

// Creates every missing directory of `dir` with mode 0700.
bool make_dirs(const std::string& dir) {
    for (std::size_t i = 1; i <= dir.size(); ++i) {
        if (i == dir.size() || dir[i] == '/') {
            const std::string part = dir.substr(0, i);
            if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) return false;
        }
    }
    return true;
}

}  // namespace

proto::Result<OpenedState> open_state(const std::string& dir, const common::Log& log) {
    if (!make_dirs(dir)) {
        return proto::Error{proto::ErrorCode::internal,
                            "cannot create state directory " + dir + ": " + std::strerror(errno)};
    }
    // SQLite would say only "unable to open database file" of a directory it
    // cannot write (a read-only file system, its permissions): say which and why.
    // access(2) answers EROFS for root too.
    if (access(dir.c_str(), W_OK | X_OK) != 0) {
        return proto::Error{proto::ErrorCode::internal,
                            "state directory " + dir + " is not writable: " + std::strerror(errno)};
    }
    std::string note;
    auto db = StateDb::open(dir + "/" + kStateFile, note);
    if (!db) return db.error();
    if (!note.empty()) log.warning(note);
    OpenedState out;
    out.db = std::move(*db);
    auto imported = import_json_state(dir, *out.db);
    if (!imported) return imported.error();
    for (const auto& line : *imported) log.info(line);
    auto key = out.db->peer_key();
    if (!key) return key.error();
    out.peer_key = std::move(*key);
    auto publications = out.db->load_publications();
    if (!publications) return publications.error();
    for (const auto& line : publications->skipped) log.warning(out.db->path() + ": " + line);
    out.publications = std::move(publications->rows);
    auto transfers = out.db->load_transfers();
    if (!transfers) return transfers.error();
    for (const auto& line : transfers->skipped) log.warning(out.db->path() + ": " + line);
    out.transfers = std::move(transfers->rows);
    auto next = out.db->first_free_transfer_id();
    if (!next) return next.error();
    out.next_transfer_id = *next;
    return out;
}

}  // namespace peershare::peerd
