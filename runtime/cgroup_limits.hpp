#pragma once
// Resource limits written into a cgroup v2 directory (memory.max, cpu.max, pids.max, ...).
//
// The values here are already normalised (bytes, microseconds, plain numbers): what a config
// key means — sizes, percentages of RAM or of a CPU — is decided above this layer, which knows
// no config. Every function works on a directory fd of the cgroup (not a path), so a cgroup
// renamed or removed under the caller is never confused with another at the same path.
//
// All of this is synchronous: a cgroupfs read or write is an in-kernel call with no disk
// behind it. One exception to "fast": lowering memory.max below the group's usage makes the
// kernel reclaim (and, failing that, OOM-kill) inside the write, so apply_limits on a running
// group may take as long as that reclaim does.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/result.hpp"

namespace runtime {

struct CgroupLimitValues {
  // "max": no limit (the kernel's own word in memory.max, pids.max, cpu.max).
  static constexpr std::uint64_t kMax = UINT64_MAX;
  static constexpr std::uint64_t kDefaultCpuPeriodUs = 100'000;

  struct CpuMax {
    std::uint64_t quota_us = kMax;  // CPU time per period; kMax: unlimited
    std::uint64_t period_us = kDefaultCpuPeriodUs;
    bool operator==(const CpuMax&) const = default;
  };

  std::optional<std::uint64_t> memory_max;       // bytes or kMax
  std::optional<std::uint64_t> memory_high;      // bytes or kMax
  std::optional<std::uint64_t> memory_swap_max;  // bytes or kMax
  std::optional<CpuMax> cpu_max;
  std::optional<std::uint32_t> cpu_weight;  // 1..10000 (the kernel's default: 100)
  std::optional<std::uint32_t> io_weight;   // 1..10000 (the kernel's default: 100)
  std::optional<std::uint64_t> pids_max;    // count or kMax

  bool any() const;
  bool operator==(const CgroupLimitValues&) const = default;
};

// The controllers the set limits need, each once, in the order memory, cpu, pids, io.
std::vector<std::string_view> controllers_needed(const CgroupLimitValues& values);

// Whether every set limit can be enforced in the cgroup at `cgroup_dirfd`: its
// cgroup.controllers lists each needed controller and the kernel provides the file (swap
// accounting, CFS bandwidth and io.weight are kernel options of their own). On failure the
// error is ENOTSUP (or the errno of reading cgroup.controllers) and *detail names the first
// key that cannot be enforced, why, and what to do about it.
Result<void> check_controllers(int cgroup_dirfd, const CgroupLimitValues& values, std::string* detail);

// What apply_limits does with a limit that is not set.
enum class UnsetLimits {
  keep,   // writes nothing: the file keeps whatever it holds (a fresh cgroup: the defaults)
  reset,  // writes the kernel's default, so a limit removed from the config stops applying
};

// Writes each set limit into its file of the cgroup at `cgroup_dirfd`, in the order
// memory.high, memory.max, memory.swap.max, cpu.max, cpu.weight, pids.max, io.weight, and
// with UnsetLimits::reset the default into the others (skipping a file the cgroup does not
// have: a limit whose controller is absent cannot be in force). Stops at the first failure:
// its errno, and *detail names the key, the file and the value.
Result<void> apply_limits(int cgroup_dirfd, const CgroupLimitValues& values, std::string* detail,
                          UnsetLimits unset = UnsetLimits::keep);

// The text apply_limits writes for each key, for messages and tests: "536870912", "max",
// "50000 100000", "default 200".
struct CgroupLimitFile {
  std::string_view key;         // "memory_max"
  std::string_view file;        // "memory.max"
  std::string_view controller;  // "memory"
  std::optional<std::string> text;  // nullopt: the limit is not set
  std::string_view default_text;    // what UnsetLimits::reset writes
};
std::vector<CgroupLimitFile> limit_files(const CgroupLimitValues& values);

// Bytes of RAM on this machine, for limits given as a share of it (0 if unknown).
std::uint64_t physical_memory_bytes();

}  // namespace runtime
