#include "actors/reconciler.hpp"

#include <algorithm>

namespace actors {

namespace {

constexpr const char* kStreams[3] = {"stdin", "stdout", "stderr"};

const std::uint64_t* ticks_now(const BootFacts& f, pid_t pid) {
  auto it = f.live.find(pid);
  return it == f.live.end() ? nullptr : &it->second.start_ticks;
}

// The very process state.json recorded: its start time matched, so not a recycled pid.
bool still_running(const BootFacts& f, const SnapshotEntry& s) {
  if (!s.pid || s.pid_start_ticks == 0) return false;
  const std::uint64_t* now = ticks_now(f, *s.pid);
  return now && *now == s.pid_start_ticks;
}

bool native(const SnapshotEntry& s) { return s.executor.empty() || s.executor == "process"; }

// An orphan gets the stop signal and timeout of the config.toml service of its name;
// a service it no longer has (or a registered one) gets SIGTERM and 10 s.
void stop_params(const std::map<std::string, const ServiceFacts*>& services, const std::string& name,
                 PlannedStop& stop) {
  auto it = services.find(name);
  if (it == services.end() || !it->second->from_config) return;
  stop.signal = it->second->stop_signal;
  stop.timeout = it->second->stop_timeout;
}

class Planner {
 public:
  explicit Planner(const BootFacts& f) : f_(f) {
    for (const auto& s : f.services) services_[s.name] = &s;
  }

  Plan run() {
    if (f_.inherited) plan_upgrade(*f_.inherited);
    else plan_crash();
    plan_stale_pipes();
    for (const auto& [name, s] : services_) {
      if (!s->autostart) continue;
      if (auto it = skip_.find(name); it != skip_.end()) plan_.not_started[name] = it->second;
      else plan_.start.push_back(name);
    }
    plan_sweep();
    return std::move(plan_);
  }

 private:
  const ServiceFacts* service(const std::string& name) const {
    auto it = services_.find(name);
    return it == services_.end() ? nullptr : it->second;
  }

  // After a crash: services still running with the pid and start time state.json
  // recorded are adopted by their actor; instances of services that are gone are
  // stopped; then what the environment scan found and state.json did not name.
  void plan_crash() {
    for (const auto& [name, s] : f_.previous.services) {
      if (!native(s) || !still_running(f_, s)) continue;
      plan_.origin = "crash";
      const ServiceFacts* sf = service(name);
      if (sf && !sf->container) {
        adopt_crashed(*sf, s);
        continue;
      }
      PlannedStop stop;
      stop.service = name;
      stop.pid = *s.pid;
      stop.start_ticks = s.pid_start_ticks;
      stop_params(services_, name, stop);
      stop.reason = "left running by a previous daemon, and no such service now";
      plan_.stop.push_back(std::move(stop));
    }
    plan_marked();
  }

  void adopt_crashed(const ServiceFacts& sf, const SnapshotEntry& s) {
    PlannedAdoption a;
    a.service = sf.name;
    a.origin = "crash";
    a.pid = *s.pid;
    a.start_ticks = s.pid_start_ticks;
    a.restarts = s.restarts;
    a.ports = s.ports;
    a.started_unix_ms = s.started_unix_ms;
    a.command = sf.command;
    a.with_stdin = sf.with_stdin;
    a.reason = "still running with the pid and start time state.json recorded";
    if (!f_.capture_logs) {
      a.pipes = PlannedAdoption::Pipes::not_captured;
    } else {
      // systemd kept the pipes' daemon ends: each is checked against the instance's own
      // fd, so a stale store entry is never mistaken for the service's output.
      std::string* names[3] = {&a.stored_in, &a.stored_out, &a.stored_err};
      auto live = f_.live.find(a.pid);
      for (int n = 0; n < 3; ++n) {
        const std::string fdname = stored_pipe_fdname(sf.name, kStreams[n]);
        auto st = f_.stored_pipes.find(fdname);
        if (st == f_.stored_pipes.end() || !st->second || live == f_.live.end()) continue;
        const auto& mine = live->second.fds[static_cast<std::size_t>(n)];
        if (!mine || !(*mine == *st->second)) continue;
        *names[n] = fdname;
        taken_.insert(fdname);
      }
      // Without stdout or stderr from the store the output comes through /proc.
      a.pipes = a.stored_out.empty() && a.stored_err.empty() ? PlannedAdoption::Pipes::reopen
                                                             : PlannedAdoption::Pipes::stored;
    }
    skip_[sf.name] = "adopted: " + a.reason;
    plan_.adopt.push_back(std::move(a));
  }

