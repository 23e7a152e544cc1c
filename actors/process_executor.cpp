// The native executor: the service is a child process of the daemon, leading its
// own process group, in a cgroup of its own (BASE/svc.NAME) when the daemon has a
// cgroup v2 subtree; its stdio are pipes owned by the runtime::Process.
#include <csignal>
#include <optional>

#include <unistd.h>

#include "actors/executor.hpp"
#include "actors/docker_executor.hpp"
#include "actors/orphan_scan.hpp"
#include "actors/service_env.hpp"
#include "actors/service_limits.hpp"
#include "actors/socket_set.hpp"
#include "actors/state_store.hpp"
#include "runtime/reactor.hpp"

namespace actors {

namespace {

using namespace std::chrono_literals;

// How long an instance's cgroup may take to empty after its kill. Only a process
// stuck in the kernel (uninterruptible sleep) takes longer; the instance then still
// counts as ended, and its cgroup is killed again before the next start.
constexpr std::chrono::milliseconds kEmptyLimit = 10s;

class ProcessExecution final : public Execution {
 public:
  ProcessExecution(runtime::Process p, std::vector<std::string> command, std::string adopted_from = {},
                   std::optional<runtime::Cgroup> cgroup = std::nullopt)
      : process_(std::move(p)), command_(std::move(command)), ticks_(process_start_ticks(process_.pid())),
        adopted_from_(std::move(adopted_from)), cgroup_(std::move(cgroup)) {}

  pid_t pid() const override { return process_.pid(); }
  std::uint64_t pid_start_ticks() const override { return ticks_; }
  nlohmann::json describe() const override {
    nlohmann::json j = {{"pid", process_.pid()}, {"command", command_}};
    if (!adopted_from_.empty()) {
      j["from"] = adopted_from_;
      // After a crash init inherited the instance: its exit status cannot be read.
      j["exit_status"] = process_.is_child() ? "known" : "unknown";
    }
    return j;
  }
  bool adopted() const override { return !adopted_from_.empty(); }
  std::string cgroup() const override { return cgroup_ ? cgroup_->path() : std::string(); }
  int cgroup_fd() const override { return cgroup_ ? cgroup_->fd() : -1; }
  std::optional<runtime::OomCounters> final_oom_counters() const override { return final_oom_; }
  runtime::Fd take_stdout() override { return std::move(process_.stdout_pipe()); }
  runtime::Fd take_stderr() override { return std::move(process_.stderr_pipe()); }
  runtime::Fd take_stdin() override { return std::move(process_.stdin_pipe()); }

  // A fresh stop source per wait(): suspend_wait() ends this one, and a later
  // wait() (the upgrade failed, supervision resumes) gets a new one.
  runtime::Task<runtime::Result<runtime::ExitStatus>> wait() override {
    wait_stop_ = std::stop_source();
    return wait_until_empty(wait_stop_.get_token());
  }
  int handover_pidfd() const override { return process_.reaped() ? -1 : process_.pidfd(); }
  void suspend_wait() override { wait_stop_.request_stop(); }

  // Once the leader is reaped, wait() is killing and emptying the cgroup already.
  void stop(int sig, std::chrono::milliseconds) override {
    if (process_.reaped()) return;
    // The group first (the service and what it forked), then the leader through
    // its pidfd, but only if it moved itself to another group: a second SIGINT to a
    // leader still in the group would land in the middle of its first one (Python
    // dies of it). The pid cannot be reused while we hold the unreaped child.
    (void)process_.signal_group(sig);
    if (::getpgid(process_.pid()) != process_.pid()) (void)process_.signal(sig);
    // What left the group (setsid, a double fork into a new session) is still a
    // member of the cgroup: it gets the stop signal too, once.
    if (cgroup_) (void)cgroup_->signal_members(sig, process_.pid());
  }
  void kill() override {
    stop(SIGKILL, {});
    if (cgroup_) (void)cgroup_->kill();  // also whatever forked since the listing
  }
  runtime::Result<void> signal(int sig) override {
    if (process_.reaped()) return runtime::Result<void>::failure(ESRCH);
    return process_.signal(sig);
  }
  // Whatever the service forked and left in its process group goes with it, as
  // systemd's control-group kill would: no helper outlives its service.
  void exited() override { (void)process_.signal_group(SIGKILL); }
  runtime::Task<void> close() override { co_return; }

 private:
  // The leader's exit, then (with a cgroup) the end of everything else in it: the
  // instance counts as ended only when nothing of it runs any more, whatever it
  // did with sessions and groups. Then its cgroup goes; the next start makes it again.
  runtime::Task<runtime::Result<runtime::ExitStatus>> wait_until_empty(std::stop_token stop) {
    runtime::Result<runtime::ExitStatus> st = co_await process_.wait(stop);
    if ((!st && st.error() == ECANCELED) || !cgroup_) co_return st;
    (void)cgroup_->kill();
    // A hand-over stopping this wait now leaves the (reaped) exit to report.
    const bool empty = (co_await cgroup_->wait_empty(kEmptyLimit, stop)).ok();
    // The last look at the OOM counters: the kernel may hold back memory.events'
    // notification (at most one per 10 ms) past the cgroup's removal.
    final_oom_ = runtime::read_oom_counters(cgroup_->fd());
    if (empty) (void)cgroup_->remove();
    co_return st;
  }

