// GET /v1/services/{name}/history, GET /v1/history (every service, for the dashboard: one
// request a refresh instead of one per row) and GET /v1/node: the history sampler's rings
// (actors/history.hpp) and the node's figures as JSON. Nothing here reads a service.
#include <algorithm>

#include "actors/history.hpp"
#include "actors/node_stats.hpp"
#include "http/api/handlers.hpp"
#include "runtime/process.hpp"

namespace http::api {

using nlohmann::json;

namespace {

json mark_json(const actors::Timeline::Mark& m) {
  json j = json::object();
  j["time"] = actors::format_utc_ms(m.unix_ms);
  j["kind"] = std::string(actors::to_string(m.kind));
  if (m.kind == actors::EventType::exited) {
    j["code"] = m.known && !m.signaled ? json(m.code) : json(nullptr);
    j["signal"] = m.known && m.signaled ? json(runtime::signal_name(m.code)) : json(nullptr);
  }
  return j;
}

json history_json(const actors::ServiceStatus& s, const actors::History* history) {
  json j = json::object();
  j["name"] = s.name;
  j["state"] = std::string(actors::to_string(s.state));
  j["restarts"] = s.restarts;
  json cpu = json::array(), memory = json::array(), events = json::array();
  j["interval_seconds"] = history ? json(static_cast<double>(history->interval().count()) / 1000.0) : json(nullptr);
  j["start"] = nullptr;
  const actors::History::Track* t = history ? history->track(s.name) : nullptr;
  if (history) {
    const std::int64_t now = history->tick_now();
    const std::int64_t first_tick = now - static_cast<std::int64_t>(actors::UsageRing::kPoints) + 1;
    if (t) {
      const std::vector<actors::UsageRing::Point> points = t->usage.series(now);
      // From the first point with a figure: a service that ran for five minutes answers
      // with five minutes, not an hour of nulls.
      auto first = std::find_if(points.begin(), points.end(),
                                [](const auto& p) { return p.cpu_permille || p.memory_bytes; });
      if (first != points.end()) {
        j["start"] = actors::format_utc_ms(history->unix_ms_of(first_tick + (first - points.begin())));
        for (auto it = first; it != points.end(); ++it) {
          cpu.push_back(it->cpu_permille ? json(static_cast<double>(*it->cpu_permille) / 10.0) : json(nullptr));
          memory.push_back(it->memory_bytes ? json(*it->memory_bytes) : json(nullptr));
        }
      }
      for (const auto& m : t->timeline.since(history->unix_ms_of(first_tick))) events.push_back(mark_json(m));
    }
  }
  j["cpu_percent"] = std::move(cpu);
  j["memory_bytes"] = std::move(memory);
  j["events"] = std::move(events);
  return j;
}

json node_json(const ApiContext& ctx) {
  const actors::NodeStats n = actors::read_node_stats(ctx.supervisor->config().data_dir);
  auto opt = [](const auto& v) { return v ? json(*v) : json(nullptr); };
  json j = json::object();
  j["cpus"] = n.cpus;
  j["load"] = n.load1 ? json::array({*n.load1, *n.load5, *n.load15}) : json(nullptr);
  j["memory"] = {{"total_bytes", opt(n.memory_total)}, {"available_bytes", opt(n.memory_available)}};
  j["disk"] = {{"total_bytes", opt(n.disk_total)}, {"available_bytes", opt(n.disk_available)}};
  return j;
}

Response service_history(ApiContext& ctx, const Request& req) {
  const std::string name(req.param("name"));
  const std::optional<actors::ServiceStatus> s = ctx.supervisor->status(name);
  if (!s) return no_such_service(name);
  return Response::json(200, history_json(*s, ctx.history));
}

Response all_history(ApiContext& ctx) {
  std::vector<actors::ServiceStatus> all = ctx.supervisor->list();
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  json services = json::array();
  for (const auto& s : all) services.push_back(history_json(s, ctx.history));
  json j = json::object();
  j["node"] = node_json(ctx);
  j["services"] = std::move(services);
  return Response::json(200, j);
}

}  // namespace

void register_history(Router& router, ApiContext& ctx) {
  router.get("/v1/services/{name}/history", [&ctx](Request& req) { return now(service_history(ctx, req)); });
  router.get("/v1/history", [&ctx](Request&) { return now(all_history(ctx)); });
  router.get("/v1/node", [&ctx](Request&) { return now(Response::json(200, node_json(ctx))); });
}

}  // namespace http::api
