// daemon/fetch/partial_file.cpp — see partial_file.hpp.
#include "daemon/fetch/partial_file.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "daemon/fetch/buffer_pool.hpp"
#include "proto/content.hpp"

namespace peershare::peerd {

using proto::Error;
using proto::ErrorCode;

namespace {

constexpr mode_t kFileMode = 0644;
constexpr std::size_t kVerifyChunk = 1 << 20;

std::string errno_text(int err) { return std::strerror(err); }

std::string parent_dir(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

Error exists_error(const std::string& destination) {
    return Error{ErrorCode::bad_request, destination + " exists; use --force to overwrite"};
}

// Writes all of buf at offset; 0 or an errno.
int write_all(int fd, const std::uint8_t* buf, std::uint64_t length, std::uint64_t offset) {
    std::uint64_t written = 0;
    while (written < length) {
        const auto n =
            ::pwrite(fd, buf + written, length - written, static_cast<off_t>(offset + written));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n < 0 ? errno : EIO;
        written += static_cast<std::uint64_t>(n);
    }
    return 0;
}

}  // namespace

std::string partial_path_for(const std::string& destination) {
    constexpr std::string_view kSuffix = ".peershare-part";
    const auto slash = destination.rfind('/');
    const std::string dir = slash == std::string::npos ? "" : destination.substr(0, slash + 1);
    std::string base = slash == std::string::npos ? destination : destination.substr(slash + 1);
    const std::size_t max_base = NAME_MAX - 1 - kSuffix.size();
    if (base.size() > max_base) {
        base.resize(max_base);
        while (!base.empty() && (static_cast<unsigned char>(base.back()) & 0xC0) == 0x80)
            base.pop_back();
        if (!base.empty() && static_cast<unsigned char>(base.back()) >= 0xC0) base.pop_back();
    }
    return dir + "." + base + std::string(kSuffix);
}

proto::Result<bool> remove_partial(const std::string& path) {
    if (::unlink(path.c_str()) == 0 || errno == ENOENT) return true;
    const int unlink_errno = errno;
    // Linux asks for write access to the mount before it looks the name up:
    // on a read-only file system a file that was never made gives EROFS.
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 && errno == ENOENT) return true;
    return Error{ErrorCode::internal, "cannot remove " + path + ": " + errno_text(unlink_errno)};
}

proto::Result<std::unique_ptr<PartialFile>> PartialFile::prepare(const std::string& destination,
                                                                 bool force,
                                                                 const std::string& path,
                                                                 std::uint64_t size) {
    struct stat st {};
    if (::lstat(destination.c_str(), &st) == 0) {
        if (!force) return exists_error(destination);
        if (S_ISDIR(st.st_mode)) return Error{ErrorCode::bad_request, destination + " is a directory"};
    } else if (errno != ENOENT) {
        return Error{ErrorCode::internal, destination + ": " + errno_text(errno)};
    }

    bool created = true;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, kFileMode);
    if (fd < 0 && errno == EEXIST) {
        created = false;
        fd = ::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
        return Error{ErrorCode::internal,
                     "cannot create the partial file " + path + ": " + errno_text(errno)};
    }
    const auto fail = [&](Error e) {
        ::close(fd);
        if (created) ::unlink(path.c_str());
        return e;
    };
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return fail(Error{ErrorCode::bad_request, path + " is in the way of the partial file: not a regular file"});
    // One writer per partial file, before it is sized: another peerd (a
    // second instance, another user's) fetching to the same destination
    // would write into this one. An open-file-description lock (fcntl(2)
    // F_OFD_SETLK) is held while `fd` is open; find_leftovers asks for it
    // (writer_holds) and leaves such a file out.
    // A file system without such locks (ENOLCK, EINVAL) goes on unlocked,
    // as before. Busy: the file is the other writer's, even one this call
    // created a moment ago, so it is left in place.
    if (!lock_writer(fd) && (errno == EAGAIN || errno == EACCES)) {
        ::close(fd);
        return Error{ErrorCode::busy, path + " is being written by another program (another peerd fetching to " +
                                          destination + "?)"};
    }
    if (static_cast<std::uint64_t>(st.st_size) != size &&
        ::ftruncate(fd, static_cast<off_t>(size)) != 0) {
        return fail(Error{ErrorCode::internal, "cannot size " + path + ": " + errno_text(errno)});
    }
    // Verified pieces go to disk without the page cache where the file
    // system allows: the download must reach the disk anyway (fsync before
    // the rename), and copying a GiB through the page cache costs the CPU
    // that hashing needs (measured: 0.1 s of system time per GiB direct,
    // 0.2-1.3 s buffered, on this project's 2-core VM).
    // Reopened through /proc/self/fd, not by its name: the same file, whatever
    // happens to the name meanwhile.
    const std::string self = "/proc/self/fd/" + std::to_string(fd);
    const int direct = ::open(self.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
    return std::unique_ptr<PartialFile>(new PartialFile(path, fd, direct));
}

bool lock_writer(int fd) {
    struct flock lock {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;   // l_start 0, l_len 0: the whole file, however it grows
    return ::fcntl(fd, F_OFD_SETLK, &lock) == 0;
}

bool writer_holds(int fd) {
    struct flock lock {};
    lock.l_type = F_RDLCK;
    lock.l_whence = SEEK_SET;
    return ::fcntl(fd, F_OFD_GETLK, &lock) == 0 && lock.l_type != F_UNLCK;
}

PartialFile::PartialFile(std::string path, int fd, int direct_fd)
    : path_(std::move(path)), fd_(fd), direct_fd_(direct_fd) {}

PartialFile::~PartialFile() { close(); }

void PartialFile::close() {
    if (direct_fd_ >= 0) ::close(std::exchange(direct_fd_, -1));
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

int PartialFile::write(const std::uint8_t* data, std::uint64_t length, std::uint64_t offset) {
    const bool whole_blocks = offset % kDirectAlign == 0 && length % kDirectAlign == 0 &&
                              reinterpret_cast<std::uintptr_t>(data) % kDirectAlign == 0;
    if (direct_fd_ >= 0 && whole_blocks) {
        const int err = write_all(direct_fd_, data, length, offset);
        if (err != EINVAL) return err;  // EINVAL: the device wants larger blocks
    }
    int err = 0;
    {
        // Buffered writes to one file take its inode lock in turn anyway; the
        // kernel's waiters spin for it, burning the CPU that hashing and
        // receiving need. Ours sleep.
        std::lock_guard lock(buffered_write_lock_);
        err = write_all(fd_, data, length, offset);
    }
    // Start writeback now, so the fsync at the end has little left to wait for.
    if (err == 0) {
        ::sync_file_range(fd_, static_cast<off_t>(offset), static_cast<off_t>(length),
                          SYNC_FILE_RANGE_WRITE);
    }
    return err;
}

int PartialFile::verify(std::uint64_t offset, std::uint64_t length, const proto::Digest& expected,
                        bool& good) const {
    std::vector<std::uint8_t> buffer(std::min<std::uint64_t>(kVerifyChunk, std::max<std::uint64_t>(length, 1)));
    proto::Sha256 hash;
    std::uint64_t done = 0;
    while (done < length) {
        const auto want = std::min<std::uint64_t>(buffer.size(), length - done);
        const auto n = ::pread(fd_, buffer.data(), want, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        if (n == 0) break;  // shorter than it should be: not good
        hash.update(buffer.data(), static_cast<std::size_t>(n));
        done += static_cast<std::uint64_t>(n);
    }
    good = done == length && hash.finish() == expected;
    return 0;
}

int PartialFile::sync() { return ::fdatasync(fd_) == 0 ? 0 : errno; }

std::optional<Error> PartialFile::finalize(const std::string& destination, bool force,
                                           bool& synced) {
    // One inode: this fsync also covers what went through the O_DIRECT descriptor.
    synced = ::fsync(fd_) == 0;
    const int sync_err = errno;
    // Closed (and its writer lock let go) only once renamed away: until then
    // no other peerd can take the partial file and write into the result.
    struct Closer {
        PartialFile& file;
        ~Closer() { file.close(); }
    } closer{*this};
    if (!synced) return Error{ErrorCode::internal, "cannot write " + path_ + ": " + errno_text(sync_err)};

    if (force) {
        if (::rename(path_.c_str(), destination.c_str()) != 0)
            return Error{ErrorCode::internal, "cannot rename into " + destination + ": " + errno_text(errno)};
    } else if (::renameat2(AT_FDCWD, path_.c_str(), AT_FDCWD, destination.c_str(), RENAME_NOREPLACE) != 0) {
        if (errno == EEXIST) return exists_error(destination);
        if (errno != EINVAL && errno != ENOSYS)
            return Error{ErrorCode::internal, "cannot rename into " + destination + ": " + errno_text(errno)};
        // A file system without RENAME_NOREPLACE: link() never replaces either.
        if (::link(path_.c_str(), destination.c_str()) != 0) {
            if (errno == EEXIST) return exists_error(destination);
            return Error{ErrorCode::internal, "cannot link into " + destination + ": " + errno_text(errno)};
        }
        ::unlink(path_.c_str());
    }
    // Make the rename itself durable; a failure here loses nothing already visible.
    const int dir = ::open(parent_dir(destination).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
    }
    return std::nullopt;
}

}  // namespace peershare::peerd
