#include "actors/trigger_dispatcher.hpp"

#include <unistd.h>

#include <chrono>
#include <fstream>

#include "actors/orphan_scan.hpp"
#include "actors/service_env.hpp"
#include "actors/trigger_job.hpp"
#include "runtime/fs.hpp"
#include "runtime/user_db.hpp"
#include "runtime/clock.hpp"

namespace actors {
namespace {

using runtime::Task;
using TriggerAction = config::Trigger::Action;

// Remembered beside the ids, in the same file: a sender's id never starts with this
// (GitHub's are UUIDs), and if one did it could only make its own delivery a duplicate.
std::string signature_key(const std::string& hex) { return "sig:" + hex; }

std::string_view action_name(TriggerAction a) {
  switch (a) {
    case TriggerAction::restart: return "restart";
    case TriggerAction::start: return "start";
    case TriggerAction::stop: return "stop";
    case TriggerAction::run: return "run";
    case TriggerAction::exec: return "exec";
  }
  return "?";
}

nlohmann::json job_event(const std::string& trigger, const std::string& delivery, const JobOutcome& out) {
  nlohmann::json j = nlohmann::json::object();
  j["trigger"] = trigger;
  j["delivery"] = delivery;
  j["duration_ms"] = out.duration.count();
  if (!out.spawned) {
    j["outcome"] = "spawn_failed";
    j["error"] = out.spawn_error;
    return j;
  }
  j["pid"] = out.pid;
  j["outcome"] = out.timed_out ? "timed_out" : out.stopped ? "stopped" : out.status.success() ? "succeeded" : "failed";
  if (out.status.signaled) j["signal"] = runtime::signal_name(out.status.code);
  else j["exit_code"] = out.status.code;
  return j;
}

}  // namespace

std::string_view outcome_name(DeliveryOutcome o) {
  switch (o) {
    case DeliveryOutcome::accepted: return "accepted";
    case DeliveryOutcome::duplicate: return "duplicate";
    case DeliveryOutcome::busy: return "busy";
    case DeliveryOutcome::failed: return "failed";
    case DeliveryOutcome::rejected: return "rejected";
    case DeliveryOutcome::ignored: return "ignored";
    case DeliveryOutcome::ping: return "ping";
  }
  return "?";
}

const config::Trigger* TriggerSet::find_path(std::string_view path) const {
  auto it = by_path.find(path);
  return it == by_path.end() ? nullptr : &triggers[it->second];
}

const config::Trigger* TriggerSet::find_id(std::string_view id) const {
  for (const config::Trigger& t : triggers)
    if (t.id == id) return &t;
  return nullptr;
}

TriggerDispatcher::TriggerDispatcher(Options opts, Supervisor& supervisor, EventLog& events)
    : opts_(std::move(opts)), supervisor_(supervisor), events_(events),
      current_(std::make_shared<const TriggerSet>()) {}

// Nothing reads a job's log after this (shutdown() joined the jobs); closing still wakes
// anyone left waiting in one instead of leaving them parked forever.
TriggerDispatcher::~TriggerDispatcher() {
  for (auto& [id, st] : states_)
    if (st->logs) st->logs->close();
}

std::string TriggerDispatcher::dir_of(const std::string& id) const { return opts_.data_dir + "/triggers/" + id; }

TriggerDispatcher::TriggerState& TriggerDispatcher::state(const std::string& id) {
  auto it = states_.find(id);
  if (it != states_.end()) return *it->second;
  auto st = std::make_unique<TriggerState>();
  // Start-up or reload, once per trigger id: a small file, read like the config itself.
  std::ifstream in(dir_of(id) + "/deliveries");
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && st->id_set.insert(line).second) st->ids.push_back(line);
  while (st->ids.size() > kRememberedIds) {
    st->id_set.erase(st->ids.front());
    st->ids.pop_front();
  }
  return *states_.emplace(id, std::move(st)).first->second;
}

TriggerDispatcher::Prepared TriggerDispatcher::prepare(const std::vector<config::Trigger>& triggers) const {
  Prepared out;
  auto next = std::make_shared<TriggerSet>();
  for (const config::Trigger& t : triggers) {
    next->by_path[t.path] = next->triggers.size();
    next->triggers.push_back(t);
  }
  for (const config::Trigger& t : next->triggers)
    if (auto r = runtime::make_dirs(dir_of(t.id), 0700); !r)
      out.errors.push_back("trigger " + t.id + ": cannot create " + dir_of(t.id) + ": " + r.message());
  if (out.errors.empty()) out.set = std::move(next);
  return out;
}

void TriggerDispatcher::install(Prepared prepared) {
  // Numbered here, not in prepare(): sets are installed in the order they are committed.
  prepared.set->version = current_->version + 1;
  for (const config::Trigger& t : prepared.set->triggers) (void)state(t.id);
  current_ = std::move(prepared.set);
}

