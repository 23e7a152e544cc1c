#include "actors/supervisor.hpp"

#include "actors/supervisor_entry.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>
#include <utility>

#include "actors/config_inputs.hpp"
#include "actors/event_log.hpp"
#include "actors/log_store.hpp"
#include "actors/recovery.hpp"
#include "config/graph.hpp"
#include "runtime/clock.hpp"
#include "runtime/fs.hpp"
#include "runtime/ops_wait.hpp"

namespace actors {

using runtime::Result;
using runtime::Task;
using namespace std::chrono_literals;


Supervisor::Supervisor(Options opts, EventLog& events)
    : opts_(std::move(opts)), events_(events), store_(opts_.data_dir + "/services") {
  std::error_code ec;
  auto canonical = std::filesystem::weakly_canonical(opts_.data_dir, ec);
  supervisor_id_ = ec ? opts_.data_dir : canonical.string();
  // Now, before the log files and pipes of N services take the low numbers: every
  // spawn then costs the same however many fds the daemon holds (process.hpp).
  runtime::reserve_spawn_slots();
}

Supervisor::~Supervisor() = default;

Supervisor::Entry* Supervisor::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second.get();
}

config::ServiceContext Supervisor::service_context() const {
  config::ServiceContext ctx = config::ServiceContext::from(config_, host_config_inputs());
  // A reload's services count as soon as it is applied, as if config_ still held them.
  if (applying_)
    for (const auto& s : *applying_) ctx.ports.emplace(s.name, s.port);
  for (const auto& [name, e] : entries_) ctx.ports.emplace(name, e->spec->port);
  return ctx;
}

std::vector<config::ServiceSpec> Supervisor::all_specs() const {
  std::vector<config::ServiceSpec> specs;
  for (const auto& [name, e] : entries_) specs.push_back(*e->spec);
  return specs;
}

