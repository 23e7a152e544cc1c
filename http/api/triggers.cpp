#include "http/api/triggers.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>

#include "actors/trigger_job.hpp"
#include "runtime/fs.hpp"

namespace http {
namespace {

using runtime::Task;
using Action = config::Trigger::Action;

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string_view action_name(Action a) {
  switch (a) {
    case Action::restart: return "restart";
    case Action::start: return "start";
    case Action::stop: return "stop";
    case Action::run: return "run";
  }
  return "?";
}

nlohmann::json action_json(const config::Trigger& t) {
  nlohmann::json a = nlohmann::json::object();
  if (t.action == Action::run) {
    a["run"] = t.run;
    a["timeout_ms"] = t.timeout.count();
  } else {
    a[std::string(action_name(t.action))] = t.service;
  }
  return a;
}

// What `match` means once the signature is good. GitHub: the event is X-GitHub-Event and the
// branch is the push payload's "ref" (refs/heads/<branch>). Others: the event is the JSON
// body's "type" (the standard-webhooks convention), else its "event"; the branch is its "ref"
// (refs/heads/<branch>), else its "branch". Returns the reason it does not apply, or "".
// *malformed is set when the match needs the body and it is not a JSON object.
std::string mismatch(const TriggerDef& def, const Request& req, std::string* event, bool* malformed) {
  const config::Trigger& t = def.spec;
  const bool github = def.provider == webhook::Provider::github;
  const bool needs_body = !t.branch.empty() || (!github && !t.events.empty());
  nlohmann::json body;
  if (needs_body || !github) {
    body = nlohmann::json::parse(req.body, nullptr, false);
    if (!body.is_object()) {
      if (needs_body) {
        *malformed = true;
        return "the body is not a JSON object (send Content-Type: application/json)";
      }
      body = nlohmann::json::object();
    }
  }
  if (!github) {
    for (const char* key : {"type", "event"})
      if (auto it = body.find(key); it != body.end() && it->is_string()) {
        *event = it->get<std::string>();
        break;
      }
  }
  if (!t.events.empty() && std::find(t.events.begin(), t.events.end(), *event) == t.events.end())
    return "event \"" + *event + "\" is not one of the trigger's match.events";
  if (!t.branch.empty()) {
    std::string branch;
    if (auto it = body.find("ref"); it != body.end() && it->is_string()) {
      std::string ref = it->get<std::string>();
      constexpr std::string_view kHeads = "refs/heads/";
      if (ref.rfind(kHeads, 0) != 0) return "ref \"" + ref + "\" is not a branch";
      branch = ref.substr(kHeads.size());
    } else if (auto b = body.find("branch"); !github && b != body.end() && b->is_string()) {
      branch = b->get<std::string>();
    } else {
      return "the payload names no branch (match.branch is \"" + t.branch + "\")";
    }
    if (branch != t.branch) return "branch \"" + branch + "\" is not \"" + t.branch + "\"";
  }
  return "";
}

nlohmann::json answer(std::string_view status, const std::string& trigger, const std::string& delivery,
                      const std::string& reason) {
  nlohmann::json j = nlohmann::json::object();
  j["status"] = status;
  j["trigger"] = trigger;
  if (!delivery.empty()) j["delivery"] = delivery;
  if (!reason.empty()) j["reason"] = reason;
  return j;
}

nlohmann::json job_event(const std::string& trigger, const std::string& delivery, const actors::JobOutcome& out) {
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

const TriggerDef* TriggerSet::find_path(std::string_view path) const {
  auto it = by_path.find(path);
  return it == by_path.end() ? nullptr : &triggers[it->second];
}

const TriggerDef* TriggerSet::find_id(std::string_view id) const {
  for (const TriggerDef& t : triggers)
    if (t.spec.id == id) return &t;
  return nullptr;
}

TriggerDispatcher::TriggerDispatcher(Options opts, actors::Supervisor& supervisor, actors::EventLog& events)
    : opts_(std::move(opts)), supervisor_(supervisor), events_(events),
      current_(std::make_shared<const TriggerSet>()) {}

TriggerDispatcher::~TriggerDispatcher() = default;

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

std::vector<std::string> TriggerDispatcher::install(const std::vector<config::Trigger>& triggers,
                                                    const Router& router) {
  std::vector<std::string> errors;
  auto next = std::make_shared<TriggerSet>();
  next->version = current_->version + 1;
  for (const config::Trigger& t : triggers) {
    if (router.match("POST", t.path).kind != Router::Match::Kind::not_found) {
      errors.push_back("trigger " + t.id + ": path " + t.path + " collides with an API route");
      continue;
    }
    auto provider = webhook::provider_from(t.provider);
    if (!provider) {
      errors.push_back("trigger " + t.id + ": unknown provider " + t.provider);
      continue;
    }
    next->by_path[t.path] = next->triggers.size();
    next->triggers.push_back({t, *provider});
  }
  if (!errors.empty()) return errors;
  for (const TriggerDef& t : next->triggers) {
    if (auto r = runtime::make_dirs(dir_of(t.spec.id), 0700); !r)
      errors.push_back("trigger " + t.spec.id + ": cannot create " + dir_of(t.spec.id) + ": " + r.message());
    (void)state(t.spec.id);
  }
  if (!errors.empty()) return errors;
  current_ = std::move(next);
  return errors;
}

bool TriggerDispatcher::claims(std::string_view, std::string_view path) const {
  return current_->find_path(path) != nullptr;
}

void TriggerDispatcher::attach(Router& router) {
  Router::Delegate d;
  d.pin = [this](std::string_view path) -> std::shared_ptr<const void> {
    std::shared_ptr<const TriggerSet> set = current_;
    if (!set->find_path(path)) return nullptr;
    return set;
  };
  d.handler = [this](Request& req) -> Task<Response> { return handle(req); };
  router.set_delegate(std::move(d));
  router.get("/v1/triggers", [this](Request&) -> Task<Response> { co_return Response::json(200, list()); });
  router.get("/v1/triggers/{id}/logs", [this](Request& req) -> Task<Response> {
    co_return logs(std::string(req.param("id")), req);
  });
}

Response TriggerDispatcher::finish(const TriggerDef& t, const std::string& delivery, const std::string& event,
                                   const std::string& outcome, int status, const std::string& reason) {
  nlohmann::json ev = nlohmann::json::object();
  ev["trigger"] = t.spec.id;
  ev["delivery"] = delivery.empty() ? nlohmann::json(nullptr) : nlohmann::json(delivery);
  ev["provider"] = t.spec.provider;
  if (!event.empty()) ev["event"] = event;
  ev["outcome"] = outcome;
  ev["status"] = status;
  if (!reason.empty()) ev["reason"] = reason;
  state(t.spec.id).last_delivery = ev;
  state(t.spec.id).last_delivery["time_unix"] = unix_now();
  events_.append(std::nullopt, "trigger_delivery", ev);
  if (status >= 400) {
    Response r = Response::error(status, reason, answer(outcome, t.spec.id, delivery, ""));
    if (status == 405) r.header("Allow", "POST");
    return r;
  }
  return Response::json(status, answer(outcome, t.spec.id, delivery, reason));
}

Task<Response> TriggerDispatcher::handle(Request& req) {
  // Pinned at head time: this request is judged by that version even if a reload came since.
  auto set = std::static_pointer_cast<const TriggerSet>(req.pinned);
  const TriggerDef* def = set->find_path(req.path);
  if (!def) co_return Response::error(404, "no such trigger", req.path);
  const TriggerDef& t = *def;
  if (req.method != "POST")
    co_return finish(t, "", "", "rejected", 405, "method " + req.method + " not allowed (POST only)");

  webhook::Verdict v = webhook::verify(t.provider, t.spec.secret, req, unix_now());
  if (!v.ok) {
    // The id of a refused delivery is what the sender claims; logged for tracing only.
    std::string claimed(req.headers.get("X-GitHub-Delivery").value_or(req.headers.get("webhook-id").value_or("")));
    co_return finish(t, claimed, "", "rejected", v.status, v.reason);
  }
  if (t.provider == webhook::Provider::github && v.event == "ping")
    co_return finish(t, v.delivery_id, v.event, "ping", 200, "ping acknowledged; no action");

  bool malformed = false;
  std::string why = mismatch(t, req, &v.event, &malformed);
  if (malformed) co_return finish(t, v.delivery_id, v.event, "rejected", 400, why);
  if (!why.empty()) co_return finish(t, v.delivery_id, v.event, "ignored", 200, why);

  TriggerState& st = state(t.spec.id);
  if (!v.delivery_id.empty() && st.id_set.count(v.delivery_id))
    co_return finish(t, v.delivery_id, v.event, "duplicate", 200, "delivery already handled; not run again");

  if (t.spec.action == Action::run) {
    if (st.job_running)
      co_return finish(t, v.delivery_id, v.event, "busy", 409, "a job of this trigger is still running");
    std::string error;
    if (!logs_of(t.spec.id, &error))
      co_return finish(t, v.delivery_id, v.event, "failed", 500, "cannot open the job's logs: " + error);
    st.job_running = true;
    remember(t.spec.id, st, v.delivery_id);
    Response r = finish(t, v.delivery_id, v.event, "accepted", 202, "");
    jobs_.spawn(run_job(def, set, v.delivery_id, v.event), "trigger/" + t.spec.id);
    co_return r;
  }

  runtime::Result<void> done = t.spec.action == Action::restart ? supervisor_.restart(t.spec.service)
                               : t.spec.action == Action::start ? supervisor_.start(t.spec.service)
                                                                : supervisor_.stop(t.spec.service);
  nlohmann::json ev = nlohmann::json::object();
  ev["trigger"] = t.spec.id;
  ev["delivery"] = v.delivery_id;
  ev["action"] = action_name(t.spec.action);
  ev["target"] = t.spec.service;  // "service" is the event log's own field
  ev["ok"] = done.ok();
  if (!done) ev["error"] = done.message();
  if (!done) {
    // Not remembered: a redelivery may succeed once the service is back.
    Response r = finish(t, v.delivery_id, v.event, "failed", 500,
                        std::string(action_name(t.spec.action)) + " " + t.spec.service + ": " + done.message());
    events_.append(std::nullopt, "trigger_action", ev);
    co_return r;
  }
  remember(t.spec.id, st, v.delivery_id);
  Response r = finish(t, v.delivery_id, v.event, "accepted", 202, "");
  events_.append(std::nullopt, "trigger_action", ev);
  st.last_job = ev;
  co_return r;
}

void TriggerDispatcher::remember(const std::string& id, TriggerState& st, const std::string& delivery) {
  if (delivery.empty()) return;
  st.ids.push_back(delivery);
  st.id_set.insert(delivery);
  while (st.ids.size() > kRememberedIds) {
    st.id_set.erase(st.ids.front());
    st.ids.pop_front();
  }
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
      events_.append(std::nullopt, "trigger_deliveries_not_saved", ev);
    }
  }
  st.persisting = false;
}

actors::LogStore* TriggerDispatcher::logs_of(const std::string& id, std::string* error) {
  TriggerState& st = state(id);
  if (!st.logs) {
    auto store = actors::LogStore::open(dir_of(id) + "/logs", 10u << 20, 3);
    if (!store) {
      *error = store.message();
      return nullptr;
    }
    st.logs = std::move(store).value();
  }
  return st.logs.get();
}

Task<void> TriggerDispatcher::run_job(const TriggerDef* def, std::shared_ptr<const TriggerSet> pin,
                                      std::string delivery, std::string event) {
  // `pin` keeps *def alive for the job's whole run, whatever reloads happen meanwhile.
  const config::Trigger& t = def->spec;
  std::vector<std::string> env = opts_.base_env;
  env.push_back("DOCKLESS_TRIGGER=" + t.id);
  env.push_back("DOCKLESS_DELIVERY=" + delivery);
  env.push_back("DOCKLESS_EVENT=" + event);
  TriggerState& st = state(t.id);
  std::string error;
  actors::LogStore* store = logs_of(t.id, &error);
  actors::JobOutcome out = co_await actors::run_job(t.run, std::move(env), t.timeout, *store, jobs_.token());
  nlohmann::json ev = job_event(t.id, delivery, out);
  ev["timeout_ms"] = t.timeout.count();
  events_.append(std::nullopt, "trigger_job_finished", ev);
  ev["time_unix"] = unix_now();
  st.last_job = std::move(ev);
  st.job_running = false;
  (void)pin;
}

nlohmann::json TriggerDispatcher::list() const {
  nlohmann::json arr = nlohmann::json::array();
  for (const TriggerDef& t : current_->triggers) {
    nlohmann::json j = nlohmann::json::object();
    j["id"] = t.spec.id;
    j["provider"] = t.spec.provider;
    j["path"] = t.spec.path;
    j["events"] = t.spec.events;
    j["branch"] = t.spec.branch;
    j["action"] = action_json(t.spec);
    auto it = states_.find(t.spec.id);
    if (it != states_.end()) {
      j["running"] = it->second->job_running;
      j["last_delivery"] = it->second->last_delivery;
      j["last_action"] = it->second->last_job;
    }
    arr.push_back(std::move(j));
  }
  nlohmann::json out = nlohmann::json::object();
  out["version"] = current_->version;
  out["triggers"] = std::move(arr);
  return out;
}

// The tail of a job's output as text: ?stream=stdout|stderr (default stdout), ?bytes=N
// (default 64 KiB, at most 1 MiB).
Response TriggerDispatcher::logs(const std::string& id, const Request& req) {
  if (!current_->find_id(id) && !states_.count(id)) return Response::error(404, "no such trigger", id);
  actors::Stream stream = actors::Stream::out;
  if (auto s = req.query_param("stream")) {
    if (*s == "stderr") stream = actors::Stream::err;
    else if (*s != "stdout") return Response::error(400, "stream must be stdout or stderr", std::string(*s));
  }
  std::uint64_t want = 64u << 10;
  if (auto b = req.query_param("bytes")) {
    try {
      want = std::min<std::uint64_t>(std::stoull(std::string(*b)), 1u << 20);
    } catch (const std::exception&) {
      return Response::error(400, "bytes must be a number", std::string(*b));
    }
  }
  std::string error;
  actors::LogStore* store = logs_of(id, &error);
  if (!store) return Response::error(500, "cannot open the job's logs", error);
  std::uint64_t end = store->end(stream);
  std::uint64_t pos = std::max(store->begin(stream), end > want ? end - want : 0);
  std::string text;
  // Bounded: each read returns at least one byte until `end`, from at most a few files.
  for (int rounds = 0; pos < end && rounds < 64; ++rounds) {
    auto chunk = store->read(stream, pos, static_cast<std::size_t>(end - pos));
    if (!chunk || chunk->data.empty()) break;
    pos = chunk->pos + chunk->data.size();
    text += chunk->data;
  }
  return Response::text(200, std::move(text));
}

Task<void> TriggerDispatcher::shutdown() {
  jobs_.request_stop();
  co_await jobs_.join();
}

}  // namespace http
