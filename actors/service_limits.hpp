#pragma once
// A service's resource limits (config/limits.hpp) written into its instance's cgroup:
// before the instance runs (the process executor's launch), and into a running one when
// a reload changes only limits (the ServiceActor). A limit that cannot be enforced is an
// error naming the key, never a silent no-op.
#include <string>

#include "config/config.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/cgroup_limits.hpp"

namespace actors {

// The spec's limits for cgroupfs, shares of RAM resolved on this machine.
runtime::CgroupLimitValues limit_values(const config::ServiceSpec& spec);

// Writes `spec`'s limits into the cgroup at `cgroup_fd` (-1: the instance has none:
// no cgroup v2 subtree, or a container), first turning on in `tree` the controllers
// they need. With UnsetLimits::reset a limit the spec does not set goes back to the
// kernel's default (a reload that removed it). False, with *error naming the first key
// that cannot be enforced and what to do, when the spec sets a limit that this cgroup
// (or its absence) cannot hold.
bool enforce_limits(const config::ServiceSpec& spec, const runtime::CgroupTree* tree, int cgroup_fd,
                    runtime::UnsetLimits unset, std::string* error);

}  // namespace actors