void Supervisor::create_entry(config::ServiceSpec given, bool from_config) {
  auto e = std::make_unique<Entry>();
  e->spec = std::make_shared<const config::ServiceSpec>(std::move(given));
  const config::ServiceSpec& spec = *e->spec;
  e->from_config = from_config;
  if (opts_.capture_logs) {
    auto store = LogStore::open(opts_.data_dir + "/logs/" + spec.name, spec.log_max_size, spec.log_keep);
    if (store) e->logs = std::move(store).value();
    else events_.append(spec.name, EventType::log_unavailable, {{"error", store.message()}});
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
  ctx.cgroups = opts_.cgroups;
  if (opts_.sockets_changed)
    ctx.sockets_changed = [this, name = spec.name](const std::vector<int>& fds) { opts_.sockets_changed(name, fds); };
  if (auto it = stored_sockets_.find(spec.name); it != stored_sockets_.end()) {
    ctx.stored_sockets = std::make_shared<std::vector<runtime::Fd>>(std::move(it->second));
    stored_sockets_.erase(it);
  }
  e->actor = std::make_unique<ServiceActor>(e->spec, std::move(ctx));
  e->status = e->actor->status();
  Entry* raw = e.get();
  entries_[raw->spec->name] = std::move(e);
  actors_.spawn(run_actor(raw), raw->spec->name);
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

Task<void> Supervisor::boot(config::Config config, std::optional<Inheritance> inherited) {
  config_ = std::move(config);
  // Fitted against the config's services while config_ still has them; the entries then
  // take the specs over (config_.services stays empty: one copy per service, issue #12).
  ServiceStore::Fitting stored = store_.load_beside(service_context(), config_);
  std::vector<config::ServiceSpec> configured = std::exchange(config_.services, {});
  for (auto& spec : configured) create_entry(std::move(spec), true);
  for (const auto& [name, error] : stored.rejected) events_.append(name, EventType::service_store_error, {{"error", error}});
  for (auto& spec : stored.services) create_entry(std::move(spec), false);
  // Entries exist now: what the previous daemon (or image) left running is surveyed,
  // planned for and adopted or stopped before anything is started (reconciler.hpp).
  std::vector<ServiceFacts> facts;
  for (const auto& [name, e] : entries_) facts.push_back(facts_of(*e->spec, e->from_config));
  Inheritance* handed = inherited ? &*inherited : nullptr;
  const Plan plan = plan_recovery(
      survey({opts_.data_dir, supervisor_id_, std::move(facts), handed, &stored_pipes_, opts_.capture_logs}));
  auto adopt = [this](const std::string& name, std::shared_ptr<AdoptInfo> info) {
    if (Entry* e = find(name)) e->actor->post(Command::adopting(std::move(info)));
  };
  RecoveryContext ctx{&events_, adopt, opts_.pipes_changed, handed, &stored_pipes_, opts_.cgroups};
  co_await execute_recovery(plan, std::move(ctx));
  // Attached services remember the process state.json names (pid and start time): the
  // pid_file naming that pid for another process then is a recycled pid, refused.
  for (const auto& [name, s] : read_snapshot(opts_.data_dir + "/state.json").services) {
    Entry* e = find(name);
    if (!e || !e->spec->attach || s.executor != "attach" || !s.pid || s.pid_start_ticks == 0) continue;
    auto info = std::make_shared<AdoptInfo>();
    info->pid = *s.pid;
    info->start_ticks = s.pid_start_ticks;
    info->origin = "state.json";
    e->actor->post(Command::adopting(std::move(info)));
  }
  for (const auto& name : plan.start) request_start(*find(name));
  // Stored sockets of services that are gone: closed, and out of the manager's store.
  for (const auto& [name, fds] : stored_sockets_)
    if (opts_.sockets_changed) opts_.sockets_changed(name, {});
  stored_sockets_.clear();
  background_.spawn(snapshot_writer(background_.token()), "snapshot");
  background_.spawn(sweep_containers(plan.sweep, events_, background_.token()), "sweep-containers");
  ready_ = true;
  announce();
}

// A running (or starting) service restarts with its new spec; true when it did.
bool Supervisor::update_entry(Entry& e, const config::ServiceSpec& spec) {
  const bool was_active = !settled(e.status.state);
  e.spec = std::make_shared<const config::ServiceSpec>(spec);
  if (e.logs) e.logs->set_limits(spec.log_max_size, spec.log_keep);
  e.actor->post(Command::update(e.spec));
  if (was_active) e.actor->post(Command::of(Command::Kind::restart));
  return was_active;
}

ReloadPlan Supervisor::plan(const config::Config& next) const {
  std::map<std::string, RunningService> now;
  for (const auto& [name, e] : entries_) now[name] = {e->spec.get(), e->from_config, e->actor_done};
  return plan_reload(config_, now, next);
}

Task<ReloadOutcome> Supervisor::apply(config::Config next) {
  const ReloadPlan p = plan(next);
  co_return co_await apply(p, std::move(next));
}

// Does what `plan` says and nothing else: plan_reload() is the one place that decides.
Task<ReloadOutcome> Supervisor::apply(const ReloadPlan& plan, config::Config next) {
  ReloadOutcome out;
  for (const auto& name : plan.removed)
    if (Entry* e = find(name); e && e->logs) e->logs->close();  // its followers end now, not after the stop
  const std::vector<config::ServiceSpec> services = std::exchange(next.services, {});
  config_ = std::move(next);  // its services go to the entries, below
  applying_ = &services;
  struct Applied {
    const std::vector<config::ServiceSpec>*& applying;
    ~Applied() { applying = nullptr; }
  } applied{applying_};
  if (!plan.removed.empty()) {
    co_await stop_entries(plan.removed);
    for (const auto& n : plan.removed) entries_.erase(n);
    out.removed = plan.removed;
  }
  // In the config's (name) order, as before plans.
  std::set<std::string> added(plan.added.begin(), plan.added.end());
  std::set<std::string> in_place, restarted;
  for (const auto& p : plan.in_place) in_place.insert(p.name);
  for (const auto& p : plan.restarted) restarted.insert(p.name);
  for (const auto& s : services) {
    // The stop above suspends: a service registered through the API meanwhile under a name
    // the plan adds is taken over (restarted) rather than created twice.
    if (added.count(s.name) && !find(s.name)) {
      create_entry(s, true);
      if (s.autostart) request_start(*find(s.name));
      out.added.push_back(s.name);
    } else if (in_place.count(s.name)) {
      Entry* e = find(s.name);
      e->spec = std::make_shared<const config::ServiceSpec>(s);
      e->actor->post(Command::limits(e->spec));
      out.updated_in_place.push_back(s.name);
    } else if (restarted.count(s.name) || added.count(s.name)) {
      Entry* e = find(s.name);
      e->from_config = true;
      if (!update_entry(*e, s) && s.autostart) request_start(*e);
      out.changed.push_back(s.name);
    }
  }
  out.ok = true;
  out.plan = plan;
  announce();
  events_.append(std::nullopt, EventType::reload_succeeded,
                 {{"added", out.added},
                  {"removed", out.removed},
                  {"changed", out.changed},
                  {"updated_in_place", out.updated_in_place},
                  {"plan", out.plan.to_json()}});
  co_return out;
}

void Supervisor::reload_failed(const std::vector<config::Error>& errors) {
  std::vector<std::string> text;
  text.reserve(errors.size());
  for (const auto& e : errors) text.push_back(e.to_string());
  events_.append(std::nullopt, EventType::reload_failed,
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
  // A new registration counts against [http] max_registered_services before anything is
  // written; saves still in flight count too, so concurrent POSTs cannot overshoot.
  const bool adds = !existing || existing->actor_done;
  if (adds) {
    const std::uint64_t cap = config_.http.max_registered_services;
    std::uint64_t registered = registering_;
    for (const auto& [name, e] : entries_) registered += !e->from_config && !e->actor_done;
    if (cap != 0 && registered >= cap) {
      if (errors)
        errors->push_back("at most " + std::to_string(cap) +
                          " services may be registered through the API ([http] max_registered_services)");
      co_return Result<void>::failure(EDQUOT);
    }
    ++registering_;
  }
  auto saved = co_await store_.save(spec.name, std::move(toml_text));
  if (adds) --registering_;
  if (!saved) co_return saved;
  if (existing && !existing->actor_done) {
    (void)update_entry(*existing, spec);
    events_.append(spec.name, EventType::service_updated, {});
  } else {
    if (existing) entries_.erase(spec.name);
    const bool autostart = spec.autostart;
    const std::string name = spec.name;
    create_entry(std::move(spec), false);
    events_.append(name, EventType::service_registered, {});
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
  events_.append(name, EventType::service_removed, {});
  announce();
  co_return r;
}

Snapshot Supervisor::make_snapshot() const {
  Snapshot s;
  s.written_unix_ms = runtime::now_unix_ms();
  for (const auto& [name, e] : entries_) s.services[name] = snapshot_entry(e->status, *e->spec);
  s.triggers = trigger_bindings_;
  return s;
}

void Supervisor::set_trigger_bindings(std::vector<TriggerBinding> bindings) {
  trigger_bindings_ = std::move(bindings);
  snapshot_pending_ = true;
  snapshot_dirty_.notify_all();
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
    (void)co_await runtime::atomic_write(path, snapshot_to_json(make_snapshot()), 0600);
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
  const bool ok = co_await await_handover(records, changed_, limit);
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
  (void)co_await runtime::atomic_write(opts_.data_dir + "/state.json", snapshot_to_json(make_snapshot()), 0600);
}

Task<void> Supervisor::shutdown() {
  std::vector<std::string> names;
  for (const auto& [name, e] : entries_) names.push_back(name);
  co_await stop_entries(names);
  background_.request_stop();
  co_await background_.join();
  co_await actors_.join();
  co_await write_snapshot();
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
  return e ? e->spec.get() : nullptr;
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
