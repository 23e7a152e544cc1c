#pragma once
// What a running instance uses, read now: its own cgroup's files when it has one
// (the whole instance, children included), else /proc of its main process. The API
// (GET /v1/services, /metrics) and the history sampler (history.hpp) read through
// here, so the figures a sparkline shows are the ones the listing shows.
#include <cstdint>
#include <optional>

#include "actors/service_actor.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/cgroup_stats.hpp"

namespace actors {

// The instance's cgroup directory (BASE/svc.NAME), opened from BASE's fd, never by a
// path the status could have made up; an invalid Fd without a cgroup of its own.
runtime::Fd open_instance_cgroup(const ServiceStatus& s, const runtime::CgroupTree* tree);

// Every usage file of the instance's cgroup; nullopt without a cgroup of its own.
std::optional<runtime::CgroupUsage> cgroup_usage(const ServiceStatus& s, const runtime::CgroupTree* tree);

// The two figures a history point holds, from the cgroup (memory.current, cpu.stat),
// each the cgroup lacks from /proc/PID/stat (RSS, utime + stime); nullopt when unknown.
struct UsageSample {
  std::optional<std::uint64_t> cpu_usec;  // cumulative CPU time of the instance
  std::optional<std::uint64_t> memory_bytes;
};
UsageSample sample_usage(const ServiceStatus& s, const runtime::CgroupTree* tree);

}  // namespace actors
