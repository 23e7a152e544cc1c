#pragma once
// The daemon's cgroup v2 subtree at start-up (runtime/cgroup.hpp): set up once,
// before the reactor and any child exist, or a single log line saying why there is
// none and how to get one.
#include <optional>
#include <string>

#include "runtime/cgroup.hpp"

namespace tools {

// `data_dir` names the subtree when the daemon has to create one (run by hand).
std::optional<runtime::CgroupTree> setup_cgroups(const std::string& data_dir);

}  // namespace tools
