#include "tools/daemon/reload.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "actors/event_type.hpp"
#include "config/config.hpp"
#include "http/auth_keys.hpp"
#include "http/tls.hpp"
#include "tools/daemon/daemon_log.hpp"
#include "tools/daemon/load.hpp"

namespace tools {

namespace {

using actors::Reload;
using runtime::Task;

constexpr const char* kTls = "TLS";

nlohmann::json tls_event(const http::TlsContext& tls) {
  nlohmann::json j = nlohmann::json::object();
  j["subject"] = tls.subject();
  j["fingerprint"] = tls.fingerprint();
  return j;
}

Reload::Participant trigger_routes(const ReloadTargets& t) {
  return {"triggers", [&opts = t.opts, &triggers = t.triggers, &server = t.server](const config::Config& next) {
            Reload::Prepared part;
            actors::TriggerDispatcher::Prepared set = triggers.prepare(next.triggers, server.router());
            for (std::string& e : set.errors) part.errors.push_back({opts.config_path, 0, 0, std::move(e)});
            if (part.errors.empty())
              part.commit = [&triggers, set = std::move(set)]() mutable { triggers.commit(std::move(set)); };
            return part;
          }};
}

// TLS is switched on or off only at start; a running one takes the new certificate, or
// refuses the reload when it does not load (the running certificate stays).
Reload::Participant tls_certificate(const ReloadTargets& t) {
  return {kTls, [&server = t.server, &events = t.events](const config::Config& next) {
            Reload::Prepared part;
            if (!server.tls()) {
              if (!next.http.cert.empty() || !next.http.key.empty())
                part.commit = [] { log(Level::warn, "TLS is switched on only at start; still plain HTTP"); };
              return part;
            }
            http::TlsContext::Loaded tls = load_tls(next.http);
            if (!tls.context && tls.error.empty())
              tls.error = "no certificate configured; TLS is switched off only at start";
            if (!tls.error.empty()) {
              part.errors.push_back({kTls, 0, 0, tls.error});
              return part;
            }
            part.answer["tls"] = tls_event(*tls.context);
            part.commit = [&server, &events, context = tls.context] {
              log_tls(*context, "TLS certificate reloaded:");
              events.append(std::nullopt, actors::EventType::tls_reloaded, tls_event(*context));
              server.set_tls(context);
            };
            return part;
          }};
}

Reload::Participant restart_only_limits(const ReloadTargets& t) {
  return {"limits", [&supervisor = t.supervisor](const config::Config& next) {
            Reload::Prepared part;
            const config::HttpConfig& running = supervisor.config().http;
            if (next.http.max_body_bytes != running.max_body_bytes ||
                next.http.max_connections_per_client != running.max_connections_per_client)
              part.commit = [] {
                log(Level::warn, "[http] max_body_bytes and max_connections_per_client change only on restart");
              };
            return part;
          }};
}

Reload::Participant event_rotation(const ReloadTargets& t) {
  return {"events", [&events = t.events](const config::Config& next) {
            Reload::Prepared part;
            part.commit = [&events, limits = event_log_limits(next)] { events.set_limits(limits); };
            return part;
          }};
}

// Keys and the access policy follow the new config; unusable keys keep the running ones.
Reload::Participant api_keys(const ReloadTargets& t) {
  // May create a key file: a dry run does not ask it (it never refuses).
  return {"API keys", [&opts = t.opts, &gate = t.gate](const config::Config& next) {
            Reload::Prepared part;
            std::string error;
            std::optional<http::auth::LoadedKeys> keys = load_api_keys(opts, next, &error);
            part.commit = [&gate, policy = auth_policy(next), keys = std::move(keys), error]() mutable {
              gate.set_policy(std::move(policy));
              if (keys) {
                log_keys(*keys);
                gate.set_keys(std::move(keys->keys));
              } else {
                log(Level::warn, "API keys not reloaded (the running ones stay): " + error);
              }
            };
            return part;
          },
          true};
}

config::ParseResult read_config(const ServeOptions& opts) {
  LoadedConfig loaded = load_config(opts);
  return {std::move(loaded.config), std::move(loaded.errors)};
}

// The log lines of a reload's outcome, and its answer.
nlohmann::json report(const Reload::Outcome& out) {
  if (!out.ok) {
    log_errors(out.errors);
    log(Level::warn, out.refused_by == kTls ? "reload failed; the running config and certificate stay"
                                            : "reload failed; the running config stays");
    return out.to_json();
  }
  if (out.restart_only_changed) log(Level::warn, "data_dir and listen settings change only on restart");
  log(Level::info, "reload applied: " + std::to_string(out.services.added.size()) + " added, " +
                       std::to_string(out.services.removed.size()) + " removed, " +
                       std::to_string(out.services.changed.size()) + " changed");
  return out.to_json();
}

}  // namespace

void add_http_participants(Reload& reload, const ReloadTargets& targets) {
  reload.add(trigger_routes(targets));
  reload.add(tls_certificate(targets));
  reload.add(restart_only_limits(targets));
  reload.add(event_rotation(targets));
  reload.add(api_keys(targets));
}

Task<nlohmann::json> reload_config(const ServeOptions& opts, Reload& reload, bool dry_run) {
  log(Level::info, (dry_run ? "planning a reload of " : "reloading ") + opts.config_path);
  config::ParseResult next = read_config(opts);
  Reload::Outcome out = co_await reload.run(std::move(next), dry_run);
  if (dry_run) co_return out.to_json();
  co_return report(out);
}

Task<nlohmann::json> announced_reload(SdNotifier& sd, Task<nlohmann::json> reload) {
  sd.reloading();
  nlohmann::json out = co_await std::move(reload);
  sd.ready();
  co_return out;
}

}  // namespace tools
