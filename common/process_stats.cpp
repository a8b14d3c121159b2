// common/process_stats.cpp — /proc into numbers.
#include "common/process_stats.hpp"

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace peershare::common {
namespace {

// When the machine booted, in seconds since the epoch. From clocks rather than
// /proc/stat's btime, which a service with ProcSubset=pid cannot read.
double boot_time_s() {
    timespec real{}, boot{};
    clock_gettime(CLOCK_REALTIME, &real);
    clock_gettime(CLOCK_BOOTTIME, &boot);
    const auto seconds = [](const timespec& t) { return static_cast<double>(t.tv_sec) + t.tv_nsec / 1e9; };
    return seconds(real) - seconds(boot);
}

}  // namespace

ProcessStats read_process_stats() {
    ProcessStats s;
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const auto page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
    std::ifstream in("/proc/self/stat");
    std::string line;
    std::getline(in, line);
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const auto close = line.rfind(')');
    if (close != std::string::npos && ticks > 0) {
        std::istringstream fields(line.substr(close + 2));
        std::vector<std::string> f{std::istream_iterator<std::string>(fields), {}};
        // proc(5) numbers fields from 1 with (3) state first after the name.
        const auto at = [&](std::size_t n) { return n - 3 < f.size() ? std::stod(f[n - 3]) : 0.0; };
        s.cpu_seconds = (at(14) + at(15)) / ticks;
        s.start_time_s = boot_time_s() + at(22) / ticks;
        s.virtual_bytes = static_cast<std::uint64_t>(at(23));
        s.resident_bytes = static_cast<std::uint64_t>(at(24)) * page;
    }
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        ++s.open_fds;
    }
    if (s.open_fds > 0) --s.open_fds;   // the directory iterator's own descriptor
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) s.max_fds = limit.rlim_cur;
    return s;
}

void write_process_metrics(proto::Exposition& out, const ProcessStats& s) {
    out.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
              s.start_time_s);
    out.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", s.cpu_seconds);
    out.gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
              static_cast<double>(s.resident_bytes));
    out.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", static_cast<double>(s.virtual_bytes));
    out.gauge("process_open_fds", "Number of open file descriptors.", static_cast<double>(s.open_fds));
    out.gauge("process_max_fds", "Maximum number of open file descriptors.", static_cast<double>(s.max_fds));
}

}  // namespace peershare::common
