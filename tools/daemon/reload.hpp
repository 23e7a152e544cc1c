#pragma once
// SIGHUP and POST /v1/reload: the config file is read again and applied through
// actors::Reload, all or nothing. Here: the HTTP layer's parts of it (the participants
// actors/ cannot know) and what a reload logs and answers.
#include <nlohmann/json.hpp>

#include "actors/event_log.hpp"
#include "actors/reload.hpp"
#include "actors/supervisor.hpp"
#include "http/api/triggers.hpp"
#include "http/auth.hpp"
#include "http/server.hpp"
#include "runtime/task.hpp"
#include "tools/daemon/sd_notify.hpp"
#include "tools/daemon/serve.hpp"

namespace tools {

// What a reload changes besides the services. All must outlive the actors::Reload.
struct ReloadTargets {
  const ServeOptions& opts;
  const actors::Supervisor& supervisor;
  actors::EventLog& events;
  http::Server& server;
  http::auth::Gate& gate;
  http::TriggerRoutes& triggers;
};

// Adds, in this order: the trigger routes (route conflicts, directories), the TLS
// certificate (a new one that does not load refuses the reload; the running one stays),
// the server's limits (they change only on restart: a warning), and the API keys and
// access policy (unusable keys keep the running ones; never a refusal, so last).
void add_http_participants(actors::Reload& reload, const ReloadTargets& targets);

// Reads the config file again and runs the reload. Returns POST /v1/reload's answer:
// {"ok": true, "added": [...], "removed": [...], "changed": [...], "updated_in_place": [...],
// "tls": {...}} or
// {"ok": false, "errors": [...]}.
// A dry run answers the same with "dry_run": true and the plan only (actors/reload_plan.hpp).
runtime::Task<nlohmann::json> reload_config(const ServeOptions& opts, actors::Reload& reload,
                                            bool dry_run = false);

// Every reload (SIGHUP, POST /v1/reload) is announced to the service manager. The
// reload task is lazy: it starts at the co_await, after RELOADING=1 has gone out.
runtime::Task<nlohmann::json> announced_reload(SdNotifier& sd, runtime::Task<nlohmann::json> reload);

}  // namespace tools
