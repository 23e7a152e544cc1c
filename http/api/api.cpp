#include "http/api/api.hpp"

#include "http/api/handlers.hpp"

namespace http {

using nlohmann::json;
using runtime::Task;

std::stop_token LogFollowers::token(const std::string& name) { return sources_[name].get_token(); }

void LogFollowers::end(const std::string& name) { sources_[name].request_stop(); }

void LogFollowers::forget(const std::string& name) { sources_.erase(name); }

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

Task<Response> reload(ApiContext& ctx) {
  if (!ctx.reload) co_return Response::error(501, "reload is not available");
  json r = co_await ctx.reload();
  co_return reload_response(r);
}

}  // namespace

void register_api(Router& router, ApiContext& ctx) {
  router.get("/health", [](Request&) -> Task<Response> { co_return health(); });
  router.get("/healthz", [](Request&) -> Task<Response> { co_return health(); });
  router.get("/readyz", [&ctx](Request&) { return api::now(ready(ctx)); });
  router.post("/v1/reload", [&ctx](Request&) -> Task<Response> { return reload(ctx); });
  api::register_services(router, ctx);
  api::register_logs(router, ctx);
  api::register_events(router, ctx);
  api::register_metrics(router, ctx);
}

}  // namespace http
