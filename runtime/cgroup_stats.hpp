#pragma once
// What a service's cgroup says about it: memory.events (the OOM counters, watched
// through the ring) and the usage files (memory.current, cpu.stat, pids.current,
// PSI) read for the API. All of it covers the whole instance, children included.
// Every file is optional: a controller not enabled in the cgroup (or a hybrid
// host's empty cgroup2) simply lacks it, and what is absent is left out.
#include <cstdint>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "runtime/fd.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace runtime {

// memory.events (Documentation/admin-guide/cgroup-v2.rst): hierarchical counts.
struct MemoryEvents {
  std::uint64_t low = 0, high = 0, max = 0, oom = 0, oom_kill = 0;
  bool operator==(const MemoryEvents&) const = default;
};
// "key value" lines; unknown keys (oom_group_kill, sock_throttled...) are skipped,
// so does a malformed line: the counters the kernel gave are what counts.
MemoryEvents parse_memory_events(std::string_view text);

// memory.events with memory.max ("max" or bytes) as they were at one read: the
// limit an OOM kill happened under. nullopt without memory.events (no memory
// controller in the cgroup, or the cgroup is gone).
struct OomCounters {
  MemoryEvents events;
  std::string memory_max;
};
std::optional<OomCounters> read_oom_counters(int cgroup_fd);

// One file of a cgroup that the kernel flags with POLLPRI when its content changes
// (cgroup.events, memory.events; kernfs_notify). Owns its fd; movable.
class CgroupFile {
 public:
  // openat(cgroup_fd, name); ENOENT when the cgroup lacks the file.
  static Result<CgroupFile> open(int cgroup_fd, const char* name);
  CgroupFile(CgroupFile&&) noexcept = default;
  CgroupFile& operator=(CgroupFile&&) noexcept = default;

  // The whole file. A read also marks this open file as up to date with the
  // kernel's change count, so read() then changed() misses no change in between.
  Result<std::string> read() const;
  // Resolves on the next change after the last read() (at once if one came in
  // between). ECANCELED on stop; ENODEV once the cgroup is removed (the kernel
  // wakes pollers of a deactivated file with POLLERR|POLLHUP).
  Task<Result<void>> changed(std::stop_token stop) const;
  int fd() const noexcept { return fd_.get(); }

 private:
  explicit CgroupFile(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;
};

// Watches memory.events of `file` until `stop` or the cgroup's end: `on_change`
// gets the counters before and after each change. `last` is the baseline (the
// caller's own read, taken before the instance could hit its limit).
// Resolves with ECANCELED on stop, the read's error (ENODEV) when the cgroup goes.
Task<Result<void>> watch_memory_events(CgroupFile file, MemoryEvents last, std::stop_token stop,
                                       std::function<void(const MemoryEvents& before, const MemoryEvents& now)> on_change);

// Usage figures; absent files stay nullopt.
struct CgroupUsage {
  std::optional<std::uint64_t> memory_current, memory_peak, cpu_usage_usec, pids_current;
  std::optional<double> memory_pressure, cpu_pressure;  // "some avg10", percent
};
CgroupUsage read_cgroup_usage(int cgroup_fd);
// memory_current and cpu_usage_usec only: the two files the history sampler reads
// every tick (actors/history.hpp), of the six read_cgroup_usage reads.
CgroupUsage read_cgroup_cpu_memory(int cgroup_fd);
// cpu.stat's usage_usec; the "some" line's avg10 of a PSI file.
std::optional<std::uint64_t> parse_cpu_usage_usec(std::string_view cpu_stat);
std::optional<double> parse_pressure_avg10(std::string_view pressure);

}  // namespace runtime
