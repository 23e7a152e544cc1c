#include "actors/service_limits.hpp"

namespace actors {

runtime::CgroupLimitValues limit_values(const config::ServiceSpec& spec) {
  // Read once: the machine's RAM does not change under a running daemon.
  static const std::uint64_t physical = runtime::physical_memory_bytes();
  return spec.limits.to_cgroup(physical);
}

bool enforce_limits(const config::ServiceSpec& spec, const runtime::CgroupTree* tree, int cgroup_fd,
                    runtime::UnsetLimits unset, std::string* error) {
  const runtime::CgroupLimitValues values = limit_values(spec);
  if (cgroup_fd < 0) {
    if (!values.any()) return true;
    std::string_view key = "a limit";
    for (const auto& f : runtime::limit_files(values))
      if (f.text) {
        key = f.key;
        break;
      }
    if (error)
      *error = std::string(key) +
               ": cannot be enforced: the daemon has no cgroup v2 subtree of its own (its log said why at start); "
               "run it under systemd with the shipped unit (Delegate=yes), or as root on a host with a writable "
               "cgroup v2";
    return false;
  }
  if (!values.any() && unset == runtime::UnsetLimits::keep) return true;
  std::string detail;
  if (values.any()) {
    if (tree) tree->enable(runtime::controllers_needed(values));
    if (auto r = runtime::check_controllers(cgroup_fd, values, &detail); !r) {
      if (error) *error = std::move(detail);
      return false;
    }
  }
  if (auto r = runtime::apply_limits(cgroup_fd, values, &detail, unset); !r) {
    if (error) *error = std::move(detail);
    return false;
  }
  return true;
}

}  // namespace actors
