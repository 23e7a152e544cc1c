#pragma once
// ReloadPlan: what a reload does, computed before anything is done (issue #16). The same
// object is what `dockless reload --dry-run` / POST /v1/reload?dry_run=1 show and what the
// real reload applies (Supervisor::apply) and answers, so the preview cannot disagree with
// the result as long as neither the config file nor the set of services changed between the
// two.
//
// Secrets never enter a plan: like the API's disclosure (http/api/disclosure.hpp), env values
// are shown only as set or not set ("***"), and so is a trigger's secret. A plan is safe to
// log, answer and record.
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"

namespace actors {

// One setting that differs: `from` / `to` are null when the setting is absent on that side,
// "***" for a masked value that is present.
struct KeyChange {  // NOLINT(bugprone-exception-escape): null json values cannot throw
  std::string key;  // "command", "env.TOKEN", "health.interval", "limits.memory_max", ...
  nlohmann::json from;
  nlohmann::json to;
  bool masked = false;
  bool operator==(const KeyChange&) const = default;
};

struct PlannedChange {
  std::string name;  // a service's name or a trigger's id
  std::vector<KeyChange> changes;
  std::string reason;  // empty, or why a restart is needed besides the keys
};

struct ReloadPlan {
  std::vector<std::string> added;      // services created (and started when autostart)
  std::vector<std::string> removed;    // services stopped and forgotten
  std::vector<PlannedChange> restarted;  // new spec; restarted when running
  std::vector<PlannedChange> in_place;   // only limits changed: written to the cgroup, no restart
  std::vector<std::string> triggers_added, triggers_removed;
  std::vector<PlannedChange> triggers_changed;  // installed under a new version
  // Settings a reload cannot apply: they keep their running value until the daemon restarts.
  std::vector<KeyChange> daemon_restart;
  // Daemon settings a reload applies ([http] policy, [events], log_level).
  std::vector<KeyChange> settings;

  bool empty() const;
  nlohmann::json to_json() const;
};

// What the plan needs to know of one service the supervisor holds now.
struct RunningService {
  const config::ServiceSpec* spec = nullptr;
  bool from_config = false;  // false: registered through the API (a config entry takes it over)
  bool gone = false;         // its actor has finished; a reload leaves it alone
};

// The one function that decides a reload. `running` is the running config (its services are
// ignored: they are in `services`), `next` the new one as parsed.
ReloadPlan plan_reload(const config::Config& running, const std::map<std::string, RunningService>& services,
                       const config::Config& next);

// The settings of a spec, flat and comparable ("health.interval" → "10s"), secrets masked.
std::map<std::string, nlohmann::json> spec_settings(const config::ServiceSpec& spec);
// The keys that differ between two specs, in key order.
std::vector<KeyChange> diff_specs(const config::ServiceSpec& from, const config::ServiceSpec& to);

}  // namespace actors
