#include "actors/supervisor.hpp"

#include <poll.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>

#include "actors/event_log.hpp"
#include "actors/docker_executor.hpp"
#include "actors/log_store.hpp"
#include "actors/orphan_scan.hpp"
#include "config/graph.hpp"
#include "runtime/fs.hpp"
#include "runtime/ops_wait.hpp"
#include "runtime/process.hpp"

namespace actors {

using runtime::Result;
using runtime::Task;
using namespace std::chrono_literals;

struct Supervisor::Entry {
  config::ServiceSpec spec;
  bool from_config = false;
  std::shared_ptr<LogStore> logs;  // shared with log followers; closed when the entry goes
  std::unique_ptr<ServiceActor> actor;
  ServiceStatus status;
  bool actor_done = false;
  std::optional<std::stop_source> starter;  // a pending wait for dependencies
  bool waiting_recorded = false;
  ~Entry() {
    if (logs) logs->close();
  }
};

namespace {
bool settled(State s) { return s == State::stopped || s == State::exited || s == State::failed; }
std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Supervisor::Supervisor(Options opts, EventLog& events)
    : opts_(std::move(opts)), events_(events), store_(opts_.data_dir + "/services") {
  std::error_code ec;
  auto canonical = std::filesystem::weakly_canonical(opts_.data_dir, ec);
  supervisor_id_ = ec ? opts_.data_dir : canonical.string();
}

Supervisor::~Supervisor() = default;

Supervisor::Entry* Supervisor::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second.get();
}

config::ServiceContext Supervisor::service_context() const {
  config::ServiceContext ctx = config::ServiceContext::from(config_, config::process_environment());
  for (const auto& [name, e] : entries_) ctx.ports.emplace(name, e->spec.port);
  return ctx;
}

std::vector<config::ServiceSpec> Supervisor::all_specs() const {
  std::vector<config::ServiceSpec> specs;
  for (const auto& [name, e] : entries_) specs.push_back(e->spec);
  return specs;
}

void Supervisor::create_entry(config::ServiceSpec spec, bool from_config) {
  auto e = std::make_unique<Entry>();
  e->spec = spec;
  e->from_config = from_config;
  if (opts_.capture_logs) {
    auto store = LogStore::open(opts_.data_dir + "/logs/" + spec.name, spec.log_max_size, spec.log_keep);
    if (store) e->logs = std::move(store).value();
    else events_.append(spec.name, "log_unavailable", {{"error", store.message()}});
  }
  ServiceContext ctx;
  ctx.events = &events_;
  ctx.logs = e->logs.get();
  ctx.publish = [this](const ServiceStatus& s) { on_status(s); };
  ctx.port_of = [this](const std::string& other) -> std::optional<std::uint16_t> {
    Entry* o = find(other);
    if (!o || o->status.ports.empty()) return std::nullopt;
    return o->status.ports.front();
  };
  ctx.base_env = opts_.base_env;
  if (opts_.pipes_changed)
    ctx.pipes_changed = [this, name = spec.name](int out, int err, int in) { opts_.pipes_changed(name, out, err, in); };
  ctx.supervisor_id = supervisor_id_;
  e->actor = std::make_unique<ServiceActor>(std::move(spec), std::move(ctx));
  e->status = e->actor->status();
  Entry* raw = e.get();
  entries_[raw->spec.name] = std::move(e);
  actors_.spawn(run_actor(raw), raw->spec.name);
}

Task<void> Supervisor::run_actor(Entry* e) {
  co_await e->actor->run();
  e->actor_done = true;
  announce();
}

void Supervisor::announce() noexcept {
  ++generation_;
  changed_.notify_all();
}

void Supervisor::on_status(const ServiceStatus& s) {
  Entry* e = find(s.name);
  if (!e) return;
  const bool persistent_change = e->status.state != s.state || e->status.pid != s.pid;
  e->status = s;
  announce();
  if (persistent_change) {
    snapshot_pending_ = true;
    snapshot_dirty_.notify_all();
  }
}

void Supervisor::request_start(Entry& e) {
  if (e.starter) e.starter->request_stop();
  e.starter.emplace();
  e.waiting_recorded = false;
  background_.spawn(start_when_ready(e.spec.name, e.starter->get_token()), e.spec.name + "/start");
}

// A dependent starts once each dependency is running (condition "started") or
// running and healthy ("healthy"). It waits as long as it takes; the wait is
// visible as a "waiting" event and ends if the operator stops the service.
Task<void> Supervisor::start_when_ready(std::string name, std::stop_token stop) {
  while (!stop.stop_requested()) {
    Entry* e = find(name);
    if (!e || e->actor_done) co_return;
    std::vector<std::string> missing;
    for (const auto& dep : e->spec.depends_on) {
      Entry* d = find(dep.name);
      const bool ok = d && d->status.state == State::running &&
                      (dep.condition == config::DependencyCondition::started ||
                       d->status.health == Health::healthy);
      if (!ok) missing.push_back(dep.name + (dep.condition == config::DependencyCondition::healthy ? " (healthy)" : ""));
    }
    if (missing.empty()) {
      e->starter.reset();
      e->actor->post(Command::of(Command::Kind::start));
      co_return;
    }
    if (!e->waiting_recorded) {
      e->waiting_recorded = true;
      events_.append(name, "waiting", {{"for", missing}});
    }
    if (!co_await changed_.wait(stop)) co_return;
  }
}

// Still running from before this daemon started (it was killed, or crashed), and
// no service of that name exists any more: stopped like a service, whole group.
Task<void> Supervisor::stop_orphans(const Snapshot& snap, const std::set<std::string>& adopted) {
  for (const auto& [name, s] : snap.services) {
    if (!s.executor.empty() && s.executor != "process") continue;  // containers: sweep_containers
    if (adopted.count(name)) continue;
    if (!s.pid || s.pid_start_ticks == 0 || process_start_ticks(*s.pid) != s.pid_start_ticks) continue;
    // The start time matched, so this is that very process, not a recycled pid.
    auto proc = runtime::Process::attach(*s.pid);
    if (!proc) continue;
    const bool forced = co_await stop_orphan(name, *proc);
    events_.append(name, "orphan_stopped",
                   {{"pid", *s.pid}, {"forced", forced},
                    {"reason", "left running by a previous daemon, and no such service now"}});
  }
  co_await stop_marked_orphans(snap);
}

// The service's stop signal to the orphan's group and leader, its stop_timeout, then
// SIGKILL. True when it had to be forced.
Task<bool> Supervisor::stop_orphan(const std::string& name, runtime::Process& proc) {
  const config::ServiceSpec* sp = config_.find(name);
  const int sig = sp ? sp->stop_signal : SIGTERM;
  const auto timeout = sp ? sp->stop_timeout : config::Duration{10'000};
  (void)proc.signal_group(sig);
  (void)proc.signal(sig);
  Result<int> gone = co_await runtime::poll(proc.pidfd(), POLLIN).deadline(timeout);
  if (!gone) {
    (void)proc.signal_group(SIGKILL);
    (void)proc.signal(SIGKILL);
    (void)co_await runtime::poll(proc.pidfd(), POLLIN).deadline(5s);
  }
  // A handed-over child of ours: reaped here (after a crash init reaps it).
  (void)proc.try_reap();
  co_return !gone.ok();
}

// What state.json did not name: an instance spawned after its last write (a daemon
// killed within the snapshot delay, or during its own boot), or what is left of a
// group whose leader died with the daemon. Found by DOCKLESS_SUPERVISOR; group leaders
// get the graceful stop, the rest (their leader gone) the SIGKILL the daemon would have
// sent when the leader exited.
Task<void> Supervisor::stop_marked_orphans(const Snapshot& named) {
  // Groups state.json names are the pass above's business, whatever it decided for them.
  std::set<pid_t> handled;
  for (const auto& [name, s] : named.services)
    if (s.pid && s.pid_start_ticks != 0 && process_start_ticks(*s.pid) == s.pid_start_ticks)
      handled.insert(*s.pid);
  const std::vector<MarkedProcess> found = find_marked_processes(supervisor_id_, ::getpid());
  std::set<pid_t> leaders;
  for (const auto& m : found)
    if (m.pid == m.pgid) leaders.insert(m.pid);
  for (const auto& m : found) {
    if (m.pid != m.pgid || handled.count(m.pid)) continue;
    auto proc = runtime::Process::attach(m.pid);
    if (!proc) continue;
    const bool forced = co_await stop_orphan(m.service, *proc);
    events_.append(m.service.empty() ? std::nullopt : std::optional<std::string>(m.service), "orphan_stopped",
                   {{"pid", m.pid}, {"forced", forced},
                    {"reason", "left running by a previous daemon, not in state.json"}});
  }
  int killed = 0;
  for (const auto& m : found) {
    if (leaders.count(m.pgid) || handled.count(m.pgid)) continue;  // signalled with its leader
    if (::kill(m.pid, SIGKILL) == 0) ++killed;
  }
  if (killed > 0)
    events_.append(std::nullopt, "orphan_stopped",
                   {{"processes", killed}, {"forced", true},
                    {"reason", "left by a previous daemon's service whose main process is gone"}});
}

// A crash: services still running with the pid and start time state.json recorded
// are adopted by their actor. Without the daemon's pipe ends the output is recovered
// through /proc (see adopt.hpp); what the service wrote meanwhile met a pipe with no
// reader (EPIPE/SIGPIPE).
std::set<std::string> Supervisor::adopt_after_crash(const Snapshot& snap) {
  std::set<std::string> adopted;
  for (const auto& [name, s] : snap.services) {
    if (!s.executor.empty() && s.executor != "process") continue;
    Entry* e = find(name);
    if (!e || e->spec.image || !s.pid || s.pid_start_ticks == 0) continue;
    if (process_start_ticks(*s.pid) != s.pid_start_ticks) continue;
    auto info = std::make_shared<AdoptInfo>();
    info->pid = *s.pid;
    info->start_ticks = s.pid_start_ticks;
    info->restarts = s.restarts;
    info->ports = s.ports;
    info->started_unix_ms = s.started_unix_ms;
    info->origin = "crash";
    info->command = e->spec.command;
    if (!opts_.capture_logs) info->output = "not captured";
    else if (!take_stored_pipes(name, *info)) recover_pipes(*info, e->spec.stdin);
    e->actor->post(Command::adopting(std::move(info)));
    adopted.insert(name);
  }
  return adopted;
}

namespace {
// The same pipe: the stored end and the instance's fd N name one inode.
bool same_pipe(const runtime::Fd& stored, pid_t pid, int n) {
  struct stat a {}, b {};
  const std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(n);
  return stored && ::fstat(stored.get(), &a) == 0 && ::stat(path.c_str(), &b) == 0 && S_ISFIFO(a.st_mode) &&
         a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}
}  // namespace

// systemd kept the pipes' daemon ends across the crash (FDSTORE): nothing the
// service wrote met a pipe without a reader, and it waits in the pipe now. Each
// stored end is checked against the instance's own fd, so a stale store entry is
// never mistaken for the service's output.
bool Supervisor::take_stored_pipes(const std::string& name, AdoptInfo& info) {
  auto take = [&](const char* stream, int n) -> runtime::Fd {
    auto it = stored_pipes_.find("svc." + name + "." + stream);
    if (it == stored_pipes_.end() || !same_pipe(it->second, info.pid, n)) return {};
    runtime::Fd fd = std::move(it->second);
    stored_pipes_.erase(it);
    return fd;
  };
  info.out = take("stdout", 1);
  info.err = take("stderr", 2);
  info.in = take("stdin", 0);
  if (!info.out && !info.err) return false;
  info.output = std::string(info.out ? "stdout" : "") + (info.out && info.err ? " " : "") +
                (info.err ? "stderr" : "") + " from the service manager's fd store";
  return true;
}

// An upgrade: the previous image's instances, with their pidfds and pipes. One whose
// service no longer exists (the config changed on disk) is stopped.
std::set<std::string> Supervisor::adopt_inherited(Inheritance& inherited, std::vector<runtime::Process>* orphans) {
  std::set<std::string> handled;
  for (auto& [name, h] : inherited) {
    Entry* e = find(name);
    if (h.instance) {
      if (e && !e->spec.image) {
        h.instance->command = e->spec.command;
        e->actor->post(Command::adopting(h.instance));
        handled.insert(name);
      } else if (auto p = runtime::Process::attach(h.instance->pid, std::move(h.instance->pidfd))) {
        orphans->push_back(std::move(p).value());
      }
      continue;
    }
    // Stopped on purpose (or parked by the crash-loop limit): stays so.
    const bool was_wanted = h.pending_start || h.state == "running" || h.state == "starting" ||
                            h.state == "backoff" || h.executor == "docker";
    if (e && !was_wanted && (h.state == "stopped" || h.state == "exited" || h.state == "failed"))
      handled.insert(name);
  }
  return handled;
}

// Containers outlive the daemon. Those of services that will start are adopted by
// their executor; the rest (services removed, or not autostarted) are stopped and
// removed here, in the background: an engine that is slow or absent must not hold
// up the boot. Nothing runs unless a container service exists or existed.
Task<void> Supervisor::sweep_containers(Snapshot previous, std::stop_token stop) {
  std::set<std::string> clis, keep;
  for (const auto& [name, e] : entries_) {
    if (!e->spec.image) continue;
    clis.insert(docker_cli_of(e->spec));
    if (e->spec.autostart) keep.insert(name);
  }
  for (const auto& [name, s] : previous.services)
    if (s.executor == "docker") clis.insert(s.docker_cli.empty() ? std::string("docker") : s.docker_cli);
  for (const auto& cli : clis) {
    std::vector<SweptContainer> swept = co_await sweep_orphan_containers(cli, keep, stop);
    for (const auto& s : swept)
      events_.append(s.service, "orphan_stopped",
                     {{"container", s.container}, {"ok", s.error.empty()}, {"error", s.error},
                      {"reason", "container of a service that is gone or not started"}});
  }
}

Task<void> Supervisor::boot(config::Config config, std::optional<Inheritance> inherited) {
  config_ = std::move(config);
  for (const auto& spec : config_.services) create_entry(spec, true);
  ServiceStore::Loaded stored = store_.load(service_context());
  for (const auto& err : stored.errors)
    events_.append(std::nullopt, "service_store_error", {{"error", err.to_string()}});
  for (auto& spec : stored.services) {
    if (find(spec.name)) {
      events_.append(spec.name, "service_store_error",
                     {{"error", "a registered service has the name of a config.toml service; the config wins"}});
      continue;
    }
    config::Config trial = config_;
    trial.services = all_specs();
    trial.services.push_back(spec);
    if (auto errs = config::validate_services(trial); !errs.empty()) {
      events_.append(spec.name, "service_store_error", {{"error", errs.front().to_string()}});
      continue;
    }
    create_entry(std::move(spec), false);
  }
  // Entries exist now: what the previous daemon (or image) left running is adopted
  // before anything is started, so nothing runs twice.
  const Snapshot previous = read_snapshot(opts_.data_dir + "/state.json");
  std::set<std::string> skip;
  std::vector<runtime::Process> orphans;
  if (inherited) skip = adopt_inherited(*inherited, &orphans);
  else skip = adopt_after_crash(previous);
  for (auto& p : orphans) {
    const bool forced = co_await stop_orphan("", p);
    events_.append(std::nullopt, "orphan_stopped",
                   {{"pid", p.pid()}, {"forced", forced},
                    {"reason", "handed over by the previous image, and no such service now"}});
  }
  if (!inherited) co_await stop_orphans(previous, skip);
  // Stored pipes nobody adopted belong to instances that are gone: out of the store.
  std::set<std::string> stale;
  for (const auto& [fdname, fd] : stored_pipes_)
    for (const auto& [name, e] : entries_)
      if (fdname.rfind("svc." + name + ".", 0) == 0) stale.insert(name);
  stored_pipes_.clear();
  if (opts_.pipes_changed)
    for (const auto& name : stale) opts_.pipes_changed(name, -1, -1, -1);
  for (auto& [name, e] : entries_)
    if (e->spec.autostart && !skip.count(name)) request_start(*e);
  background_.spawn(snapshot_writer(background_.token()), "snapshot");
  background_.spawn(sweep_containers(previous, background_.token()),
                    "sweep-containers");
  ready_ = true;
  announce();
}

Result<void> Supervisor::start(const std::string& name) {
  Entry* e = find(name);
  if (!e || e->actor_done) return Result<void>::failure(ENOENT);
  request_start(*e);
  events_.append(name, "start_requested", {});
  return {};
}

Result<void> Supervisor::stop(const std::string& name) {
  Entry* e = find(name);
  if (!e || e->actor_done) return Result<void>::failure(ENOENT);
  if (e->starter) e->starter->request_stop();
  e->starter.reset();
  events_.append(name, "stop_requested", {});
  e->actor->post(Command::of(Command::Kind::stop));
  return {};
}

Result<void> Supervisor::restart(const std::string& name) {
  Entry* e = find(name);
  if (!e || e->actor_done) return Result<void>::failure(ENOENT);
  events_.append(name, "restart_requested", {});
  if (settled(e->status.state)) request_start(*e);
  else e->actor->post(Command::of(Command::Kind::restart));
  return {};
}

Result<void> Supervisor::signal(const std::string& name, int sig) {
  Entry* e = find(name);
  if (!e || e->actor_done) return Result<void>::failure(ENOENT);
  if (!e->status.pid) return Result<void>::failure(ESRCH);
  e->actor->post(Command::of(Command::Kind::signal, sig));
  return {};
}

Result<void> Supervisor::write_stdin(const std::string& name, std::string bytes) {
  Entry* e = find(name);
  if (!e || e->actor_done) return Result<void>::failure(ENOENT);
  if (!e->spec.stdin) return Result<void>::failure(ENOTSUP);
  if (!e->status.pid) return Result<void>::failure(ESRCH);
  e->actor->post(Command::input(std::move(bytes)));
  return {};
}

// Stops `names` so that nothing is stopped while a service depending on it still
// runs: a service gets its shutdown once all its dependents (among `names`) are done.
Task<void> Supervisor::stop_entries(std::vector<std::string> names) {
  std::set<std::string> left(names.begin(), names.end());
  std::set<std::string> posted;
  config::DependencyGraph graph(all_specs());
  while (!left.empty()) {
    bool progress = true;
    while (progress) {
      progress = false;
      for (auto it = left.begin(); it != left.end();) {
        Entry* e = find(*it);
        if (!e || e->actor_done) {
          it = left.erase(it);
          progress = true;
          continue;
        }
        if (!posted.count(*it)) {
          bool blocked = false;
          for (const auto& d : graph.dependents_of(*it)) blocked |= d != *it && left.count(d) > 0;
          if (!blocked) {
            if (e->starter) e->starter->request_stop();
            e->starter.reset();
            // The daemon exiting detaches containers; removing a service stops it.
            e->actor->post(Command::of(shutting_down_ ? Command::Kind::detach : Command::Kind::shutdown));
            posted.insert(*it);
          }
        }
        ++it;
      }
    }
    if (left.empty()) break;
    (void)co_await changed_.wait();
  }
}

Task<ReloadOutcome> Supervisor::apply(config::Config next) {
  ReloadOutcome out;
  std::map<std::string, const config::ServiceSpec*> wanted;
  for (const auto& s : next.services) wanted[s.name] = &s;
  std::vector<std::string> to_remove;
  for (const auto& [name, e] : entries_) {
    if (e->actor_done) continue;
    if (e->from_config && !wanted.count(name)) {
      to_remove.push_back(name);
      if (e->logs) e->logs->close();  // its followers end now, not after the stop
    }
  }
  config_ = next;
  if (!to_remove.empty()) {
    co_await stop_entries(to_remove);
    for (const auto& n : to_remove) entries_.erase(n);
    out.removed = to_remove;
  }
  for (const auto& s : next.services) {
    Entry* e = find(s.name);
    if (!e) {
      create_entry(s, true);
      if (s.autostart) request_start(*find(s.name));
      out.added.push_back(s.name);
      continue;
    }
    if (e->spec == s && e->from_config) continue;
    const bool was_active = !settled(e->status.state);
    e->spec = s;
    e->from_config = true;
    if (e->logs) e->logs->set_limits(s.log_max_size, s.log_keep);
    e->actor->post(Command::update(s));
    if (was_active) e->actor->post(Command::of(Command::Kind::restart));
    else if (s.autostart) request_start(*e);
    out.changed.push_back(s.name);
  }
  out.ok = true;
  announce();
  events_.append(std::nullopt, "reload_succeeded",
                 {{"added", out.added}, {"removed", out.removed}, {"changed", out.changed}});
  co_return out;
}

void Supervisor::reload_failed(const std::vector<config::Error>& errors) {
  std::vector<std::string> text;
  text.reserve(errors.size());
  for (const auto& e : errors) text.push_back(e.to_string());
  events_.append(std::nullopt, "reload_failed",
                 {{"errors", text}, {"reason", "config invalid; the running config stays"}});
}

Task<Result<void>> Supervisor::add(config::ServiceSpec spec, std::string toml_text, bool replace,
                                   std::vector<std::string>* errors) {
  Entry* existing = find(spec.name);
  if (existing && !existing->actor_done && !replace) co_return Result<void>::failure(EEXIST);
  if (existing && existing->from_config) {
    if (errors) errors->push_back("service \"" + spec.name + "\" is defined in " + config_.source_file + "; edit it there");
    co_return Result<void>::failure(EPERM);
  }
  config::Config trial = config_;
  trial.services.clear();
  for (const auto& s : all_specs())
    if (s.name != spec.name) trial.services.push_back(s);
  trial.services.push_back(spec);
  std::sort(trial.services.begin(), trial.services.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  if (auto errs = config::validate_services(trial); !errs.empty()) {
    if (errors)
      for (const auto& e : errs) errors->push_back(e.to_string());
    co_return Result<void>::failure(EINVAL);
  }
  if (auto saved = co_await store_.save(spec.name, std::move(toml_text)); !saved) co_return saved;
  if (existing && !existing->actor_done) {
    const bool was_active = !settled(existing->status.state);
    existing->spec = spec;
    if (existing->logs) existing->logs->set_limits(spec.log_max_size, spec.log_keep);
    existing->actor->post(Command::update(spec));
    if (was_active) existing->actor->post(Command::of(Command::Kind::restart));
    events_.append(spec.name, "service_updated", {});
  } else {
    if (existing) entries_.erase(spec.name);
    const bool autostart = spec.autostart;
    const std::string name = spec.name;
    create_entry(std::move(spec), false);
    events_.append(name, "service_registered", {});
    if (autostart) request_start(*find(name));
  }
  announce();
  co_return Result<void>();
}

Task<Result<void>> Supervisor::remove(std::string name) {
  Entry* e = find(name);
  if (!e) co_return Result<void>::failure(ENOENT);
  if (e->from_config) co_return Result<void>::failure(EPERM);
  // TRICKY: GCC 12 cannot put an initializer_list's array in a coroutine frame
  // ("array used as initializer"), so the vector is built outside the co_await.
  std::vector<std::string> just_this(1, name);
  if (e->logs) e->logs->close();  // its followers end now, not after the stop
  co_await stop_entries(std::move(just_this));
  entries_.erase(name);
  auto r = store_.remove(name);
  events_.append(name, "service_removed", {});
  announce();
  co_return r;
}

Snapshot Supervisor::make_snapshot() const {
  Snapshot s;
  s.written_unix_ms = now_unix_ms();
  for (const auto& [name, e] : entries_) {
    SnapshotEntry se;
    se.state = std::string(to_string(e->status.state));
    se.pid = e->status.pid;
    se.pid_start_ticks = e->status.pid_start_ticks;
    se.restarts = e->status.restarts;
    if (e->status.executor != "process") se.executor = e->status.executor;  // empty: process
    if (e->spec.image) se.docker_cli = docker_cli_of(e->spec);
    se.ports = e->status.ports;
    if (e->status.pid && e->status.started_at)
      se.started_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               e->status.started_at->time_since_epoch()).count();
    s.services[name] = se;
  }
  return s;
}

// Writes state.json when something that matters for a restart changed (a state or
// a pid), at most every 200 ms, and never when nothing happens: an idle daemon does
// not wear the SD card.
Task<void> Supervisor::snapshot_writer(std::stop_token stop) {
  const std::string path = opts_.data_dir + "/state.json";
  while (!stop.stop_requested()) {
    while (!snapshot_pending_)
      if (!co_await snapshot_dirty_.wait(stop)) co_return;
    if (!co_await runtime::sleep_for(200ms).stop_on(stop)) co_return;
    snapshot_pending_ = false;
    (void)co_await runtime::atomic_write(path, snapshot_to_json(make_snapshot()), 0644);
  }
}

std::vector<std::string> Supervisor::in_transition() const {
  std::vector<std::string> out;
  for (const auto& [name, e] : entries_)
    if (!e->actor_done && (e->status.state == State::starting || e->status.state == State::stopping))
      out.push_back(name);
  return out;
}

Task<std::map<std::string, std::shared_ptr<HandoverRecord>>> Supervisor::handover(std::chrono::milliseconds limit) {
  std::map<std::string, std::shared_ptr<HandoverRecord>> records;
  for (auto& [name, e] : entries_) {
    if (e->actor_done) continue;
    auto rec = std::make_shared<HandoverRecord>();
    records[name] = rec;
    e->actor->post(Command::handing_over(rec));
  }
  auto all_done = [&records] {
    for (const auto& [n, r] : records)
      if (!r->done) return false;
    return true;
  };
  // Bounded: an actor that does not answer fails the upgrade rather than hang it.
  std::stop_source expired;
  runtime::Scope timer;
  timer.spawn([](std::chrono::milliseconds d, std::stop_source* s, std::stop_token st) -> Task<void> {
    if ((co_await runtime::sleep_for(d).stop_on(st)).ok()) s->request_stop();
  }(limit, &expired, timer.token()), "handover-limit");
  while (!all_done())
    if (!co_await changed_.wait(expired.get_token())) break;
  timer.request_stop();
  co_await timer.join();
  const bool ok = all_done();
  for (auto& [name, r] : records) {
    Entry* e = find(name);
    if (e) r->pending_start = e->starter.has_value();
  }
  if (!ok) {
    resume_after_handover();
    records.clear();
  }
  co_return records;
}

void Supervisor::resume_after_handover() {
  for (auto& [name, e] : entries_)
    if (!e->actor_done) e->actor->post(Command::of(Command::Kind::resume));
}

Task<void> Supervisor::write_snapshot() {
  (void)co_await runtime::atomic_write(opts_.data_dir + "/state.json", snapshot_to_json(make_snapshot()), 0644);
}

Task<void> Supervisor::shutdown() {
  shutting_down_ = true;
  std::vector<std::string> names;
  for (const auto& [name, e] : entries_) names.push_back(name);
  co_await stop_entries(names);
  background_.request_stop();
  co_await background_.join();
  co_await actors_.join();
  (void)co_await runtime::atomic_write(opts_.data_dir + "/state.json", snapshot_to_json(make_snapshot()), 0644);
}

std::vector<ServiceStatus> Supervisor::list() const {
  std::vector<ServiceStatus> out;
  for (const auto& [name, e] : entries_) out.push_back(e->status);
  return out;
}

std::optional<ServiceStatus> Supervisor::status(const std::string& name) const {
  Entry* e = find(name);
  if (!e) return std::nullopt;
  return e->status;
}

const config::ServiceSpec* Supervisor::spec(const std::string& name) const {
  Entry* e = find(name);
  return e ? &e->spec : nullptr;
}

bool Supervisor::from_config(const std::string& name) const {
  Entry* e = find(name);
  return e && e->from_config;
}

std::shared_ptr<LogStore> Supervisor::logs(const std::string& name) const {
  Entry* e = find(name);
  return e ? e->logs : nullptr;
}

}  // namespace actors
