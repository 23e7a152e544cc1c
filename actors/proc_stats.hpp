#pragma once
// Process statistics from /proc for the API and /metrics: CPU time and resident
// memory of a service's main process, and the daemon's own RSS. Plain blocking
// reads of tiny procfs files (no disk I/O behind them), done per request.
#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace actors {

struct ProcStats {
  double cpu_seconds = 0;      // utime + stime (fields 14 and 15 of /proc/PID/stat)
  std::uint64_t rss_bytes = 0;  // resident pages (field 24 of /proc/PID/stat) * page size
  std::uint64_t start_ticks = 0;  // field 22: tells a recycled pid apart
};

// nullopt when the process is gone (or /proc is unreadable). When `expect_start_ticks`
// is non-zero and the pid now belongs to another process, nullopt as well.
std::optional<ProcStats> read_proc_stats(pid_t pid, std::uint64_t expect_start_ticks = 0);

// The calling process's resident set size, from /proc/self/statm.
std::optional<std::uint64_t> self_rss_bytes();

}  // namespace actors