  // What state.json did not name: an instance spawned after its last write, or what is
  // left of a group whose leader died with the daemon. Group leaders get the graceful
  // stop, the rest (their leader gone) SIGKILL. Groups state.json names are the pass
  // above's business, whatever it decided for them.
  void plan_marked() {
    std::set<pid_t> named, leaders;
    for (const auto& [name, s] : f_.previous.services)
      if (still_running(f_, s)) named.insert(*s.pid);
    for (const auto& m : f_.marked)
      if (m.pid == m.pgid) leaders.insert(m.pid);
    for (const auto& m : f_.marked) {
      if (m.pid != m.pgid || named.count(m.pid)) continue;
      PlannedStop stop;
      if (!m.service.empty()) stop.service = m.service;
      stop.pid = m.pid;
      if (const std::uint64_t* t = ticks_now(f_, m.pid)) stop.start_ticks = *t;
      stop_params(services_, m.service, stop);
      stop.reason = "left running by a previous daemon, not in state.json";
      plan_.stop.push_back(std::move(stop));
      plan_.origin = "crash";
    }
    for (const auto& m : f_.marked) {
      if (leaders.count(m.pgid) || named.count(m.pgid)) continue;  // signalled with its leader
      const std::uint64_t* t = ticks_now(f_, m.pid);
      plan_.kill.emplace_back(m.pid, t ? *t : 0);
      plan_.origin = "crash";
    }
    if (!plan_.kill.empty()) plan_.kill_reason = "left by a previous daemon's service whose main process is gone";
  }

  // After an upgrade: the previous image's instances, with their pidfds and pipes. One
  // whose service no longer exists (or now runs in a container) is stopped.
  void plan_upgrade(const std::map<std::string, InheritedFacts>& inherited) {
    plan_.origin = "upgrade";
    for (const auto& [name, h] : inherited) {
      const ServiceFacts* sf = service(name);
      if (h.instance) {
        if (sf && !sf->container) {
          PlannedAdoption a;
          a.service = name;
          a.origin = "upgrade";
          a.pid = h.pid;
          a.command = sf->command;
          a.pipes = PlannedAdoption::Pipes::handed_over;
          a.reason = "handed over by the previous image";
          skip_[name] = "adopted: " + a.reason;
          plan_.adopt.push_back(std::move(a));
        } else {
          PlannedStop stop;
          stop.pid = h.pid;
          stop.inherited_from = name;
          stop.reason = "handed over by the previous image, and no such service now";
          plan_.stop.push_back(std::move(stop));
        }
        continue;
      }
      // Stopped on purpose (or parked by the crash-loop limit): stays so.
      const bool was_wanted = h.pending_start || h.state == "running" || h.state == "starting" ||
                              h.state == "backoff" || h.executor == "docker";
      if (sf && !was_wanted && (h.state == "stopped" || h.state == "exited" || h.state == "failed"))
        skip_[name] = h.state + " before the upgrade: stays so";
    }
  }

  // Stored pipes nobody adopted belong to instances that are gone: out of the store.
  void plan_stale_pipes() {
    for (const auto& [name, s] : services_) {
      const std::string prefix = "svc." + name + ".";
      const bool stale = std::any_of(f_.stored_pipes.begin(), f_.stored_pipes.end(), [&](const auto& p) {
        return p.first.rfind(prefix, 0) == 0 && !taken_.count(p.first);
      });
      if (stale) plan_.drop_pipes.push_back(name);
    }
  }

  // Containers outlive the daemon. Those of services that will start are adopted by
  // their executor; the rest (services removed, or not autostarted) are swept.
  void plan_sweep() {
    for (const auto& [name, s] : services_) {
      if (!s->container) continue;
      plan_.sweep.clis.insert(s->docker_cli);
      if (s->autostart) plan_.sweep.keep.insert(name);
    }
    // docker_cli is recorded from the spec, executor only once the container runs: a crash
    // between the container's creation and the next state.json write leaves only the former.
    for (const auto& [name, s] : f_.previous.services)
      if (s.executor == "docker" || !s.docker_cli.empty())
        plan_.sweep.clis.insert(s.docker_cli.empty() ? std::string("docker") : s.docker_cli);
  }

  const BootFacts& f_;
  std::map<std::string, const ServiceFacts*> services_;
  std::map<std::string, std::string> skip_;  // autostart does not apply, and why
  std::set<std::string> taken_;              // stored FDNAMEs an adoption takes
  Plan plan_;
};

}  // namespace

std::string stored_pipe_fdname(const std::string& service, const char* stream) {
  return "svc." + service + "." + stream;
}

Plan plan_recovery(const BootFacts& facts) { return Planner(facts).run(); }

}  // namespace actors
