// /v1/services: list, inspect, register (POST), replace (PUT), remove (DELETE), and
// the operator actions start/stop/restart/signal/stdin.
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "http/api/handlers.hpp"

namespace http::api {

using nlohmann::json;
using runtime::Task;

namespace {

Response list_services(ApiContext& ctx, const Request& req) {
  const Disclosure d = disclosure_for(req.principal);
  ListingCache& cache = d == Disclosure::state ? ctx.public_listing : ctx.listing;
  const auto now = std::chrono::steady_clock::now();
  const std::uint64_t generation = ctx.supervisor->generation();
  if (!cache.body || cache.generation != generation || now - cache.built_at >= ctx.proc_stats.max_age) {
    std::vector<actors::ServiceStatus> all = ctx.supervisor->list();
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    json out = json::array();
    for (const auto& s : all) out.push_back(service_json(s, ctx, d));
    cache.body = std::make_shared<const std::string>(Response::json(200, out).body);
    cache.generation = generation;
    cache.built_at = now;
  }
  Response r = Response::text(200, {}, "application/json");
  r.shared_body = cache.body;  // shared: a rebuild replaces the pointer, never the bytes in flight
  return r;
}

// The audit record of a ?secrets=1 read: which key (its name, never the key) from where.
json secrets_read_detail(const Request& req) {
  json d = json::object();
  d["key"] = req.principal.access == Principal::Access::key ? json(req.principal.key_name) : json(nullptr);
  d["peer"] = req.peer;
  return d;
}

Response get_service(ApiContext& ctx, const Request& req) {
  const std::string name(req.param("name"));
  Disclosure d = disclosure_for(req.principal);
  const auto secrets = req.query_param("secrets");
  const bool want_secrets = secrets && truthy(*secrets);
  if (want_secrets) {
    if (auto refused = require_key(req, "?secrets=1")) return std::move(*refused);
    d = Disclosure::secrets;
  }
  auto s = ctx.supervisor->status(name);
  const config::ServiceSpec* spec = ctx.supervisor->spec(name);
  if (!s || !spec) return no_such_service(name);
  json j = service_json(*s, ctx, d);
  j["spec"] = spec_json(*spec, d);
  // Recorded before the answer leaves: no env value is shown without its trace.
  if (want_secrets && ctx.events) ctx.events->append(name, actors::EventType::secrets_read, secrets_read_detail(req));
  return Response::json(200, j);
}

Response status_response(ApiContext& ctx, const Request& req, int code, const std::string& name) {
  auto s = ctx.supervisor->status(name);
  if (!s) return no_such_service(name);
  return Response::json(code, service_json(*s, ctx, disclosure_for(req.principal)));
}

Response name_conflict(const std::string& name, const std::string& message) {
  json d = json::object();
  d["name"] = name;
  return Response::error(409, message, d);
}

Response config_owned(ApiContext& ctx, const std::string& name) {
  return name_conflict(name, "defined in " + ctx.supervisor->config().source_file + "; edit it there");
}

// Checks a PUT/POST can go ahead before anything is parsed against the running set.
std::optional<Response> precheck(ApiContext& ctx, const std::string& name, bool replace) {
  const bool exists = ctx.supervisor->spec(name) != nullptr;
  if (replace && !exists) return no_such_service(name);
  if (replace && ctx.supervisor->from_config(name)) return config_owned(ctx, name);
  if (!replace && exists) return name_conflict(name, "a service of that name exists");
  return std::nullopt;
}

Response add_outcome(ApiContext& ctx, const Request& req, const std::string& name, const runtime::Result<void>& r,
                     const std::vector<std::string>& errors, bool replace) {
  if (r) return status_response(ctx, req, replace ? 200 : 201, name);
  switch (r.error()) {
    case EEXIST: return name_conflict(name, "a service of that name exists");
    case EPERM: return config_owned(ctx, name);
    case EINVAL: return Response::error(422, "invalid service spec", spec_error_detail(errors));
    case EDQUOT: {
      json d = json::object();
      d["name"] = name;
      d["limit"] = ctx.supervisor->config().http.max_registered_services;
      return Response::error(409, "too many registered services: remove one, or raise [http] max_registered_services",
                             d);
    }
    default: {
      json d = json::object();
      d["errno"] = std::string(strerrorname_np(r.error()) ? strerrorname_np(r.error()) : "?");
      d["message"] = std::strerror(r.error());
      return Response::error(500, "could not save the service", d);
    }
  }
}

Task<Response> put_service(ApiContext& ctx, Request& req, bool replace) {
  const std::string url_name(replace ? req.param("name") : "");
  ParsedSpec p = parse_spec_body(req, *ctx.supervisor, url_name);
  if (p.error) co_return std::move(*p.error);
  const std::string name = p.spec->name;
  if (auto pre = precheck(ctx, name, replace)) co_return std::move(*pre);
  std::vector<std::string> errors;
  auto r = co_await ctx.supervisor->add(std::move(*p.spec), std::move(p.toml_text), replace, &errors);
  co_return add_outcome(ctx, req, name, r, errors, replace);
}

Response removed(const std::string& name) {
  json j = json::object();
  j["removed"] = name;
  return Response::json(200, j);
}

Task<Response> delete_service(ApiContext& ctx, Request& req) {
  const std::string name(req.param("name"));
  if (!ctx.supervisor->spec(name)) co_return no_such_service(name);
  if (ctx.supervisor->from_config(name)) co_return config_owned(ctx, name);
  // Its log followers end by themselves: the supervisor closes the service's LogStore.
  auto r = co_await ctx.supervisor->remove(name);
  if (!r && r.error() == ENOENT) co_return no_such_service(name);
  co_return removed(name);
}

enum class Act { start, stop, restart, signal, stdin, attach };

std::optional<int> signal_of(const json& v, std::string* why) {
  if (v.is_number_integer()) {
    const auto n = v.get<std::int64_t>();
    if (n >= 1 && n <= 64) return static_cast<int>(n);
    *why = "signal number out of range (1-64)";
    return std::nullopt;
  }
  if (!v.is_string()) {
    *why = "expected a signal name such as \"HUP\" or a number";
    return std::nullopt;
  }
  const std::string text = v.get<std::string>();
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos && text.size() <= 2)
    return signal_of(json(std::stoi(text)), why);
  return config::parse_signal(text, why);
}

Response bad_signal(const std::string& why) {
  json d = json::object();
  d["message"] = why;
  return Response::error(400, "bad signal", d);
}

// ?deps=false: only the named service (start: without waiting for its dependencies).
std::optional<actors::Supervisor::Deps> deps_of(const Request& req) {
  const auto v = req.query_param("deps");
  if (!v || *v == "true" || *v == "1") return actors::Supervisor::Deps::follow;
  if (*v == "false" || *v == "0") return actors::Supervisor::Deps::ignore;
  return std::nullopt;
}

// An attached service (attach = { ... }) is someone else's process: what would launch it
// is refused always, what would stop or signal it unless attach.control.
std::optional<Response> attached_refusal(const config::ServiceSpec& spec, Act a) {
  if (!spec.attach) {
    if (a != Act::attach) return std::nullopt;
    return Response::error(409, "not an attached service: only a service declared with attach = { ... } can be attached",
                           json{{"name", spec.name}});
  }
  std::string why;
  switch (a) {
    case Act::restart:
      why = "attached: Dockless cannot launch a process it did not start, so it cannot restart it";
      break;
    case Act::stdin: why = "attached read-only: its stdin is not Dockless's"; break;
    case Act::stop:
    case Act::signal:
      if (!spec.attach->control) why = "attached read-only: set attach.control = true to stop or signal it";
      break;
    case Act::start:
    case Act::attach: break;
  }
  if (why.empty()) return std::nullopt;
  return Response::error(409, why, json{{"name", spec.name}, {"attached", true}, {"control", spec.attach->control}});
}

Response act(ApiContext& ctx, Request& req, Act a) {
  const std::string name(req.param("name"));
  const config::ServiceSpec* spec = ctx.supervisor->spec(name);
  if (!spec) return no_such_service(name);
  if (auto refused = attached_refusal(*spec, a)) return std::move(*refused);
  runtime::Result<void> r;
  std::optional<actors::Supervisor::Deps> deps = deps_of(req);
  if (!deps && (a == Act::start || a == Act::stop)) {
    json d = json::object();
    d["message"] = "deps: expected true or false";
    return Response::error(400, "bad query", d);
  }
  std::vector<std::string> also;  // dependencies started / dependents stopped with it
  switch (a) {
    case Act::start: r = ctx.supervisor->start(name, *deps, &also); break;
    case Act::stop: r = ctx.supervisor->stop(name, *deps, &also); break;
    case Act::restart: r = ctx.supervisor->restart(name); break;
    case Act::signal: {
      json body;
      if (auto bad = parse_json_body(req.body, &body)) return std::move(*bad);
      std::string why;
      std::optional<int> sig;
      if (!body.is_object() || !body.contains("signal")) why = "expected {\"signal\": \"HUP\"}";
      else sig = signal_of(body["signal"], &why);
      if (!sig) return bad_signal(why);
      r = ctx.supervisor->signal(name, *sig);
      break;
    }
    case Act::stdin: r = ctx.supervisor->write_stdin(name, req.body); break;
    case Act::attach: {
      json body;
      if (auto bad = parse_json_body(req.body, &body)) return std::move(*bad);
      const json* pid = body.is_object() && body.contains("pid") ? &body["pid"] : nullptr;
      if (!pid || !pid->is_number_integer() || pid->get<std::int64_t>() < 2 || pid->get<std::int64_t>() > INT32_MAX) {
        json d = json::object();
        d["message"] = "expected {\"pid\": N}";
        return Response::error(400, "bad pid", d);
      }
      r = ctx.supervisor->attach(name, static_cast<pid_t>(pid->get<std::int64_t>()));
      if (!r && r.error() == ESRCH) return name_conflict(name, "no such process: pid " + pid->dump());
      break;
    }
  }
  if (r && (a == Act::start || a == Act::stop)) {
    auto s = ctx.supervisor->status(name);
    if (!s) return no_such_service(name);
    json j = service_json(*s, ctx, disclosure_for(req.principal));
    j[a == Act::start ? "dependencies_started" : "dependents_stopped"] = also;
    return Response::json(202, j);
  }
  if (r) return status_response(ctx, req, 202, name);
  switch (r.error()) {
    case ENOENT: return no_such_service(name);
    case ESRCH: return name_conflict(name, "not running");
    case ENOTSUP: return name_conflict(name, "stdin is not enabled for this service (stdin = true)");
    default: return Response::error(500, std::strerror(r.error()));
  }
}

void add_action(Router& router, ApiContext& ctx, const std::string& verb, Act a) {
  router.post("/v1/services/{name}/" + verb, [&ctx, a](Request& req) { return now(act(ctx, req, a)); });
}

}  // namespace

void register_services(Router& router, ApiContext& ctx) {
  router.get("/v1/services", [&ctx](Request& req) { return now(list_services(ctx, req)); });
  router.get("/v1/services/{name}", [&ctx](Request& req) { return now(get_service(ctx, req)); });
  router.post("/v1/services", [&ctx](Request& req) -> Task<Response> { return put_service(ctx, req, false); });
  router.put("/v1/services/{name}", [&ctx](Request& req) -> Task<Response> { return put_service(ctx, req, true); });
  router.del("/v1/services/{name}", [&ctx](Request& req) -> Task<Response> { return delete_service(ctx, req); });
  add_action(router, ctx, "start", Act::start);
  add_action(router, ctx, "stop", Act::stop);
  add_action(router, ctx, "restart", Act::restart);
  add_action(router, ctx, "signal", Act::signal);
  add_action(router, ctx, "stdin", Act::stdin);
  add_action(router, ctx, "attach", Act::attach);
}

}  // namespace http::api
