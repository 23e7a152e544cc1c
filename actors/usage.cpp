#include "actors/usage.hpp"

#include <fcntl.h>

#include <string>

#include "actors/proc_stats.hpp"

namespace actors {

runtime::Fd open_instance_cgroup(const ServiceStatus& s, const runtime::CgroupTree* tree) {
  if (s.cgroup.empty() || !tree) return runtime::Fd();
  const std::size_t slash = s.cgroup.rfind('/');
  if (slash == std::string::npos || s.cgroup.substr(0, slash) != (tree->base_path() == "/" ? "" : tree->base_path()))
    return runtime::Fd();
  const std::string name = s.cgroup.substr(slash + 1);
  return runtime::Fd(::openat(tree->base_fd(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
}

std::optional<runtime::CgroupUsage> cgroup_usage(const ServiceStatus& s, const runtime::CgroupTree* tree) {
  runtime::Fd dir = open_instance_cgroup(s, tree);
  if (!dir) return std::nullopt;  // none, or gone between the status and now
  return runtime::read_cgroup_usage(dir.get());
}

UsageSample sample_usage(const ServiceStatus& s, const runtime::CgroupTree* tree) {
  UsageSample out;
  if (runtime::Fd dir = open_instance_cgroup(s, tree)) {
    const runtime::CgroupUsage u = runtime::read_cgroup_cpu_memory(dir.get());
    out.cpu_usec = u.cpu_usage_usec;
    out.memory_bytes = u.memory_current;
    if (out.cpu_usec && out.memory_bytes) return out;
  }
  // What the cgroup lacks (no memory controller in it, or no cgroup) comes from the main
  // process: the main process only, as GET /v1/services's cpu_seconds and rss_bytes.
  if (!s.pid) return out;
  if (std::optional<ProcStats> p = read_proc_stats(*s.pid, s.pid_start_ticks)) {
    if (!out.cpu_usec) out.cpu_usec = static_cast<std::uint64_t>(p->cpu_seconds * 1e6);
    if (!out.memory_bytes) out.memory_bytes = p->rss_bytes;
  }
  return out;
}

}  // namespace actors
