#include "tools/daemon/cgroups.hpp"

#include <filesystem>

#include "tools/daemon/daemon_log.hpp"

namespace tools {

std::optional<runtime::CgroupTree> setup_cgroups(const std::string& data_dir) {
  // The canonical path: the same data_dir reached through a symlink or a relative
  // path must find the same subtree after a restart.
  std::error_code ec;
  const auto canonical = std::filesystem::weakly_canonical(data_dir, ec);
  std::string reason;
  runtime::Result<runtime::CgroupTree> tree = runtime::CgroupTree::setup(ec ? data_dir : canonical.string(), &reason);
  if (!tree) {
    log(Level::warn, "no cgroup v2 containment (" + reason +
                         "): services are stopped by process group only, so one that calls setsid or "
                         "double-forks can outlive its stop. Run the daemon under the shipped systemd unit "
                         "(Delegate=yes) or as root with a writable cgroup2 hierarchy.");
    return std::nullopt;
  }
  std::string controllers;
  for (const auto& c : tree->offered()) controllers += (controllers.empty() ? "" : " ") + c;
  log(Level::info, "cgroups: services in " + tree->base_fs_path() + "/svc.NAME, the daemon in " +
                       tree->base_fs_path() + "/supervisor (controllers offered for limits: " +
                       (controllers.empty() ? std::string("none") : controllers) + ")");
  return std::move(tree).value();
}

}  // namespace tools
