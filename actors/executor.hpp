#pragma once
// Executors: how a ServiceActor runs one incarnation of its service. The actor
// keeps everything that is policy (the state machine, restarts, backoff, timers,
// health, events, log files); an executor only turns "start this", "stop it",
// "what happened to it" into mechanism: a native process (ProcessExecutor) or a
// container driven through the docker CLI (DockerExecutor). A third one (SSH to
// another host, systemd units) implements these two classes in a new file and is
// picked in make_executor(); docs/architecture.md ("Executors") has the contract.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/cgroup_stats.hpp"
#include "runtime/fd.hpp"
#include "runtime/process.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace actors {

class SocketSet;

// Everything an executor needs to start an incarnation, already resolved by the
// actor: ports picked, ${...} substituted.
struct LaunchRequest {
  const config::ServiceSpec* spec = nullptr;
  std::vector<std::string> argv;                // the substituted command (may be empty for an image)
  runtime::Environment env;                     // the service's own env (+ PORT), substituted
  runtime::Environment base_env;                // the daemon's forwarded_environment() (service_env.hpp)
  std::vector<std::uint16_t> ports;             // resolved
  bool capture_output = true;                   // false: stdout/stderr to /dev/null
  // Native processes only: DOCKLESS_SUPERVISOR's value (orphan_scan.hpp), so a daemon
  // killed before state.json named this process can still find it. Empty: unmarked.
  std::string supervisor_id;
  // Native processes only: the actor's readiness plumbing (NOTIFY_SOCKET, the fd:N
  // pipe) added to the spawn. Executors that cannot honour it refuse ready modes.
  std::function<void(runtime::SpawnOptions&)> adjust_spawn;
  // Native processes only: the service's bound sockets (the actor's), passed from fd 3.
  const SocketSet* sockets = nullptr;
  // Native processes only: the cgroup is BASE/svc.<cgroup_name> (empty: the service's
  // name). An overlap restart's new instance needs one of its own beside the old one's.
  std::string cgroup_name;
  // Attached services (spec->attach, attach_executor.cpp): a pid the operator named
  // (`dockless attach NAME PID`; 0: read the pid_file), and the process attached last
  // (pid and start ticks; 0: none), whose pid is never taken again for another process.
  pid_t attach_pid = 0;
  pid_t known_pid = 0;
  std::uint64_t known_ticks = 0;
};

// One running incarnation. Owned by the ServiceActor from a successful launch()
// until after close(); every method is called on the reactor thread and none blocks.
class Execution {
 public:
  virtual ~Execution() = default;

  // A host pid for status, metrics and state.json (0 when there is none).
  virtual pid_t pid() const = 0;
  virtual std::uint64_t pid_start_ticks() const = 0;
  // Details for the "started"/"attached" event.
  virtual nlohmann::json describe() const = 0;
  // The instance's cgroup v2 path inside the hierarchy ("/dockless.1a2b/svc.web");
  // empty when it has none of its own (no usable cgroup2, a container).
  virtual std::string cgroup() const { return {}; }
  // Its directory fd (-1: none), e.g. to change a limit of the running instance.
  virtual int cgroup_fd() const { return -1; }
  // memory.events and memory.max as read once the instance's cgroup had emptied,
  // just before it was removed: an OOM kill whose notification the watch had not
  // seen yet is still counted (nullopt: no cgroup, or no memory controller).
  virtual std::optional<runtime::OomCounters> final_oom_counters() const { return std::nullopt; }
  // True when launch() found the workload already running (after a daemon restart)
  // and adopted it instead of starting it.
  virtual bool adopted() const { return false; }

  // The output streams (non-blocking read ends) and the stdin write end; each is
  // taken once. An invalid Fd means the stream does not exist.
  virtual runtime::Fd take_stdout() = 0;
  virtual runtime::Fd take_stderr() = 0;
  virtual runtime::Fd take_stdin() { return {}; }

  // Resolves once the workload has ended, with its exit status (ECHILD: ended,
  // status unknown). Must not be cancelled by the incarnation's stop: the actor
  // needs to see every exit. Only detach() may end it early (ECANCELED).
  virtual runtime::Task<runtime::Result<runtime::ExitStatus>> wait() = 0;

  // Graceful stop: `signal`, the executor's own grace period `timeout`. Returns at
  // once; the end is seen through wait(). The actor arms its own stop_timeout and
  // calls kill() when it expires.
  virtual void stop(int signal, std::chrono::milliseconds timeout) = 0;
  virtual void kill() = 0;
  // An operator's signal (the API's POST /signal).
  virtual runtime::Result<void> signal(int sig) = 0;

  // After wait() resolved: take down what the workload left behind (the process
  // group, the container). Returns at once; close() awaits the work.
  virtual void exited() = 0;

  // Workloads that can outlive the daemon (containers) are left running across an
  // upgrade's exec, and adopted again by the next image's launch(). detach() ends
  // wait() and the log streams without touching the workload.
  virtual bool can_detach() const { return false; }
  virtual void detach() {}

  // The upgrade hand-over (native processes): the pidfd to pass through the exec
  // (-1: nothing to hand over), and suspend_wait(), which ends the pending wait()
  // with ECANCELED and touches nothing else; a later wait() resumes watching.
  virtual int handover_pidfd() const { return -1; }
  virtual void suspend_wait() {}

  // Awaited before the Execution is destroyed: every helper the executor started
  // (CLI calls, followers) has finished.
  virtual runtime::Task<void> close() = 0;
};

class Executor {
 public:
  virtual ~Executor() = default;
  // "process", "docker": the status field and state.json's marker.
  virtual std::string_view kind() const = 0;
  // Starts (or adopts) an incarnation. On failure `*error` says why in words an
  // operator can act on; the actor records it and backs off.
  virtual runtime::Task<std::unique_ptr<Execution>> launch(LaunchRequest req, std::string* error) = 0;
  // The health check as it must run for this executor (an exec check of a
  // container runs inside the container).
  virtual config::HealthCheck health_check(const config::HealthCheck& check) const { return check; }
};

// The executor a spec asks for: `image` set → docker, else a native process, placed
// in BASE/svc.NAME of `cgroups` when there is one (containers keep their engine's).
std::unique_ptr<Executor> make_executor(const config::ServiceSpec& spec, const runtime::CgroupTree* cgroups = nullptr);

}  // namespace actors
