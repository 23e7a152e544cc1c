#include "tools/daemon/reload.hpp"

#include <string>
#include <vector>

#include "config/config.hpp"
#include "tools/daemon/daemon_log.hpp"
#include "tools/daemon/load.hpp"

namespace tools {

namespace {

using runtime::Task;

// SIGHUP's certificate reload, done before anything else of the reload: a
// certificate that does not load fails the reload as a config error would, and
// the running certificate stays. TLS is switched on or off only at start.
// Returns the new context (null: none to install) or an error.
http::TlsContext::Loaded reload_tls(const http::Server& server, const config::HttpConfig& http) {
  if (!server.tls()) {
    if (!http.cert.empty() || !http.key.empty()) log(Level::warn, "TLS is switched on only at start; still plain HTTP");
    return {};
  }
  http::TlsContext::Loaded next = load_tls(http);
  if (!next.context && next.error.empty())
    next.error = "no certificate configured; TLS is switched off only at start";
  return next;
}

nlohmann::json tls_event(const http::TlsContext& tls) {
  nlohmann::json j = nlohmann::json::object();
  j["subject"] = tls.subject();
  j["fingerprint"] = tls.fingerprint();
  return j;
}

// JSON for the reload outcome, built outside the coroutine (GCC 12 cannot compile a
// braced list of string literals inside one).
nlohmann::json reload_json(const actors::ReloadOutcome& out) {
  nlohmann::json j = nlohmann::json::object();
  j["ok"] = out.ok;
  j["added"] = out.added;
  j["removed"] = out.removed;
  j["changed"] = out.changed;
  return j;
}

nlohmann::json reload_failed_json(const std::vector<config::Error>& errors) {
  nlohmann::json j = nlohmann::json::object();
  j["ok"] = false;
  nlohmann::json list = nlohmann::json::array();
  for (const auto& e : errors) list.push_back(e.to_string());
  j["errors"] = std::move(list);
  return j;
}

}  // namespace

Task<nlohmann::json> reload_config(const ServeOptions& opts, ReloadTargets t) {
  actors::Supervisor& supervisor = t.supervisor;
  http::Server& server = t.server;
  http::auth::Gate& gate = t.gate;
  const http::Router& router = server.router();
  log(Level::info, "reloading " + opts.config_path);
  LoadedConfig next = load_config(opts);
  // The trigger set is swapped before the services change: a trigger that cannot be installed
  // fails the reload as a whole, like any other config error.
  if (next.config)
    for (std::string& e : t.triggers.install(next.config->triggers, router)) {
      next.errors.push_back({opts.config_path, 0, 0, std::move(e)});
      next.config.reset();
    }
  if (!next.config) {
    log_errors(next.errors);
    supervisor.reload_failed(next.errors);
    log(Level::warn, "reload failed; the running config stays");
    co_return reload_failed_json(next.errors);
  }
  if (next.config->data_dir != supervisor.config().data_dir ||
      next.config->listen_port != supervisor.config().listen_port ||
      next.config->listen_address != supervisor.config().listen_address)
    log(Level::warn, "data_dir and listen settings change only on restart");
  if (next.config->http.max_body_bytes != supervisor.config().http.max_body_bytes ||
      next.config->http.max_connections_per_client != supervisor.config().http.max_connections_per_client)
    log(Level::warn, "[http] max_body_bytes and max_connections_per_client change only on restart");
  http::TlsContext::Loaded tls = reload_tls(server, next.config->http);
  if (!tls.error.empty()) {
    const std::vector<config::Error> errors{{"TLS", 0, 0, tls.error}};
    log_errors(errors);
    supervisor.reload_failed(errors);
    log(Level::warn, "reload failed; the running config and certificate stay");
    co_return reload_failed_json(errors);
  }
  if (tls.context) {
    log_tls(*tls.context, "TLS certificate reloaded:");
    t.events.append(std::nullopt, "tls_reloaded", tls_event(*tls.context));
    server.set_tls(tls.context);
  }
  next.config->data_dir = supervisor.config().data_dir;
  next.config->listen_port = supervisor.config().listen_port;
  next.config->listen_address = supervisor.config().listen_address;
  // Keys and the access policy follow the new config; unusable keys keep the old ones.
  gate.set_policy(auth_policy(*next.config));
  std::string key_error;
  if (auto keys = load_api_keys(opts, *next.config, &key_error)) {
    log_keys(*keys);
    gate.set_keys(std::move(keys->keys));
  } else {
    log(Level::warn, "API keys not reloaded (the running ones stay): " + key_error);
  }
  actors::ReloadOutcome out = co_await supervisor.apply(std::move(*next.config));
  log(Level::info, "reload applied: " + std::to_string(out.added.size()) + " added, " +
                       std::to_string(out.removed.size()) + " removed, " +
                       std::to_string(out.changed.size()) + " changed");
  nlohmann::json j = reload_json(out);
  if (tls.context) j["tls"] = tls_event(*tls.context);
  co_return j;
}

Task<nlohmann::json> announced_reload(SdNotifier& sd, Task<nlohmann::json> reload) {
  sd.reloading();
  nlohmann::json out = co_await std::move(reload);
  sd.ready();
  co_return out;
}

}  // namespace tools
