#include "actors/recovery.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <set>

#include "actors/docker_executor.hpp"
#include "actors/event_log.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/ops_wait.hpp"
#include "runtime/process.hpp"
#include "runtime/scope.hpp"

namespace actors {

using runtime::Result;
using runtime::Task;
using namespace std::chrono_literals;

ServiceFacts facts_of(const config::ServiceSpec& spec, bool from_config) {
  ServiceFacts f;
  f.name = spec.name;
  f.from_config = from_config;
  f.autostart = spec.autostart;
  f.container = spec.image.has_value();
  if (f.container) f.docker_cli = docker_cli_of(spec);
  f.command = spec.command;
  f.with_stdin = spec.stdin;
  f.stop_signal = spec.stop_signal;
  f.stop_timeout = spec.stop_timeout;
  return f;
}

namespace {

std::optional<FileId> id_of_fd(int fd) {
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) return std::nullopt;
  return FileId{st.st_dev, st.st_ino};
}

std::optional<FileId> id_of_path(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileId{st.st_dev, st.st_ino};
}

}  // namespace

BootFacts survey(const SurveyInput& in) {
  BootFacts f;
  f.services = in.services;
  f.capture_logs = in.capture_logs;
  f.previous = read_snapshot(in.data_dir + "/state.json");
  if (in.stored_pipes)
    for (const auto& [fdname, fd] : *in.stored_pipes) f.stored_pipes[fdname] = id_of_fd(fd.get());
  for (const auto& [name, s] : f.previous.services) {
    if (!s.pid) continue;
    LiveProcess& p = f.live[*s.pid];
    p.start_ticks = process_start_ticks(*s.pid);
    if (p.start_ticks == 0 || f.stored_pipes.empty()) continue;
    for (int n = 0; n < 3; ++n)
      p.fds[static_cast<std::size_t>(n)] =
          id_of_path("/proc/" + std::to_string(*s.pid) + "/fd/" + std::to_string(n));
  }
  if (in.inherited) {
    auto& inherited = f.inherited.emplace();
    for (const auto& [name, h] : *in.inherited) {
      InheritedFacts& i = inherited[name];
      i.state = h.state;
      i.executor = h.executor;
      i.pending_start = h.pending_start;
      i.instance = h.instance != nullptr;
      if (h.instance) i.pid = h.instance->pid;
    }
  } else {
    // The hand-over names every instance of an upgrade; after a crash, what state.json
    // missed is found by its environment.
    f.marked = find_marked_processes(in.supervisor_id, ::getpid());
    for (const auto& m : f.marked)
      if (!f.live.count(m.pid)) f.live[m.pid].start_ticks = process_start_ticks(m.pid);
  }
  return f;
}

namespace {

// The stop signal to the orphan's group and leader (and the rest of its cgroup), the
// timeout, then SIGKILL. True when it had to be forced. With a cgroup, whatever is
// left in it once the leader is gone goes too, and the cgroup with it.
Task<bool> stop_process(runtime::Process& proc, int sig, config::Duration timeout, runtime::Cgroup* cgroup) {
  (void)proc.signal_group(sig);
  (void)proc.signal(sig);
  if (cgroup) (void)cgroup->signal_members(sig, proc.pid());
  Result<int> gone = co_await runtime::poll(proc.pidfd(), POLLIN).deadline(timeout);
  if (!gone) {
    (void)proc.signal_group(SIGKILL);
    (void)proc.signal(SIGKILL);
    if (cgroup) (void)cgroup->kill();
    (void)co_await runtime::poll(proc.pidfd(), POLLIN).deadline(5s);
  }
  // A handed-over child of ours: reaped here (after a crash init reaps it).
  (void)proc.try_reap();
  if (cgroup) {
    (void)cgroup->kill();
    if (co_await cgroup->wait_empty(5s)) (void)cgroup->remove();
  }
  co_return !gone.ok();
}

std::shared_ptr<AdoptInfo> adopt_info(const PlannedAdoption& a, RecoveryContext& ctx) {
  if (a.pipes == PlannedAdoption::Pipes::handed_over) {
    if (!ctx.inherited) return nullptr;
    auto it = ctx.inherited->find(a.service);
    if (it == ctx.inherited->end() || !it->second.instance) return nullptr;
    std::shared_ptr<AdoptInfo> info = it->second.instance;
    info->command = a.command;
    return info;
  }
  auto info = std::make_shared<AdoptInfo>();
  info->pid = a.pid;
  info->start_ticks = a.start_ticks;
  info->restarts = a.restarts;
  info->ports = a.ports;
  info->started_unix_ms = a.started_unix_ms;
  info->origin = a.origin;
  info->command = a.command;
  if (a.pipes == PlannedAdoption::Pipes::not_captured) {
    info->output = "not captured";
    return info;
  }
  auto take = [&](const std::string& fdname) -> runtime::Fd {
    if (fdname.empty() || !ctx.stored_pipes) return {};
    auto it = ctx.stored_pipes->find(fdname);
    if (it == ctx.stored_pipes->end()) return {};
    runtime::Fd fd = std::move(it->second);
    ctx.stored_pipes->erase(it);
    return fd;
  };
  info->out = take(a.stored_out);
  info->err = take(a.stored_err);
  info->in = take(a.stored_in);
  if (a.pipes == PlannedAdoption::Pipes::reopen) {
    recover_pipes(*info, a.with_stdin);
  } else {
    info->output = std::string(info->out ? "stdout" : "") + (info->out && info->err ? " " : "") +
                   (info->err ? "stderr" : "") + " from the service manager's fd store";
  }
  return info;
}

// The process the plan means, pinned by a pidfd: the previous image's own pidfd, or
// one opened now and checked against the start time the survey saw.
std::optional<runtime::Process> pin(const PlannedStop& s, RecoveryContext& ctx) {
  if (!s.inherited_from.empty()) {
    if (!ctx.inherited) return std::nullopt;
    auto it = ctx.inherited->find(s.inherited_from);
    if (it == ctx.inherited->end() || !it->second.instance) return std::nullopt;
    auto p = runtime::Process::attach(s.pid, std::move(it->second.instance->pidfd));
    if (!p) return std::nullopt;
    return std::move(p).value();
  }
  auto p = runtime::Process::attach(s.pid);
  if (!p) return std::nullopt;
  if (s.start_ticks != 0 && process_start_ticks(s.pid) != s.start_ticks) return std::nullopt;
  return std::move(p).value();
}

nlohmann::json describe(const Plan& plan) {
  nlohmann::json adopt = nlohmann::json::array(), stop = nlohmann::json::array();
  for (const auto& a : plan.adopt) adopt.push_back(a.service);
  for (const auto& s : plan.stop) stop.push_back(s.pid);
  nlohmann::json not_started = nlohmann::json::object();
  for (const auto& [name, why] : plan.not_started) not_started[name] = why;
  return {{"origin", plan.origin}, {"adopt", adopt}, {"stop", stop}, {"kill", plan.kill.size()},
          {"drop_pipes", plan.drop_pipes}, {"start", plan.start}, {"not_started", not_started}};
}

}  // namespace

