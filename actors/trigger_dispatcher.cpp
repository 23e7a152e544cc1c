#include "actors/trigger_dispatcher.hpp"

#include <sys/random.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
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

// FNV-1a 64: the binding's fingerprint only has to tell definitions apart across restarts.
std::string fingerprint(const config::Trigger& t) {
  nlohmann::json j = {{"path", t.path},       {"kind", t.kind},       {"provider", t.provider},
                      {"events", t.events},   {"branch", t.branch},   {"handler", t.handler},
                      {"action", static_cast<int>(t.action)},          {"service", t.service},
                      {"run", t.run},         {"post", t.post_host + ":" + std::to_string(t.post_port) + t.post_path},
                      {"timeout_ms", t.timeout.count()},               {"user", t.user},
                      {"max_attempts", t.max_attempts},                {"backoff_ms", t.backoff.count()},
                      {"secret_ref", t.secret_ref}};
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : j.dump()) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

// The handler as state.json names it: a command's arguments and a URL's query may carry
// tokens, so only the program and the URL's path (as the start-up log does).
std::string handler_summary(const config::Trigger& t) {
  using A = config::Trigger::Action;
  switch (t.action) {
    case A::run:
    case A::exec: return (t.action == A::run ? "run:" : "exec:") + (t.run.empty() ? std::string() : t.run.front());
    case A::post: return t.handler.substr(0, t.handler.find('?'));
    case A::restart: return "restart:" + t.service;
    case A::start: return "start:" + t.service;
    case A::stop: return "stop:" + t.service;
  }
  return t.handler;
}

// 64 random bits: ids are never reused, across restarts too, without a counter to persist.
std::string new_event_id() {
  unsigned char bytes[8] = {};
  std::size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  char out[3 + 16 + 1];
  std::snprintf(out, sizeof out, "ev-%02x%02x%02x%02x%02x%02x%02x%02x", bytes[0], bytes[1], bytes[2], bytes[3],
                bytes[4], bytes[5], bytes[6], bytes[7]);
  return out;
}

}  // namespace

