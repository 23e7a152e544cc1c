#include "http/api/triggers.hpp"

#include <algorithm>
#include <chrono>

#include <nlohmann/json.hpp>

#include "actors/log_store.hpp"
#include "http/api/disclosure.hpp"
#include "http/api/handlers.hpp"
#include "http/crypto.hpp"
#include "http/json_limits.hpp"
#include "http/webhook.hpp"
#include "runtime/clock.hpp"

namespace http {
namespace {

using runtime::Task;
using Action = config::Trigger::Action;
using actors::DeliveryOutcome;

nlohmann::json action_json(const config::Trigger& t, const std::string& job_user, bool public_view) {
  nlohmann::json a = nlohmann::json::object();
  switch (t.action) {
    case Action::run:
    case Action::exec:
      // A command line, which carries tokens: withheld from public readers.
      a[t.action == Action::run ? "run" : "exec"] = public_view ? nlohmann::json(nullptr) : nlohmann::json(t.run);
      a["timeout_ms"] = t.timeout.count();
      // null: the daemon's own user.
      a["user"] = job_user.empty() ? nlohmann::json(nullptr) : nlohmann::json(job_user);
      break;
    case Action::post:
      a["post"] = t.handler;
      a["timeout_ms"] = t.timeout.count();
      break;
    case Action::restart: a["restart"] = t.service; break;
    case Action::start: a["start"] = t.service; break;
    case Action::stop: a["stop"] = t.service; break;
  }
  return a;
}

// What `match` means once the signature is good. GitHub: the event is X-GitHub-Event and the
// branch is the push payload's "ref" (refs/heads/<branch>). Others: the event is the JSON
// body's "type" (the standard-webhooks convention), else its "event"; the branch is its "ref"
// (refs/heads/<branch>), else its "branch". Returns the reason it does not apply, or "".
// *malformed is set when the match needs the body and it is not a JSON object.
// An a2a-push delivery's event is always kA2aEvent (github is false for it, but it names no
// event in its body).
constexpr std::string_view kA2aEvent = "a2a.task.received";

std::string mismatch(const config::Trigger& t, webhook::Provider provider, const Request& req, std::string* event,
                     bool* malformed) {
  const bool a2a = t.kind == "a2a-push";
  const bool github = provider == webhook::Provider::github && !a2a;
  const bool needs_body = !t.branch.empty() || (!github && !a2a && !t.events.empty());
  // GitHub's "issues.opened": X-GitHub-Event "issues" and the payload's "action" "opened".
  const bool dotted = github && std::any_of(t.events.begin(), t.events.end(), [](const std::string& e) {
                        return e.find('.') != std::string::npos;
                      });
  nlohmann::json body;
  if (needs_body || !github || dotted) {
    // Too deep to be a webhook payload, and too deep to walk safely: not an object.
    if (json_depth_within(req.body)) body = nlohmann::json::parse(req.body, nullptr, false);
    if (!body.is_object()) {
      if (needs_body) {
        *malformed = true;
        return "the body is not a JSON object (send Content-Type: application/json)";
      }
      body = nlohmann::json::object();
    }
  }
  if (!github && !a2a) {
    for (const char* key : {"type", "event"})
      if (auto it = body.find(key); it != body.end() && it->is_string()) {
        *event = it->get<std::string>();
        break;
      }
  }
  std::string qualified;  // github: "EVENT.ACTION" when the payload has an action
  if (dotted)
    if (auto it = body.find("action"); it != body.end() && it->is_string())
      qualified = *event + "." + it->get<std::string>();
  if (!t.events.empty() && std::find(t.events.begin(), t.events.end(), *event) == t.events.end() &&
      (qualified.empty() || std::find(t.events.begin(), t.events.end(), qualified) == t.events.end()))
    return "event \"" + (qualified.empty() ? *event : qualified) + "\" is not one of the trigger's match.events";
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

nlohmann::json answer_json(std::string_view status, const std::string& trigger, const std::string& delivery,
                           const std::string& reason) {
  nlohmann::json j = nlohmann::json::object();
  j["status"] = status;
  j["trigger"] = trigger;
  if (!delivery.empty()) j["delivery"] = delivery;
  if (!reason.empty()) j["reason"] = reason;
  return j;
}

// The headers an exec:/HTTP handler sees: only those that say what was sent (never a
// signature or a credential).
nlohmann::json event_headers(const Request& req) {
  nlohmann::json headers = nlohmann::json::object();
  for (std::string_view name : {"Content-Type", "User-Agent", "X-GitHub-Event", "X-GitHub-Delivery",
                                "X-GitHub-Hook-ID", "webhook-id", "webhook-timestamp", "X-Delivery-Id",
                                "Idempotency-Key"})
    if (auto v = req.headers.get(name)) headers[std::string(name)] = std::string(*v);
  return headers;
}

// The sender's answer: the outcome and the id in the body (and the queued event's id); for an
// error the reason is the error's message.
Response respond(const std::string& trigger, const std::string& delivery, const actors::DeliveryAnswer& a) {
  const std::string_view outcome = actors::outcome_name(a.outcome);
  if (a.status >= 400) {
    Response r = Response::error(a.status, a.reason, answer_json(outcome, trigger, delivery, ""));
    if (a.status == 405) r.header("Allow", "POST");
    if (a.status == 503) r.header("Retry-After", "60");
    return r;
  }
  nlohmann::json body = answer_json(outcome, trigger, delivery, a.reason);
  if (!a.queued.empty()) body["queued"] = a.queued;
  return Response::json(a.status, body);
}

}  // namespace

actors::TriggerDispatcher::Prepared TriggerRoutes::prepare(const std::vector<config::Trigger>& triggers,
                                                           const Router& router) const {
  actors::TriggerDispatcher::Prepared out;
  for (const config::Trigger& t : triggers) {
    if (router.match("POST", t.path).kind != Router::Match::Kind::not_found)
      out.errors.push_back("trigger " + t.id + ": path " + t.path + " collides with an API route");
    else if (t.kind != "a2a-push" && !webhook::provider_from(t.provider))
      out.errors.push_back("trigger " + t.id + ": unknown provider " + t.provider);
  }
  if (!out.errors.empty()) return out;
  return dispatcher_.prepare(triggers);
}

std::vector<std::string> TriggerRoutes::install(const std::vector<config::Trigger>& triggers, const Router& router) {
  actors::TriggerDispatcher::Prepared prepared = prepare(triggers, router);
  if (!prepared.errors.empty()) return std::move(prepared.errors);
  commit(std::move(prepared));
  return {};
}

// An a2a-push path is not claimed: the gate authenticates it like any API call (Bearer key or
// the canonical HMAC, with its replay cache), so it accepts exactly the API's credentials.
bool TriggerRoutes::claims(std::string_view, std::string_view path) const {
  const config::Trigger* t = dispatcher_.snapshot()->find_path(path);
  return t && t->kind != "a2a-push";
}

void TriggerRoutes::attach(Router& router) {
  Router::Delegate d;
  d.pin = [this](std::string_view path) -> std::shared_ptr<const void> {
    std::shared_ptr<const actors::TriggerSet> set = dispatcher_.snapshot();
    if (!set->find_path(path)) return nullptr;
    return set;
  };
  d.handler = [this](Request& req) -> Task<Response> { return handle(req); };
  router.set_delegate(std::move(d));
  router.get("/v1/triggers", [this](Request& req) { return api::now(list(req)); });
  router.get("/v1/triggers/{id}/logs", [this](Request& req) {
    return api::now(logs(std::string(req.param("id")), req));
  });
  attach_events(router);
}

Response TriggerRoutes::refuse(const Request& req, const config::Trigger& t, const std::string& delivery,
                               const std::string& event, DeliveryOutcome outcome, int status,
                               const std::string& reason) {
  const actors::DeliveryAnswer a{outcome, status, reason};
  dispatcher_.refused(t, delivery, event, a, req.peer);
  return respond(t.id, delivery, a);
}

Task<Response> TriggerRoutes::handle(Request& req) {
  // Pinned at head time: this request is judged by that version even if a reload came since.
  auto set = std::static_pointer_cast<const actors::TriggerSet>(req.pinned);
  const config::Trigger* def = set->find_path(req.path);
  if (!def) co_return Response::error(404, "no such trigger", req.path);
  const config::Trigger& t = *def;
  if (req.method != "POST")
    co_return refuse(req, t, "", "", DeliveryOutcome::rejected, 405, "method " + req.method + " not allowed (POST only)");

  // install() admitted only known providers.
  const webhook::Provider provider = webhook::provider_from(t.provider).value_or(webhook::Provider::github);
  webhook::Verdict v;
  if (t.kind == "a2a-push") {
    // The gate let it through with an API key (or it came over the unix socket).
    if (!req.principal.trusted())
      co_return refuse(req, t, "", "", DeliveryOutcome::rejected, 401, "an a2a-push delivery needs an API key");
    v.ok = true;
    v.event = std::string(kA2aEvent);
    v.delivery_id =
        std::string(req.headers.get("X-Delivery-Id").value_or(req.headers.get("Idempotency-Key").value_or("")));
    if (!webhook::plain_token(v.delivery_id))
      co_return refuse(req, t, "", v.event, DeliveryOutcome::rejected, 400,
                       "delivery id is longer than 200 bytes or holds control characters");
  } else {
    v = webhook::verify(provider, t.secret, req, runtime::now_unix_s());
  }
  if (!v.ok) {
    // The id of a refused delivery is what the sender claims; logged for tracing only.
    std::string claimed(req.headers.get("X-GitHub-Delivery").value_or(req.headers.get("webhook-id").value_or("")));
    co_return refuse(req, t, claimed, "", DeliveryOutcome::rejected, v.status, v.reason);
  }
  if (provider == webhook::Provider::github && v.event == "ping")
    co_return refuse(req, t, v.delivery_id, v.event, DeliveryOutcome::ping, 200, "ping acknowledged; no action");

  bool malformed = false;
  std::string why = mismatch(t, provider, req, &v.event, &malformed);
  if (malformed) co_return refuse(req, t, v.delivery_id, v.event, DeliveryOutcome::rejected, 400, why);
  if (!why.empty()) co_return refuse(req, t, v.delivery_id, v.event, DeliveryOutcome::ignored, 200, why);

  actors::TriggerDelivery delivery{set, def, v.delivery_id, v.event, crypto::hex(v.signature), req.peer};
  delivery.headers = event_headers(req);
  delivery.body = req.body;
  delivery.body_json = json_depth_within(req.body) && nlohmann::json::accept(req.body);
  const actors::DeliveryAnswer a = co_await dispatcher_.dispatch(std::move(delivery));
  co_return respond(t.id, v.delivery_id, a);
}

Response TriggerRoutes::list(const Request& req) const {
  const bool public_view = api::disclosure_for(req.principal) == api::Disclosure::state;
  const std::shared_ptr<const actors::TriggerSet> set = dispatcher_.snapshot();
  nlohmann::json arr = nlohmann::json::array();
  for (std::size_t i = 0; i < set->triggers.size(); ++i) {
    const config::Trigger& t = set->triggers[i];
    nlohmann::json j = nlohmann::json::object();
    j["id"] = t.id;
    j["kind"] = t.kind;
    j["provider"] = t.provider;
    j["path"] = t.path;
    j["events"] = t.events;
    j["branch"] = t.branch;
    j["action"] = action_json(t, dispatcher_.job_user(t), public_view);
    j["max_attempts"] = t.max_attempts;
    j["backoff_ms"] = t.backoff.count();
    j["binding_version"] = set->binding_versions.size() > i ? set->binding_versions[i] : 0;
    j["queue"] = queue_counts(t.id);
    if (const actors::TriggerActivity* act = dispatcher_.activity(t.id)) {
      j["running"] = act->running;
      // The last delivery's events: request data (client-chosen ids and text).
      j["last_delivery"] = public_view ? nlohmann::json(nullptr) : act->last_delivery;
      j["last_action"] = public_view ? nlohmann::json(nullptr) : act->last_action;
    }
    arr.push_back(std::move(j));
  }
  nlohmann::json out = nlohmann::json::object();
  out["version"] = set->version;
  out["triggers"] = std::move(arr);
  return Response::json(200, out);
}

// The tail of a job's output as text: ?stream=stdout|stderr (default stdout), ?bytes=N
// (default 64 KiB, at most 1 MiB).
Response TriggerRoutes::logs(const std::string& id, const Request& req) {
  // A job prints what its command and the delivery gave it.
  if (auto refused = api::require_key(req, "a trigger job's output")) return std::move(*refused);
  if (!dispatcher_.snapshot()->find_id(id) && !dispatcher_.activity(id))
    return Response::error(404, "no such trigger", id);
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
  auto opened = dispatcher_.job_logs(id);
  if (!opened) return Response::error(500, "cannot open the job's logs", opened.message());
  const actors::LogStore& store = **opened;
  std::uint64_t end = store.end(stream);
  std::uint64_t pos = std::max(store.begin(stream), end > want ? end - want : 0);
  std::string text;
  // Bounded: each read returns at least one byte until `end`, from at most a few files.
  for (int rounds = 0; pos < end && rounds < 64; ++rounds) {
    auto chunk = store.read(stream, pos, static_cast<std::size_t>(end - pos));
    if (!chunk || chunk->data.empty()) break;
    pos = chunk->pos + chunk->data.size();
    text += chunk->data;
  }
  return Response::text(200, std::move(text));
}

}  // namespace http