Task<void> execute_recovery(const Plan& plan, RecoveryContext ctx) {
  if (plan.eventful()) ctx.events->append(std::nullopt, EventType::recovery_plan, describe(plan));
  // Adopted before anything is started, so nothing runs twice.
  for (const auto& a : plan.adopt)
    if (auto info = adopt_info(a, ctx)) ctx.adopt(a.service, std::move(info));
  // An orphan shares its svc.* cgroup with an adopted instance when both were left by
  // one service (one spawned after state.json's last write): then only its group goes.
  std::set<std::string> adopted_cgroups;
  for (const auto& a : plan.adopt)
    if (Result<std::string> cg = runtime::cgroup_of(a.pid)) adopted_cgroups.insert(*cg);
  for (const auto& s : plan.stop) {
    std::optional<runtime::Process> proc = pin(s, ctx);
    if (!proc) continue;
    std::optional<runtime::Cgroup> cgroup;
    if (ctx.cgroups) cgroup = ctx.cgroups->service_of(s.pid);
    if (cgroup && adopted_cgroups.count(cgroup->path()) > 0) cgroup.reset();
    const bool forced = co_await stop_process(*proc, s.signal, s.timeout, cgroup ? &*cgroup : nullptr);
    ctx.events->append(s.service, EventType::orphan_stopped, {{"pid", s.pid}, {"forced", forced}, {"reason", s.reason}});
  }
  int killed = 0;
  for (const auto& [pid, ticks] : plan.kill)
    if (ticks != 0 && process_start_ticks(pid) == ticks && ::kill(pid, SIGKILL) == 0) ++killed;
  if (killed > 0)
    ctx.events->append(std::nullopt, EventType::orphan_stopped,
                       {{"processes", killed}, {"forced", true}, {"reason", plan.kill_reason}});
  // What nobody adopted is closed; the manager forgets the pipes of instances gone.
  if (ctx.stored_pipes) ctx.stored_pipes->clear();
  if (ctx.pipes_changed)
    for (const auto& name : plan.drop_pipes) ctx.pipes_changed(name, -1, -1, -1);
}

Task<void> sweep_containers(ContainerSweep sweep, EventLog& events, std::stop_token stop) {
  for (const auto& cli : sweep.clis) {
    std::vector<SweptContainer> swept = co_await sweep_orphan_containers(cli, sweep.keep, stop);
    for (const auto& s : swept)
      events.append(s.service, EventType::orphan_stopped,
                    {{"container", s.container}, {"ok", s.error.empty()}, {"error", s.error},
                     {"reason", "container of a service that is gone or not started"}});
  }
}

Task<bool> await_handover(const std::map<std::string, std::shared_ptr<HandoverRecord>>& records,
                          runtime::Notify& changed, std::chrono::milliseconds limit) {
  auto all_done = [&records] {
    for (const auto& [n, r] : records)
      if (!r->done) return false;
    return true;
  };
  std::stop_source expired;
  runtime::Scope timer;
  timer.spawn([](std::chrono::milliseconds d, std::stop_source* s, std::stop_token st) -> Task<void> {
    if ((co_await runtime::sleep_for(d).stop_on(st)).ok()) s->request_stop();
  }(limit, &expired, timer.token()), "handover-limit");
  while (!all_done())
    if (!co_await changed.wait(expired.get_token())) break;
  timer.request_stop();
  co_await timer.join();
  co_return all_done();
}

}  // namespace actors
