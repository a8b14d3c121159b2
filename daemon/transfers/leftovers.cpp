// daemon/transfers/leftovers.cpp — see leftovers.hpp.
#include "daemon/transfers/leftovers.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cstdio>

#include <algorithm>
#include <filesystem>

#include "common/unique_fd.hpp"

namespace peershare::peerd {
namespace fs = std::filesystem;

namespace {
constexpr std::string_view kSuffix = ".peershare-part";

bool is_partial_name(const std::string& file) {
    if (file.size() < 2 || file.front() != '.') return false;
    const auto at = file.rfind(kSuffix);
    if (at == std::string::npos || at == 0) return false;
    const auto rest = std::string_view(file).substr(at + kSuffix.size());
    return rest.empty() || rest.front() == '-';
}

bool being_written(const std::string& path) {
    const common::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    return fd && writer_holds(fd.get());
}
}  // namespace

std::vector<proto::Leftover> find_leftovers(const std::set<std::string>& dirs, const std::set<std::string>& owned) {
    std::vector<proto::Leftover> out;
    for (const auto& dir : dirs) {
        std::error_code ec;
        fs::directory_iterator it(dir, ec), end;
        for (; !ec && it != end; it.increment(ec)) {
            const auto path = it->path().string();
            if (!is_partial_name(it->path().filename().string()) || owned.contains(path)) continue;
            struct stat st {};
            if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
            if (being_written(path)) continue;   // another peerd's live transfer
            out.push_back({path, static_cast<std::uint64_t>(st.st_size)});
        }
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
    return out;
}

bool take_leftover(const std::string& destination) {
    const auto stable = partial_path_for(destination);
    struct stat st {};
    if (lstat(stable.c_str(), &st) == 0) return S_ISREG(st.st_mode);
    const fs::path dest(destination);
    const std::string old_prefix = "." + dest.filename().string() + std::string(kSuffix) + "-";
    std::error_code ec;
    fs::directory_iterator it(dest.parent_path(), ec), end;
    for (; !ec && it != end; it.increment(ec)) {
        const auto file = it->path().filename().string();
        if (!file.starts_with(old_prefix)) continue;
        if (lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (renameat2(AT_FDCWD, it->path().c_str(), AT_FDCWD, stable.c_str(), RENAME_NOREPLACE) == 0) return true;
    }
    return false;
}

}  // namespace peershare::peerd