std::vector<std::string> TriggerDispatcher::install(const std::vector<config::Trigger>& triggers) {
  Prepared prepared = prepare(triggers);
  if (!prepared.errors.empty()) return std::move(prepared.errors);
  install(std::move(prepared));
  return {};
}

const TriggerActivity* TriggerDispatcher::activity(std::string_view id) const {
  auto it = states_.find(id);
  return it == states_.end() ? nullptr : &it->second->activity;
}

void TriggerDispatcher::record(const config::Trigger& t, const std::string& delivery, const std::string& event,
                               const DeliveryAnswer& a, std::string_view source) {
  // The id, the event name and parts of the reason are whatever the sender wrote.
  nlohmann::json ev = nlohmann::json::object();
  ev["trigger"] = t.id;
  ev["delivery"] = delivery.empty() ? nlohmann::json(nullptr) : nlohmann::json(capped_client_text(delivery));
  ev["provider"] = t.provider;
  if (!event.empty()) ev["event"] = capped_client_text(event);
  ev["outcome"] = outcome_name(a.outcome);
  ev["status"] = a.status;
  if (!a.reason.empty()) ev["reason"] = capped_client_text(a.reason, 256);
  TriggerActivity& act = state(t.id).activity;
  act.last_delivery = ev;
  act.last_delivery["time_unix"] = runtime::now_unix_s();
  // What anyone can send without the secret (a bad signature, a captured delivery replayed
  // as is or under a new id) is limited; ignored/ping need a valid signature.
  if (a.outcome == DeliveryOutcome::rejected || a.outcome == DeliveryOutcome::duplicate ||
      a.outcome == DeliveryOutcome::busy) {
    const std::string from = source_address(source);
    RefusalLimiter::Decision d = refusals_.admit(from, runtime::now_unix_ms());
    for (const RefusalLimiter::Suppressed& s : d.summaries) {
      nlohmann::json sum = nlohmann::json::object();
      sum["source"] = s.source.empty() ? "*" : capped_client_text(s.source);
      sum["count"] = s.count;
      events_.append(std::nullopt, EventType::refusals_suppressed, sum);
    }
    if (!d.record) return;
    if (!from.empty()) ev["source"] = capped_client_text(from);
  }
  events_.append(std::nullopt, EventType::trigger_delivery, ev);
}

void TriggerDispatcher::refused(const config::Trigger& trigger, const std::string& delivery, const std::string& event,
                                const DeliveryAnswer& answer, std::string_view source) {
  record(trigger, delivery, event, answer, source);
}

DeliveryAnswer TriggerDispatcher::answer(const TriggerDelivery& d, DeliveryOutcome outcome, int status,
                                         std::string reason) {
  DeliveryAnswer a{outcome, status, std::move(reason)};
  record(*d.trigger, d.id, d.event, a, d.source);
  return a;
}

DeliveryAnswer TriggerDispatcher::dispatch(const TriggerDelivery& d) {
  const config::Trigger& t = *d.trigger;
  TriggerState& st = state(t.id);
  if (!d.id.empty() && st.id_set.count(d.id))
    return answer(d, DeliveryOutcome::duplicate, 200, "delivery already handled; not run again");
  // Busy before the signature: a busy answer runs nothing and remembers nothing either.
  const bool job = t.action == TriggerAction::run || t.action == TriggerAction::exec;
  if (job && st.activity.running)
    return answer(d, DeliveryOutcome::busy, 409, "a job of this trigger is still running");
  if (!d.signature.empty() && st.id_set.count(signature_key(d.signature)))
    return answer(d, DeliveryOutcome::duplicate, 200, "this signed delivery was already handled; not run again");
  if (!job) return act(d, st);

  auto logs = job_logs(t.id);
  if (!logs) return answer(d, DeliveryOutcome::failed, 500, "cannot open the job's logs: " + logs.message());
  st.activity.running = true;
  remember(t.id, st, d);
  DeliveryAnswer a = answer(d, DeliveryOutcome::accepted, 202, "");
  // Spawned actors first run on the next loop round: the answer is recorded before the job's events.
  jobs_.spawn(run(d, std::move(logs).value()), "trigger/" + t.id);
  return a;
}

