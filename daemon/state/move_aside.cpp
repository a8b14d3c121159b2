// daemon/state/move_aside.cpp — see move_aside.hpp.
#include "daemon/state/move_aside.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace peershare::peerd {

namespace {
constexpr int kMaxAttempts = 1000;   // names tried before giving up

// rename without replacing; where the file system cannot promise that
// (EINVAL), a check for an existing name first.
int rename_noreplace(const std::string& from, const std::string& to) {
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL) return -1;
    struct stat st {};
    if (::lstat(to.c_str(), &st) == 0) {
        errno = EEXIST;
        return -1;
    }
    return ::rename(from.c_str(), to.c_str());
}
}  // namespace

proto::Result<std::string> move_aside(const std::string& path, const std::string& suffix) {
    for (int n = 1; n <= kMaxAttempts; ++n) {
        const std::string to = path + suffix + (n == 1 ? "" : "." + std::to_string(n));
        if (rename_noreplace(path, to) == 0) {
            sync_parent_dir(path);
            return to;
        }
        if (errno != EEXIST) {
            return proto::Error{proto::ErrorCode::internal,
                                "cannot rename " + path + " to " + to + ": " + std::strerror(errno)};
        }
    }
    return proto::Error{proto::ErrorCode::internal, "cannot rename " + path + ": every name " + path + suffix +
                                                        ".N is taken"};
}

void sync_parent_dir(const std::string& path) {
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    if (const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

}  // namespace peershare::peerd
