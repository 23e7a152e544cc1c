// The trigger queue's consumer side (see trigger_dispatcher.hpp): one worker per trigger with
// pending events, the handlers, and what an outcome writes back to the queue.
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "actors/http_request.hpp"
#include "actors/orphan_scan.hpp"
#include "actors/service_env.hpp"
#include "actors/trigger_dispatcher.hpp"
#include "actors/trigger_job.hpp"
#include "runtime/clock.hpp"
#include "runtime/ops_wait.hpp"
#include "runtime/user_db.hpp"

namespace actors {
namespace {

using runtime::Task;
using TriggerAction = config::Trigger::Action;
using SteadyClock = std::chrono::steady_clock;

constexpr std::string_view kInterrupted = "interrupted by the daemon's shutdown; dispatched again at its next start";

std::string_view action_name(TriggerAction a) {
  switch (a) {
    case TriggerAction::restart: return "restart";
    case TriggerAction::start: return "start";
    case TriggerAction::stop: return "stop";
    case TriggerAction::run: return "run";
    case TriggerAction::exec: return "exec";
    case TriggerAction::post: return "post";
  }
  return "?";
}

nlohmann::json job_event(const config::Trigger& t, const TriggerEvent& e, const JobOutcome& out) {
  nlohmann::json j = nlohmann::json::object();
  j["trigger"] = t.id;
  j["delivery"] = e.delivery;
  j["event_id"] = e.id;
  j["attempt"] = e.attempts + 1;
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

// What exec: handlers read on stdin and HTTP handlers receive: the event as one JSON document.
std::string event_document(const config::Trigger& t, const TriggerEvent& e) {
  nlohmann::json j = nlohmann::json::object();
  j["id"] = e.id;
  j["delivery"] = e.delivery.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.delivery);
  j["trigger"] = t.id;
  j["kind"] = t.kind;
  j["provider"] = e.provider;
  j["event"] = e.event;
  j["received"] = e.received;
  j["received_unix_ms"] = e.received_unix_ms;
  j["attempt"] = e.attempts + 1;
  j["headers"] = e.headers;
  nlohmann::json body;
  // The front end checked its depth when it came; anything else goes as text.
  if (e.body_json) body = nlohmann::json::parse(e.body, nullptr, false);
  j["body"] = body.is_discarded() || !e.body_json ? nlohmann::json(e.body) : std::move(body);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::chrono::milliseconds backoff_after(const config::Trigger& t, int attempt) {
  std::chrono::milliseconds d = t.backoff;
  for (int i = 1; i < attempt && d < config::Trigger::kMaxBackoff; ++i) d *= 2;
  return std::min(d, std::chrono::milliseconds(config::Trigger::kMaxBackoff));
}

}  // namespace

void TriggerDispatcher::start_dispatching() {
  dispatching_ = true;
  if (!queue_) return;
  for (const TriggerEvent* e : queue_->in_state(QueuedState::pending)) wake_worker(e->trigger);
}

void TriggerDispatcher::wake_worker(const std::string& trigger) {
  // Not yet (start-up), or no more (shutting down): pending events wait.
  if (!dispatching_ || jobs_.token().stop_requested()) return;
  TriggerState& st = state(trigger);
  if (st.working) {
    if (st.nap) st.nap->request_stop();
    return;
  }
  st.working = true;
  jobs_.spawn(work(trigger), "trigger/" + trigger + "/worker");
}

// One event at a time per trigger, oldest due first; an event in backoff lets later ones pass.
Task<void> TriggerDispatcher::work(std::string trigger) {
  TriggerState& st = state(trigger);
  const std::stop_token stop = jobs_.token();
  while (!stop.stop_requested()) {
    std::optional<SteadyClock::time_point> earliest;
    TriggerEvent* next = queue_->next_due(trigger, SteadyClock::now(), &earliest);
    if (!next) {
      if (!earliest) break;
      auto nap = std::make_shared<std::stop_source>();
      st.nap = nap;
      std::stop_callback on_stop(stop, [nap] { nap->request_stop(); });
      (void)co_await runtime::sleep_until(*earliest).stop_on(nap->get_token());
      st.nap.reset();
      continue;
    }
    // A copy: the queue folds and prunes while the handler runs.
    TriggerEvent event = *next;
    const std::shared_ptr<const TriggerSet> set = current_;
    const config::Trigger* t = set->find_id(trigger);
    const int attempt = event.attempts + 1;
    if (!t) {
      co_await settle(event.id, nullptr, HandlerResult{false, false, "trigger " + trigger + " is no longer configured"},
                      attempt);
      continue;
    }
    runtime::Result<void> started = co_await queue_->append(TriggerQueue::start_record(event.id, attempt));
    if (!started) {
      nlohmann::json ev = nlohmann::json::object();
      ev["trigger"] = trigger;
      ev["event_id"] = event.id;
      ev["error"] = "cannot write the trigger queue: " + started.message();
      events_.append(std::nullopt, EventType::trigger_queue_error, ev);
      // Not dispatched: a handler must never run without its record. Tried again later.
      if (TriggerEvent* e = queue_->find_mutable(event.id)) e->not_before = SteadyClock::now() + std::chrono::seconds(5);
      continue;
    }
    st.activity.running = true;
    HandlerResult r = co_await handle(set, *t, event);
    st.activity.running = false;
    co_await settle(event.id, t, std::move(r), attempt);
  }
  st.working = false;
}

Task<TriggerDispatcher::HandlerResult> TriggerDispatcher::handle(std::shared_ptr<const TriggerSet> set,
                                                                 const config::Trigger& t, TriggerEvent event) {
  (void)set;  // held for the handler's whole run: `t` lives in it
  switch (t.action) {
    case TriggerAction::restart:
    case TriggerAction::start:
    case TriggerAction::stop: co_return act(t, event);
    case TriggerAction::post: {
      HandlerResult r = co_await post(t, event);
      co_return r;
    }
    case TriggerAction::run:
    case TriggerAction::exec: break;
  }
  auto logs = job_logs(t.id);
  if (!logs) co_return HandlerResult{false, false, "cannot open the job's logs: " + logs.message()};
  HandlerResult r = co_await run(t, event, std::move(logs).value());
  co_return r;
}

// Writes what the dispatch came to; the event's next dispatch (if any) is the worker's to pick.
Task<void> TriggerDispatcher::settle(std::string event_id, const config::Trigger* t, HandlerResult r, int attempt) {
  TriggerEvent* e = queue_->find_mutable(event_id);
  if (!e) co_return;
  const std::string trigger = e->trigger;
  std::string record;
  nlohmann::json ev = nlohmann::json::object();
  ev["trigger"] = trigger;
  ev["event_id"] = event_id;
  ev["attempt"] = attempt;
  std::optional<EventType> kind;
  std::chrono::milliseconds delay{0};
  if (r.interrupted) {
    record = TriggerQueue::attempt_record(event_id, attempt - 1, kInterrupted);
  } else if (r.ok) {
    record = TriggerQueue::done_record(event_id);
  } else if (!t || attempt >= t->max_attempts) {
    record = TriggerQueue::dead_record(event_id, r.error, attempt);
    ev["error"] = r.error;
    kind = EventType::trigger_dead_lettered;
  } else {
    record = TriggerQueue::attempt_record(event_id, attempt, r.error);
    delay = backoff_after(*t, attempt);
    ev["error"] = r.error;
    ev["retry_in_ms"] = delay.count();
    kind = EventType::trigger_retry;
  }
  runtime::Result<void> w = co_await queue_->append(std::move(record));
  if (!w) {
    // The event stays "dispatching" in memory: not dispatched again by this daemon, and
    // dead-lettered as interrupted at the next start unless the write succeeds before.
    nlohmann::json err = nlohmann::json::object();
    err["trigger"] = trigger;
    err["event_id"] = event_id;
    err["error"] = "cannot write the trigger queue: " + w.message();
    events_.append(std::nullopt, EventType::trigger_queue_error, err);
    co_return;
  }
  if (delay.count() > 0)
    if (TriggerEvent* again = queue_->find_mutable(event_id)) again->not_before = SteadyClock::now() + delay;
  if (kind) events_.append(std::nullopt, *kind, ev);
}

// restart/start/stop: posted to the supervisor, which acts on its own time (non-blocking, like
// the API's control calls).
TriggerDispatcher::HandlerResult TriggerDispatcher::act(const config::Trigger& t, const TriggerEvent& e) {
  runtime::Result<void> done = t.action == TriggerAction::restart ? supervisor_.restart(t.service)
                               : t.action == TriggerAction::start ? supervisor_.start(t.service)
                                                                  : supervisor_.stop(t.service);
  nlohmann::json ev = nlohmann::json::object();
  ev["trigger"] = t.id;
  ev["delivery"] = e.delivery;
  ev["event_id"] = e.id;
  ev["action"] = action_name(t.action);
  ev["target"] = t.service;  // "service" is the event log's own field
  ev["ok"] = done.ok();
  if (!done) ev["error"] = done.message();
  events_.append(std::nullopt, EventType::trigger_action, ev);
  TriggerState& st = state(t.id);
  st.activity.last_action = ev;
  if (!done) return {false, false, std::string(action_name(t.action)) + " " + t.service + ": " + done.message()};
  return {true, false, ""};
}

// handler = "http://HOST:PORT/PATH" or "service://NAME/PATH": the event document POSTed; a 2xx
// answer is success.
Task<TriggerDispatcher::HandlerResult> TriggerDispatcher::post(const config::Trigger& t, const TriggerEvent& e) {
  std::string host = t.post_host;
  std::uint16_t port = t.post_port;
  if (!t.service.empty()) {
    host = "127.0.0.1";
    port = 0;
    if (std::optional<ServiceStatus> s = supervisor_.status(t.service); s && !s->ports.empty()) port = s->ports.front();
    if (port == 0)
      if (const config::ServiceSpec* spec = supervisor_.spec(t.service)) port = spec->first_tcp_socket_port();
  }
  HandlerResult r;
  std::string why;
  std::optional<Endpoint> ep = endpoint(host, port, &why);
  const std::string where = (ep ? ep->text : host) + t.post_path;
  if (!ep) {
    r.error = t.service.empty() ? why : "service " + t.service + " has no port now";
  } else {
    const std::string body = event_document(t, e);
    std::string request = "POST " + t.post_path + " HTTP/1.1\r\nHost: " + ep->text +
                          "\r\nUser-Agent: dockless-trigger\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\nX-Dockless-Trigger: " + t.id +
                          "\r\nX-Dockless-Event-Id: " + e.id + "\r\nConnection: close\r\n\r\n" + body;
    const RequestBudget budget(t.timeout);
    HttpExchange x = co_await http_exchange(*ep, std::move(request), where, budget, jobs_.token());
    if (jobs_.token().stop_requested()) {
      r.interrupted = true;
    } else if (!x.status) {
      r.error = std::move(x.error);
    } else {
      r.ok = *x.status >= 200 && *x.status < 300;
      if (!r.ok) r.error = "HTTP " + std::to_string(*x.status) + " from " + where;
    }
  }
  nlohmann::json ev = nlohmann::json::object();
  ev["trigger"] = t.id;
  ev["delivery"] = e.delivery;
  ev["event_id"] = e.id;
  ev["action"] = "post";
  ev["target"] = where;
  ev["ok"] = r.ok;
  if (!r.ok && !r.interrupted) ev["error"] = r.error;
  events_.append(std::nullopt, EventType::trigger_action, ev);
  state(t.id).activity.last_action = ev;
  co_return r;
}

Task<TriggerDispatcher::HandlerResult> TriggerDispatcher::run(const config::Trigger& t, const TriggerEvent& e,
                                                              std::shared_ptr<LogStore> logs) {
  TriggerState& st = state(t.id);
  JobOutcome out;
  runtime::SpawnOptions opts;
  opts.argv = t.run;
  const std::string& user = job_user(t);
  const std::string input = t.action == TriggerAction::exec ? event_document(t, e) : std::string();
  if (apply_identity(user, "", opts, &out.spawn_error)) {
    // Like a service's: the fixed base for its user, never the daemon's environment.
    opts.env = base_environment(opts_.base_env, opts.uid.value_or(::geteuid()));
    opts.env["DOCKLESS_TRIGGER"] = t.id;
    opts.env["DOCKLESS_DELIVERY"] = e.delivery;
    opts.env["DOCKLESS_EVENT"] = e.event;
    opts.env["DOCKLESS_EVENT_ID"] = e.id;
    opts.env["DOCKLESS_ATTEMPT"] = std::to_string(e.attempts + 1);
    // Marked like a service, so a daemon killed meanwhile has the next one stop it.
    if (!supervisor_.supervisor_id().empty()) opts.env[kSupervisorEnv] = supervisor_.supervisor_id();
    out = co_await run_job(std::move(opts), t.timeout, *logs, jobs_.token(), input);
  }
  nlohmann::json ev = job_event(t, e, out);
  ev["timeout_ms"] = t.timeout.count();
  if (!user.empty()) ev["user"] = user;
  else if (auto self = runtime::find_user(::geteuid())) ev["user"] = self->name;
  else ev["user"] = std::to_string(::geteuid());
  events_.append(std::nullopt, EventType::trigger_job_finished, ev);
  ev["time_unix"] = runtime::now_unix_s();
  st.activity.last_action = ev;
  HandlerResult r;
  if (out.stopped) {
    r.interrupted = true;
  } else if (!out.spawned) {
    r.error = "cannot start the job: " + out.spawn_error;
  } else if (out.timed_out) {
    r.error = "the job timed out after " + std::to_string(t.timeout.count()) + " ms";
  } else if (!out.status.success()) {
    r.error = out.status.signaled ? "the job was killed by " + std::string(runtime::signal_name(out.status.code))
                                  : "the job exited with code " + std::to_string(out.status.code);
  } else {
    r.ok = true;
  }
  co_return r;
}

Task<TriggerDispatcher::ReplayAnswer> TriggerDispatcher::replay(std::string event_id) {
  if (!queue_) co_return ReplayAnswer{503, "the trigger queue is unavailable: " + queue_error_};
  const TriggerEvent* e = queue_->find(event_id);
  if (!e) co_return ReplayAnswer{404, "no such event (done events are kept for the last 100 only)"};
  if (e->state == QueuedState::pending)
    co_return ReplayAnswer{409, e->dispatching ? "the event is being dispatched now" : "the event is still pending"};
  const std::string trigger = e->trigger;
  const std::string from(queued_state_name(e->state));
  runtime::Result<void> w = co_await queue_->append(TriggerQueue::replay_record(event_id));
  if (!w) co_return ReplayAnswer{500, "cannot write the trigger queue: " + w.message()};
  nlohmann::json ev = nlohmann::json::object();
  ev["trigger"] = trigger;
  ev["event_id"] = event_id;
  ev["from"] = from;
  events_.append(std::nullopt, EventType::trigger_replayed, ev);
  wake_worker(trigger);
  co_return ReplayAnswer{202, "queued again (was " + from + ")"};
}

std::optional<std::chrono::milliseconds> TriggerDispatcher::retry_in(const TriggerEvent& e) const {
  const auto now = SteadyClock::now();
  if (e.state != QueuedState::pending || e.dispatching || e.not_before <= now) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(e.not_before - now);
}

}  // namespace actors