std::string_view outcome_name(DeliveryOutcome o) {
  switch (o) {
    case DeliveryOutcome::accepted: return "accepted";
    case DeliveryOutcome::duplicate: return "duplicate";
    case DeliveryOutcome::full: return "full";
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
  // The queue's events were acknowledged too, even if the deliveries file was not written
  // before a crash.
  if (queue_)
    for (QueuedState qs : {QueuedState::pending, QueuedState::dead, QueuedState::done})
      for (const TriggerEvent* e : queue_->in_state(qs))
        if (e->trigger == id && !e->delivery.empty() && st->id_set.insert(e->delivery).second)
          st->ids.push_back(e->delivery);
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
  supervisor_.set_trigger_bindings(bindings_for(*prepared.set));
  current_ = std::move(prepared.set);
  // Events waiting for a trigger that is back (or was never gone) go on; those of a removed
  // trigger are dead-lettered by its worker.
  if (queue_)
    for (const TriggerEvent* e : queue_->in_state(QueuedState::pending)) wake_worker(e->trigger);
}

// A trigger keeps its version while its definition is the same; a changed one gets the next.
// Bindings of removed triggers are kept, so a trigger removed and added back goes on counting.
std::vector<TriggerBinding> TriggerDispatcher::bindings_for(TriggerSet& set) {
  set.binding_versions.clear();
  for (const config::Trigger& t : set.triggers) {
    const std::string fp = fingerprint(t);
    auto it = bindings_.find(t.id);
    if (it == bindings_.end()) {
      TriggerBinding b;
      b.id = t.id;
      b.fingerprint = fp;
      it = bindings_.emplace(t.id, std::move(b)).first;
    } else if (it->second.fingerprint != fp) {
      ++it->second.version;
      it->second.fingerprint = fp;
    }
    TriggerBinding& b = it->second;
    b.path = t.path;
    b.kind = t.kind;
    b.provider = t.provider;
    b.handler = handler_summary(t);
    set.binding_versions.push_back(b.version);
  }
  std::vector<TriggerBinding> out;
  for (const auto& [id, b] : bindings_) out.push_back(b);
  return out;
}

std::string TriggerDispatcher::open_queue() {
  for (TriggerBinding& b : read_snapshot(opts_.data_dir + "/state.json").triggers) bindings_[b.id] = std::move(b);
  if (auto r = runtime::make_dirs(opts_.data_dir + "/triggers", 0700); !r)
    return queue_error_ = "cannot create " + opts_.data_dir + "/triggers: " + r.message();
  auto q = TriggerQueue::open(opts_.data_dir + "/triggers/queue.log");
  if (!q) return queue_error_ = "cannot open " + opts_.data_dir + "/triggers/queue.log: " + q.message();
  queue_ = std::move(q).value();
  // Interrupted mid-dispatch by a crash: whether the handler finished is unknown, and running it
  // again could do it twice. Start-up, so written synchronously.
  std::vector<std::string> interrupted;
  for (const TriggerEvent* e : queue_->in_state(QueuedState::pending))
    if (e->dispatching) interrupted.push_back(e->id);
  for (const std::string& id : interrupted) {
    const std::string trigger = queue_->find(id)->trigger;
    const std::string why = "interrupted: the daemon stopped during its dispatch, so whether the handler finished is "
                            "unknown; replay it to run it again";
    if (auto w = queue_->append_sync(TriggerQueue::dead_record(id, why)); !w)
      return queue_error_ = "cannot write " + queue_->path() + ": " + w.message();
    nlohmann::json ev = nlohmann::json::object();
    ev["trigger"] = trigger;
    ev["event_id"] = id;
    ev["error"] = why;
    events_.append(std::nullopt, EventType::trigger_dead_lettered, ev);
  }
  if (auto c = queue_->compact(); !c)
    return queue_error_ = "cannot compact " + queue_->path() + ": " + c.message();
  return "";
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
      a.outcome == DeliveryOutcome::full) {
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

bool TriggerDispatcher::seen(const TriggerState& st, const std::string& key) const {
  return st.id_set.count(key) || st.queuing.count(key);
}

Task<DeliveryAnswer> TriggerDispatcher::dispatch(TriggerDelivery d) {
  const config::Trigger& t = *d.trigger;
  TriggerState& st = state(t.id);
  if (!d.id.empty() && seen(st, d.id))
    co_return answer(d, DeliveryOutcome::duplicate, 200, "delivery already accepted; not queued again");
  std::string sig;
  if (!d.signature.empty()) sig = signature_key(d.signature);
  if (!sig.empty() && seen(st, sig))
    co_return answer(d, DeliveryOutcome::duplicate, 200, "this signed delivery was already accepted; not queued again");
  if (!queue_) co_return answer(d, DeliveryOutcome::failed, 503, "the trigger queue is unavailable: " + queue_error_);
  std::string why = queue_->full_reason(d.body.size());
  if (!why.empty()) co_return answer(d, DeliveryOutcome::full, 503, why + "; retry later");

  TriggerEvent e;
  e.id = new_event_id();
  e.delivery = d.id;
  e.trigger = t.id;
  e.provider = t.provider;
  e.event = d.event;
  e.received_unix_ms = runtime::now_unix_ms();
  e.received = format_utc_ms(e.received_unix_ms);
  e.headers = d.headers;
  e.body = d.body;
  e.body_json = d.body_json;
  // Held while the record is written, so the same delivery arriving meanwhile is a duplicate.
  if (!d.id.empty()) st.queuing.insert(d.id);
  if (!sig.empty()) st.queuing.insert(sig);
  runtime::Result<void> written = co_await queue_->append(TriggerQueue::add_record(e));
  st.queuing.erase(d.id);
  st.queuing.erase(sig);
  if (!written)
    co_return answer(d, DeliveryOutcome::failed, 503, "cannot write the trigger queue: " + written.message());
  remember(t.id, st, d);
  DeliveryAnswer a = answer(d, DeliveryOutcome::accepted, 202, "");
  a.queued = e.id;
  wake_worker(t.id);
  co_return a;
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

Task<void> TriggerDispatcher::shutdown() {
  jobs_.request_stop();
  co_await jobs_.join();
}

}  // namespace actors