  runtime::Process process_;
  std::vector<std::string> command_;
  std::uint64_t ticks_;
  std::string adopted_from_;
  std::optional<runtime::Cgroup> cgroup_;
  std::optional<runtime::OomCounters> final_oom_;
  std::stop_source wait_stop_;
};

class ProcessExecutor final : public Executor {
 public:
  explicit ProcessExecutor(const runtime::CgroupTree* cgroups) : cgroups_(cgroups) {}
  std::string_view kind() const override { return "process"; }

  runtime::Task<std::unique_ptr<Execution>> launch(LaunchRequest req, std::string* error) override {
    runtime::SpawnOptions o;
    o.argv = std::move(req.argv);
    if (!apply_identity(req.spec->user, req.spec->group, o, error)) co_return nullptr;
    // The fixed base for the user it runs as, then its own env (which may override PATH).
    runtime::Environment env = base_environment(req.base_env, o.uid.value_or(::geteuid()));
    for (auto& [k, v] : req.env) env.insert_or_assign(k, std::move(v));
    // Last, so a service's own env cannot unmark it (orphan_scan.hpp says why).
    if (!req.supervisor_id.empty()) {
      env[kSupervisorEnv] = req.supervisor_id;
      env[kServiceEnv] = req.spec->name;
    }
    o.env = std::move(env);
    o.working_dir = req.spec->working_dir;
    o.stdin_mode = req.spec->stdin ? runtime::SpawnOptions::Stdio::pipe : runtime::SpawnOptions::Stdio::null;
    if (!req.capture_output) {
      o.stdout_mode = runtime::SpawnOptions::Stdio::null;
      o.stderr_mode = runtime::SpawnOptions::Stdio::null;
    }
    // Before the readiness plumbing: the sockets take fds 3, 4, ... (the config keeps
    // a `ready = "fd:N"` above them).
    if (req.sockets) req.sockets->apply(o);
    if (req.adjust_spawn) req.adjust_spawn(o);
    std::optional<runtime::Cgroup> cgroup;
    // A limit with no cgroup to hold it: the start fails (spawn_failed names the key).
    if (!cgroups_ && !enforce_limits(*req.spec, nullptr, -1, runtime::UnsetLimits::keep, error)) co_return nullptr;
    if (cgroups_) {
      runtime::Result<runtime::Cgroup> made =
          cgroups_->service(req.cgroup_name.empty() ? req.spec->name : req.cgroup_name, error);
      if (!made) co_return nullptr;
      // Left over from an earlier instance (its leader's exit was missed by a
      // crashed daemon, or its cgroup did not empty in time): gone before the new
      // one joins, so a stop of the new one never meets strangers.
      if (made->populated().value_or(false)) {
        (void)made->kill();
        (void)co_await made->wait_empty(kEmptyLimit);
      }
      // Written before the child joins, so not one page runs unlimited. A cgroup
      // reused from an earlier instance may hold limits the spec no longer sets.
      if (req.spec->limits.any() &&
          !enforce_limits(*req.spec, cgroups_, made->fd(), runtime::UnsetLimits::reset, error)) {
        (void)made->remove();
        co_return nullptr;
      }
      o.cgroup_fd = made->fd();
      cgroup.emplace(std::move(made).value());
    }
    // The clone itself (copying our fd table) is on the loop: one per round, so a
    // boot of 500 services (or many crash loops at once) never holds the ring for all
    // of them. The child's scheduling and exec are awaited without blocking the loop.
    co_await runtime::reactor().one_per_round();
    runtime::Result<runtime::Process> proc = co_await runtime::Process::start(o, error);
    if (!proc) co_return nullptr;
    co_return std::make_unique<ProcessExecution>(std::move(proc).value(), req.spec->command, std::string(),
                                                 std::move(cgroup));
  }

 private:
  const runtime::CgroupTree* cgroups_;
};

}  // namespace

std::unique_ptr<Execution> make_process_execution(runtime::Process p, std::vector<std::string> command,
                                                  std::string adopted_from, std::optional<runtime::Cgroup> cgroup) {
  return std::make_unique<ProcessExecution>(std::move(p), std::move(command), std::move(adopted_from),
                                            std::move(cgroup));
}

std::unique_ptr<Executor> make_attach_executor();  // attach_executor.cpp

std::unique_ptr<Executor> make_executor(const config::ServiceSpec& spec, const runtime::CgroupTree* cgroups) {
  if (spec.attach) return make_attach_executor();
  if (spec.image) return std::make_unique<DockerExecutor>(spec);
  return std::make_unique<ProcessExecutor>(cgroups);
}

}  // namespace actors
