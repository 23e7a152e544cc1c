// The trigger queue's operator routes (actors/trigger_queue.hpp):
//   GET  /v1/trigger-events[?state=pending|dead|done|all][&trigger=ID]   the queue, dead letters
//   GET  /v1/trigger-events/{id}                                       one event with its body
//   POST /v1/trigger-events/{id}/replay                                a done or dead event again
// Events carry what senders wrote (bodies, delivery ids) and handler errors: API keys only,
// even with public_read.
#include <chrono>

#include "http/api/disclosure.hpp"
#include "http/api/handlers.hpp"
#include "http/api/triggers.hpp"

namespace http {
namespace {

using runtime::Task;
using actors::QueuedState;

std::optional<std::vector<QueuedState>> states_from(std::string_view text) {
  if (text == "pending") return std::vector{QueuedState::pending};
  if (text == "dead") return std::vector{QueuedState::dead};
  if (text == "done") return std::vector{QueuedState::done};
  if (text == "all") return std::vector{QueuedState::pending, QueuedState::dead, QueuedState::done};
  return std::nullopt;
}

}  // namespace

void TriggerRoutes::attach_events(Router& router) {
  router.get("/v1/trigger-events", [this](Request& req) { return api::now(list_events(req)); });
  router.get("/v1/trigger-events/{id}", [this](Request& req) {
    return api::now(inspect_event(std::string(req.param("id")), req));
  });
  router.post("/v1/trigger-events/{id}/replay", [this](Request& req) -> Task<Response> {
    return replay_event(std::string(req.param("id")), req);
  });
}

nlohmann::json TriggerRoutes::queue_counts(const std::string& trigger) const {
  nlohmann::json j = {{"pending", 0}, {"dead", 0}, {"done", 0}};
  const actors::TriggerQueue* q = dispatcher_.queue();
  if (!q) return j;
  for (QueuedState s : {QueuedState::pending, QueuedState::dead, QueuedState::done}) {
    std::size_t n = 0;
    for (const actors::TriggerEvent* e : q->in_state(s)) n += e->trigger == trigger ? 1 : 0;
    j[std::string(actors::queued_state_name(s))] = n;
  }
  return j;
}

Response TriggerRoutes::list_events(const Request& req) const {
  if (auto refused = api::require_key(req, "the trigger queue")) return std::move(*refused);
  const actors::TriggerQueue* q = dispatcher_.queue();
  if (!q) return Response::error(503, "the trigger queue is unavailable");
  std::vector<QueuedState> states{QueuedState::pending};
  if (auto s = req.query_param("state")) {
    auto parsed = states_from(*s);
    if (!parsed) return Response::error(400, "state must be pending, dead, done or all", std::string(*s));
    states = std::move(*parsed);
  }
  std::string trigger;
  if (auto t = req.query_param("trigger")) trigger = std::string(*t);
  nlohmann::json arr = nlohmann::json::array();
  for (QueuedState s : states)
    for (const actors::TriggerEvent* e : q->in_state(s)) {
      if (!trigger.empty() && e->trigger != trigger) continue;
      nlohmann::json j = e->to_json(false);
      j["body_bytes"] = e->body.size();
      auto in = dispatcher_.retry_in(*e);
      j["retry_in_ms"] = in ? nlohmann::json(in->count()) : nlohmann::json(nullptr);
      arr.push_back(std::move(j));
    }
  nlohmann::json out = nlohmann::json::object();
  out["events"] = std::move(arr);
  out["pending"] = q->pending_count();
  return Response::json(200, out);
}

Response TriggerRoutes::inspect_event(const std::string& id, const Request& req) const {
  if (auto refused = api::require_key(req, "a trigger event")) return std::move(*refused);
  const actors::TriggerQueue* q = dispatcher_.queue();
  if (!q) return Response::error(503, "the trigger queue is unavailable");
  const actors::TriggerEvent* e = q->find(id);
  if (!e) return Response::error(404, "no such trigger event (done events are kept for the last 100 only)", id);
  nlohmann::json j = e->to_json(true);
  auto in = dispatcher_.retry_in(*e);
  j["retry_in_ms"] = in ? nlohmann::json(in->count()) : nlohmann::json(nullptr);
  return Response::json(200, j);
}

Task<Response> TriggerRoutes::replay_event(std::string id, const Request& req) {
  if (auto refused = api::require_key(req, "replaying a trigger event")) co_return std::move(*refused);
  actors::TriggerDispatcher::ReplayAnswer a = co_await dispatcher_.replay(id);
  if (a.status >= 400) co_return Response::error(a.status, a.message, id);
  nlohmann::json j = nlohmann::json::object();
  j["status"] = "queued";
  j["id"] = id;
  j["message"] = a.message;
  co_return Response::json(a.status, j);
}

}  // namespace http
