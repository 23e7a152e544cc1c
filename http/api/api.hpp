#pragma once
// The JSON API: /health, /v1/services…, /v1/events, /v1/reload, /metrics.
#include <functional>

#include <nlohmann/json.hpp>

#include "actors/event_log.hpp"
#include "actors/supervisor.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

namespace http {

struct ApiContext {
  actors::Supervisor* supervisor = nullptr;
  actors::EventLog* events = nullptr;
  // Same as SIGHUP: reparse the config file and apply it. {"ok": bool, ...}.
  std::function<runtime::Task<nlohmann::json>()> reload;
  const Server* server = nullptr;  // connection stats for /metrics
};

// The context must outlive the router.
void register_api(Router& router, ApiContext& ctx);

}  // namespace http
