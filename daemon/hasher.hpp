// daemon/hasher.hpp — hashes a file into pieces and a content id in the
// worker pool. The pieces are split into as many runs as there are workers,
// each run read and hashed by its own work item, so hashing scales with the
// pool. The file's size and mtime are taken before and checked after: a file
// that changes while being hashed is an error, not a wrong id.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "daemon/catalog.hpp"
#include "proto/errors.hpp"

namespace peershare::peerd {

// Hashed content of a file: everything of a Publication but its name and time.
using HashDone = std::function<void(proto::Result<Publication>)>;

// Starts hashing `path` (absolute) with `parallelism` work items; `done` runs
// on the loop thread unless the job was cancelled first (the work items then
// finish in the pool and their result is dropped).
class HashJob;
std::shared_ptr<HashJob> hash_file(uv_loop_t* loop, std::string path, unsigned parallelism, HashDone done);
void cancel_hash(HashJob& job);

// Size and mtime of a file now, for checking it against a Publication.
struct FileStamp {
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    bool operator==(const FileStamp&) const = default;
};
proto::Result<FileStamp> stamp_file(const std::string& path);

// What a publication is identified by: the file's canonical path, realpath(3)
// of `path` (absolute, no "." or "..", no repeated '/', symlinks resolved), so
// that `same.txt`, `./same.txt` and a symlink to it are one file. Errors:
// not_found (with strerror: no such file, permission denied, ...), and
// bad_request when the canonical path is not UTF-8 (it could not cross the
// control socket unchanged). Blocks on the file system like stat(2).
proto::Result<std::string> canonical_path(const std::string& path);
inline FileStamp stamp_of(const Publication& p) { return {p.size, p.mtime_ns}; }
// Whether `path` still has the size and mtime it had when hashed (false if
// it cannot be stat'ed). Reads the disk: call it in the worker pool, or once
// at start.
inline bool unchanged_since(const std::string& path, const FileStamp& hashed) {
    const auto now = stamp_file(path);
    return now && *now == hashed;
}

}  // namespace peershare::peerd
