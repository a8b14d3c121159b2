// daemon/fetch/partial_file.hpp — the file a download is written into before
// it is whole: beside the destination under a stable name, so a paused or
// interrupted download continues in it (docs/design.md, "The life of a
// transfer"). Blocking calls, made from the worker pool.
//
// Threads: one PartialFile is shared by the work items of one fetch. write(),
// verify() and sync() may run at the same time on different pieces;
// finalize() must run alone (the engine ensures it), and the object must
// outlive every call (the engine owns it and outlives its work items).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "proto/errors.hpp"
#include "proto/hex.hpp"

namespace peershare::peerd {

// "<dir>/.<basename>.peershare-part" beside `destination` (the base name cut
// at a UTF-8 boundary so the whole name fits NAME_MAX): the same name every time.
std::string partial_path_for(const std::string& destination);

// Removes the partial file at `path` (absent is fine). Any thread; call it
// only when no Fetch is running on that file (after DoneFn, or when none was
// started). An error names the path and errno's text (ErrorCode::internal).
proto::Result<bool> remove_partial(const std::string& path);

// The lock a PartialFile holds on its file while open (fcntl(2) F_OFD_SETLK,
// a write lock on the whole file, per open file description: released when
// the descriptor closes). lock_writer: true if taken; false with errno
// EAGAIN or EACCES when someone holds it. writer_holds: whether someone
// (this process too, through another descriptor) holds it now, without
// taking it; `fd` may be read-only.
bool lock_writer(int fd);
bool writer_holds(int fd);

class PartialFile {
public:
    // Checks that `destination` may be written (absent, or `force` and not a
    // directory: else bad_request), then creates the partial file at `path` or
    // opens the one there — never through a symbolic link, only a regular
    // file — and gives it `size` bytes (sparse; a file of another size is cut
    // or extended with zeros), holding its writer lock (lock_writer) until
    // closed (where the file system has such locks). A file this call
    // created is removed again if it fails, unless another writer holds it.
    // Errors: bad_request (destination, something else in the way), busy
    // (another program holds the writer lock: a second peerd fetching to the
    // same destination; the file is left alone), internal (errno's text,
    // naming the path).
    static proto::Result<std::unique_ptr<PartialFile>> prepare(const std::string& destination,
                                                               bool force, const std::string& path,
                                                               std::uint64_t size);
    ~PartialFile();
    PartialFile(const PartialFile&) = delete;
    PartialFile& operator=(const PartialFile&) = delete;

    const std::string& path() const { return path_; }

    // Writes `length` bytes of `data` at `offset`: 0 or an errno. Whole
    // blocks at aligned offsets from an aligned buffer bypass the page cache
    // (O_DIRECT) where the file system allows; the rest goes through it, and
    // its writeback is started at once (sync_file_range).
    int write(const std::uint8_t* data, std::uint64_t length, std::uint64_t offset);
    // Reads [offset, offset + length) back and hashes it (SHA-256) through a
    // 1 MiB buffer: 0 and `good` (the hash is `expected`, and the file holds
    // every byte), or an errno.
    int verify(std::uint64_t offset, std::uint64_t length, const proto::Digest& expected,
               bool& good) const;
    // fdatasync(2): every byte written before the call is durable. 0 or an errno.
    int sync();
    // fsync(2) (`synced` tells whether it worked), renames the file to
    // `destination` and then closes it (the writer lock is held until the
    // rename is done): renameat2(RENAME_NOREPLACE) unless `force` (then
    // rename(2)); on a file system without RENAME_NOREPLACE, link(2) and
    // unlink(2). Then fsyncs the directory. On error the partial file stays.
    // Errors: bad_request ("exists; use --force"), internal (errno's text).
    std::optional<proto::Error> finalize(const std::string& destination, bool force, bool& synced);

private:
    PartialFile(std::string path, int fd, int direct_fd);
    void close();

    std::string path_;
    int fd_ = -1;         // read-write, through the page cache
    int direct_fd_ = -1;  // the same file with O_DIRECT, write-only; -1 if refused
    std::mutex buffered_write_lock_;
};

}  // namespace peershare::peerd
