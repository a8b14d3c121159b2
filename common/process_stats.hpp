// common/process_stats.hpp — the standard process_* metrics every Prometheus
// client library exports (prometheus.io/docs/instrumenting/writing_clientlibs,
// "Process metrics"), read from /proc/self (proc(5): stat, fd) and
// getrlimit(2), for both daemons' /metrics. Only /proc/self: the tracker's
// unit hides the rest of /proc (ProcSubset=pid).
#pragma once

#include <cstdint>

#include "proto/prometheus.hpp"

namespace peershare::common {

struct ProcessStats {
    double start_time_s = 0;          // since the epoch
    double cpu_seconds = 0;           // user + system
    std::uint64_t resident_bytes = 0;
    std::uint64_t virtual_bytes = 0;
    std::uint64_t open_fds = 0;
    std::uint64_t max_fds = 0;        // the soft RLIMIT_NOFILE
};

// What /proc says now; a field it could not read stays 0.
ProcessStats read_process_stats();

// process_start_time_seconds, process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds.
void write_process_metrics(proto::Exposition& out, const ProcessStats& stats);

}  // namespace peershare::common
