#pragma once
// Internal to http/api: the pieces each handler file provides.
//
// GCC 12 cannot compile a braced initializer list holding string literals inside a
// coroutine ("array used as initializer"), so JSON values are built by the plain
// functions here and the coroutine handlers only call them.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/service_actor.hpp"
#include "actors/supervisor.hpp"
#include "actors/usage.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/cgroup_stats.hpp"
#include "config/config.hpp"
#include "http/api/api.hpp"
#include "http/api/disclosure.hpp"
#include "http/message.hpp"
#include "http/router.hpp"

namespace http::api {

// A Task already holding its response. Route lambdas must not be coroutines
// themselves when they capture: a lazy Task would outlive the std::function copy
// the router called, and its frame would read captures from a dead closure. So a
// capturing lambda computes the response and returns now(response), or returns
// the Task of a free coroutine function whose parameters live in its own frame.
runtime::Task<Response> now(Response r);

// status_json.cpp: the Service object of the contract, and a spec as TOML-keyed JSON,
// each with what `d` lets the caller see (disclosure.hpp).
nlohmann::json service_json(const actors::ServiceStatus& s, ApiContext& ctx, Disclosure d);
// The running instance's cgroup usage, read now (actors/usage.hpp).
using actors::cgroup_usage;
nlohmann::json spec_json(const config::ServiceSpec& spec, Disclosure d = Disclosure::state);
std::string duration_text(config::Duration d);  // "100ms", "5s", "2m", "1h"
Response no_such_service(const std::string& name);

// spec_json.cpp: a request body (JSON or TOML) → a validated ServiceSpec plus the TOML
// text to persist, or the error response to send.
struct ParsedSpec {
  std::optional<config::ServiceSpec> spec;
  std::string toml_text;
  std::optional<Response> error;
};
// Parses a JSON request body; the 400 "bad JSON" answer (with the position when
// there is one) when it is not JSON or holds what cannot be represented.
std::optional<Response> parse_json_body(const std::string& text, nlohmann::json* out);
// `url_name` is the {name} of a PUT ("" for POST).
ParsedSpec parse_spec_body(const Request& req, const actors::Supervisor& sup, const std::string& url_name);
// The same against a given set of known services (the fuzz target uses it without a supervisor).
ParsedSpec parse_spec_body(const Request& req, config::ServiceContext ctx, const std::string& url_name);
// {field, message, text} for each problem.
nlohmann::json spec_error_detail(const std::vector<config::Error>& errors);
nlohmann::json spec_error_detail(const std::vector<std::string>& texts);
// "services.web.health.interval: ..." → "health.interval".
std::string field_of(std::string_view message);

// The route groups.
void register_services(Router& router, ApiContext& ctx);
void register_logs(Router& router, ApiContext& ctx);
void register_events(Router& router, ApiContext& ctx);
void register_metrics(Router& router, ApiContext& ctx);
void register_history(Router& router, ApiContext& ctx);  // history_json.cpp

// Query-string helpers (handlers answer 400 on a bad value).
bool truthy(std::string_view v);  // "1", "true", "yes", "" (bare ?follow)
// RFC 3339 ("2026-11-23T13:30:00Z", fractions, offsets) or a duration ago ("10m").
std::optional<std::int64_t> parse_time_arg(std::string_view text, std::int64_t now_ms, std::string* error);

}  // namespace http::api
