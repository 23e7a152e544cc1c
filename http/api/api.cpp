#include "http/api/api.hpp"

#include "http/api/handlers.hpp"

namespace http {

using nlohmann::json;
using runtime::Task;

std::optional<actors::ProcStats> ProcStatsCache::get(pid_t pid, std::uint64_t start_ticks) {
  const auto now = std::chrono::steady_clock::now();
  auto it = samples_.find(pid);
  if (it != samples_.end() && it->second.start_ticks == start_ticks && now - it->second.at < max_age)
    return it->second.stats;
  // Forget samples of processes nobody asked about lately (bounded by the live pids).
  if (samples_.size() > 64)
    std::erase_if(samples_, [&](const auto& kv) { return now - kv.second.at > 10 * max_age; });
  Sample s{now, start_ticks, actors::read_proc_stats(pid, start_ticks)};
  samples_[pid] = s;
  return s.stats;
}

namespace {

Response health() {
  json j = json::object();
  j["status"] = "ok";
  return Response::json(200, j);
}

Response ready(const ApiContext& ctx) {
  json j = json::object();
  const bool r = ctx.supervisor->ready();
  j["ready"] = r;
  return Response::json(r ? 200 : 503, j);
}

Response reload_response(const json& r) {
  if (r.value("ok", false)) return Response::json(200, r);
  return Response::error(422, "config invalid", r.value("errors", json::array()));
}

// ?dry_run=1: the plan only (actors/reload_plan.hpp); same auth, same errors, nothing changed.
Task<Response> reload(ApiContext& ctx, bool dry_run) {
  if (!ctx.reload) co_return Response::error(501, "reload is not available");
  json r = co_await ctx.reload(dry_run);
  co_return reload_response(r);
}

}  // namespace

void register_api(Router& router, ApiContext& ctx) {
  router.get("/health", [](Request&) -> Task<Response> { co_return health(); });
  router.get("/healthz", [](Request&) -> Task<Response> { co_return health(); });
  router.get("/readyz", [&ctx](Request&) { return api::now(ready(ctx)); });
  router.post("/v1/reload", [&ctx](Request& req) -> Task<Response> {
    const auto dry_run = req.query_param("dry_run");
    return reload(ctx, dry_run && api::truthy(*dry_run));
  });
  api::register_services(router, ctx);
  api::register_logs(router, ctx);
  api::register_events(router, ctx);
  api::register_metrics(router, ctx);
  api::register_history(router, ctx);
}

}  // namespace http
