#pragma once
// The JSON API: /health, /readyz, /v1/services…, /v1/events, /v1/reload, /metrics
// (the contract is docs/ and /tmp/brief/api.md: paths, bodies, statuses).
#include <chrono>
#include <functional>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "actors/event_log.hpp"
#include "actors/history.hpp"
#include "actors/proc_stats.hpp"
#include "actors/supervisor.hpp"
#include "http/api/follow_slots.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

namespace http {

// /proc reads cost a few syscalls per service (expensive on small boards and VMs);
// a listing polled by dashboards reuses a sample for up to `max_age`.
class ProcStatsCache {
 public:
  std::optional<actors::ProcStats> get(pid_t pid, std::uint64_t start_ticks);
  std::chrono::milliseconds max_age{1000};

 private:
  struct Sample {
    std::chrono::steady_clock::time_point at;
    std::uint64_t start_ticks = 0;
    std::optional<actors::ProcStats> stats;
  };
  std::map<pid_t, Sample> samples_;
};

// The serialized GET /v1/services answer. Dashboards and scripts poll the listing far
// more often than anything changes, and building 100 services' JSON costs ~0.4 ms, so
// the body is reused while the supervisor's generation is unchanged and its /proc
// figures (cpu, rss, uptime) are younger than the stats cache's max_age.
struct ListingCache {
  std::uint64_t generation = 0;
  std::chrono::steady_clock::time_point built_at;
  std::shared_ptr<const std::string> body;
};

struct ApiContext {
  actors::Supervisor* supervisor = nullptr;
  actors::EventLog* events = nullptr;
  // Same as SIGHUP: reparse the config file and apply it (dry run: plan it only).
  // {"ok": true, "dry_run": ..., "plan": {...}, "added": [...], "removed": [...], "changed":
  // [...], "updated_in_place": [...]} or {"ok": false, "errors": ["config.toml:3:1: ..."]}.
  std::function<runtime::Task<nlohmann::json>(bool dry_run)> reload;
  const Server* server = nullptr;  // connection stats for /metrics
  const actors::History* history = nullptr;  // GET /v1/…/history; null: empty series
  ProcStatsCache proc_stats;
  ListingCache listing;         // as key holders see it
  ListingCache public_listing;  // as public readers see it (no command lines)
  FollowSlots follows;  // follow streams held per key/address ([http] max_follow_streams)
  FollowSlots::Caps follow_caps() const {
    if (!supervisor) return {};
    const config::HttpConfig& h = supervisor->config().http;
    return {h.max_follow_streams, h.max_public_follow_streams};
  }
};

// The context must outlive the router.
void register_api(Router& router, ApiContext& ctx);

}  // namespace http
