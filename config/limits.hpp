// config: a service's resource limit keys (memory_max, cpu_max, pids_max, ...), as written and
// checked; config/limits.cpp. What they become in cgroupfs is runtime/cgroup_limits.hpp's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/cgroup_limits.hpp"

namespace config {

// A memory limit as written: a byte count, "max", or a share of the machine's RAM (which is
// resolved where the limit is applied, not here: the config may be checked on another host).
struct MemoryLimit {
  enum class Kind { bytes, max, percent };
  Kind kind = Kind::bytes;
  std::uint64_t bytes = 0;           // Kind::bytes
  std::uint32_t hundredths = 0;      // Kind::percent, in 1/100 %: 5000 is "50%"

  static MemoryLimit of_bytes(std::uint64_t n) { return {Kind::bytes, n, 0}; }
  static MemoryLimit unlimited() { return {Kind::max, 0, 0}; }
  static MemoryLimit percent(std::uint32_t hundredths) { return {Kind::percent, 0, hundredths}; }

  // Bytes on a machine with `physical` bytes of RAM; CgroupLimitValues::kMax for "max".
  std::uint64_t resolve(std::uint64_t physical) const;
  // 536870912, "max", "50%", "12.5%": a value the key accepts back.
  std::string text() const;
  bool operator==(const MemoryLimit&) const = default;
};

struct ResourceLimits {
  static constexpr std::uint64_t kMax = runtime::CgroupLimitValues::kMax;
  // cpu.max's period: a quota of 1,000 µs per period is 1 % of one CPU.
  static constexpr std::uint64_t kCpuPeriodUs = runtime::CgroupLimitValues::kDefaultCpuPeriodUs;

  std::optional<MemoryLimit> memory_max;
  std::optional<MemoryLimit> memory_high;
  std::optional<MemoryLimit> memory_swap_max;  // never a percentage
  std::optional<std::uint64_t> cpu_max_us;     // CPU time per kCpuPeriodUs; kMax: "max"
  std::optional<std::uint32_t> cpu_weight;     // 1..10000
  std::optional<std::uint32_t> io_weight;      // 1..10000
  std::optional<std::uint64_t> pids_max;       // >= 1; kMax: "max"

  bool any() const;
  bool operator==(const ResourceLimits&) const = default;
  // Every set limit in a stable text form (part of ServiceSpec::fingerprint).
  std::string fingerprint() const;
  // The values for runtime::apply_limits, percentages resolved against `physical_memory`
  // bytes of RAM (runtime::physical_memory_bytes()).
  runtime::CgroupLimitValues to_cgroup(std::uint64_t physical_memory) const;
};

// "50%", "150%", "12.5%" or "max": a cpu_max quota as the key accepts it back.
std::string cpu_max_text(std::uint64_t quota_us);

// Value parsers (the keys' string forms), exposed for the CLI and the API. On failure they
// return nullopt and put the reason, without the key's name, in *error.
// "512M", "1.5G", "64KiB", "1073741824", "max", and with allow_percent "50%".
std::optional<MemoryLimit> parse_memory_limit(std::string_view text, bool allow_percent, std::string* error);
// "50%" of one CPU, "1.5" CPUs, or "max" → microseconds per kCpuPeriodUs.
std::optional<std::uint64_t> parse_cpu_max(std::string_view text, std::string* error);

}  // namespace config