// restart/start/stop: posted to the supervisor, which acts on its own time (non-blocking, like
// the API's control calls).
DeliveryAnswer TriggerDispatcher::act(const TriggerDelivery& d, TriggerState& st) {
  const config::Trigger& t = *d.trigger;
  runtime::Result<void> done = t.action == TriggerAction::restart ? supervisor_.restart(t.service)
                               : t.action == TriggerAction::start ? supervisor_.start(t.service)
                                                           : supervisor_.stop(t.service);
  nlohmann::json ev = nlohmann::json::object();
  ev["trigger"] = t.id;
  ev["delivery"] = d.id;
  ev["action"] = action_name(t.action);
  ev["target"] = t.service;  // "service" is the event log's own field
  ev["ok"] = done.ok();
  if (!done) ev["error"] = done.message();
  if (!done) {
    // Not remembered: a redelivery may succeed once the service is back.
    DeliveryAnswer a = answer(d, DeliveryOutcome::failed, 500,
                              std::string(action_name(t.action)) + " " + t.service + ": " + done.message());
    events_.append(std::nullopt, EventType::trigger_action, ev);
    return a;
  }
  remember(t.id, st, d);
  DeliveryAnswer a = answer(d, DeliveryOutcome::accepted, 202, "");
  events_.append(std::nullopt, EventType::trigger_action, ev);
  st.activity.last_action = ev;
  return a;
}

void TriggerDispatcher::remember_key(TriggerState& st, const std::string& key) {
  if (!st.id_set.insert(key).second) return;
  st.ids.push_back(key);
  while (st.ids.size() > kRememberedIds) {
    st.id_set.erase(st.ids.front());
    st.ids.pop_front();
  }
}

void TriggerDispatcher::remember(const std::string& id, TriggerState& st, const TriggerDelivery& d) {
  if (d.id.empty() && d.signature.empty()) return;
  if (!d.id.empty()) remember_key(st, d.id);
  if (!d.signature.empty()) remember_key(st, signature_key(d.signature));
  st.dirty = true;
  if (!st.persisting) {
    st.persisting = true;
    jobs_.spawn(persist(id), "trigger/" + id + "/deliveries");
  }
}

// One writer per trigger at a time (atomic_write's temp file is per path); ids remembered
// while it writes are picked up by its next round.
Task<void> TriggerDispatcher::persist(std::string id) {
  TriggerState& st = state(id);
  while (st.dirty) {
    st.dirty = false;
    std::string text;
    for (const std::string& d : st.ids) {
      text += d;
      text += '\n';
    }
    runtime::Result<void> r = co_await runtime::atomic_write(dir_of(id) + "/deliveries", std::move(text), 0600);
    if (!r) {
      nlohmann::json ev = nlohmann::json::object();
      ev["trigger"] = id;
      ev["error"] = r.message();
      events_.append(std::nullopt, EventType::trigger_deliveries_not_saved, ev);
    }
  }
  st.persisting = false;
}

runtime::Result<std::shared_ptr<LogStore>> TriggerDispatcher::job_logs(const std::string& id) {
  using R = runtime::Result<std::shared_ptr<LogStore>>;
  TriggerState& st = state(id);
  if (!st.logs) {
    auto store = LogStore::open(dir_of(id) + "/logs", 10u << 20, 3);
    if (!store) return R::failure(store.error());
    st.logs = std::move(store).value();
  }
  return R(st.logs);
}

// `delivery` holds the pinned set, which keeps *delivery.trigger alive for the job's whole run,
// whatever reloads happen meanwhile.
Task<void> TriggerDispatcher::run(TriggerDelivery delivery, std::shared_ptr<LogStore> logs) {
  const config::Trigger& t = *delivery.trigger;
  TriggerState& st = state(t.id);
  JobOutcome out;
  runtime::SpawnOptions opts;
  opts.argv = t.run;
  const std::string& user = job_user(t);
  if (apply_identity(user, "", opts, &out.spawn_error)) {
    // Like a service's: the fixed base for its user, never the daemon's environment.
    opts.env = base_environment(opts_.base_env, opts.uid.value_or(::geteuid()));
    opts.env["DOCKLESS_TRIGGER"] = t.id;
    opts.env["DOCKLESS_DELIVERY"] = delivery.id;
    opts.env["DOCKLESS_EVENT"] = delivery.event;
    // Marked like a service, so a daemon killed meanwhile has the next one stop it.
    if (!supervisor_.supervisor_id().empty()) opts.env[kSupervisorEnv] = supervisor_.supervisor_id();
    // exec: the event as JSON on stdin (TriggerDelivery::payload), then EOF.
    const std::string no_input;
    const std::string& input = t.action == TriggerAction::exec ? delivery.payload : no_input;
    out = co_await run_job(std::move(opts), t.timeout, *logs, jobs_.token(), input);
  }
  nlohmann::json ev = job_event(t.id, delivery.id, out);
  ev["timeout_ms"] = t.timeout.count();
  if (!user.empty()) ev["user"] = user;
  else if (auto self = runtime::find_user(::geteuid())) ev["user"] = self->name;
  else ev["user"] = std::to_string(::geteuid());
  events_.append(std::nullopt, EventType::trigger_job_finished, ev);
  ev["time_unix"] = runtime::now_unix_s();
  st.activity.last_action = std::move(ev);
  st.activity.running = false;
}

Task<void> TriggerDispatcher::shutdown() {
  jobs_.request_stop();
  co_await jobs_.join();
}

}  // namespace actors
