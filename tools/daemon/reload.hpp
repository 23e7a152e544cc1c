#pragma once
// SIGHUP and POST /v1/reload: reparse the config file and apply it as a diff. An invalid
// config keeps the running one.
#include <nlohmann/json.hpp>

#include "actors/event_log.hpp"
#include "actors/supervisor.hpp"
#include "http/api/triggers.hpp"
#include "http/auth.hpp"
#include "http/server.hpp"
#include "runtime/task.hpp"
#include "tools/daemon/sd_notify.hpp"
#include "tools/daemon/serve.hpp"

namespace tools {

// What a reload changes besides the services.
struct ReloadTargets {
  actors::Supervisor& supervisor;
  http::Server& server;
  actors::EventLog& events;
  http::auth::Gate& gate;
  http::TriggerRoutes& triggers;
};

// POST /v1/reload's answer: {"ok": true, "added": [...], ...} or {"ok": false, "errors": [...]}.
runtime::Task<nlohmann::json> reload_config(const ServeOptions& opts, ReloadTargets targets);

// Every reload (SIGHUP, POST /v1/reload) is announced to the service manager. The
// reload task is lazy: it starts at the co_await, after RELOADING=1 has gone out.
runtime::Task<nlohmann::json> announced_reload(SdNotifier& sd, runtime::Task<nlohmann::json> reload);

}  // namespace tools
