#pragma once
// Finding a killed daemon's service processes by their environment.
//
// state.json names each running service's pid, but it is written after the spawn (and
// debounced), so a daemon killed in between leaves an instance no file names; the next
// daemon would start a second one beside it. Every native service (and exec health check,
// and trigger job) is therefore spawned with DOCKLESS_SUPERVISOR=<data_dir> in its
// environment, inherited by its children, and
// boot looks for that value in /proc/*/environ: whatever still carries it was started by
// a previous daemon on this data_dir (the data_dir lock means only one runs at a time).
#include <sys/types.h>

#include <string>
#include <vector>

namespace actors {

inline constexpr const char* kSupervisorEnv = "DOCKLESS_SUPERVISOR";
inline constexpr const char* kServiceEnv = "DOCKLESS_SERVICE";

struct MarkedProcess {
  pid_t pid = 0;
  pid_t pgid = 0;
  std::string service;  // DOCKLESS_SERVICE, empty if absent
};

// Live (non-zombie) processes whose environment holds DOCKLESS_SUPERVISOR=supervisor,
// except `self`. Synchronous: one read of /proc at boot, before any spawn. A process
// whose environ cannot be read (another user, gone meanwhile) is skipped.
std::vector<MarkedProcess> find_marked_processes(const std::string& supervisor, pid_t self);

}  // namespace actors
