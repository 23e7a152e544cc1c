#include "actors/reload_plan.hpp"

#include <cstdio>
#include <set>
#include <sstream>
#include <utility>

namespace actors {

using nlohmann::json;

namespace {

constexpr const char* kMasked = "***";

json duration(config::Duration d) {
  const auto ms = d.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

json port_text(const config::Port& p) { return p.automatic ? json("auto") : json(p.number); }

std::string_view ready_text(config::ReadyMode m) {
  switch (m) {
    case config::ReadyMode::exec: return "exec";
    case config::ReadyMode::notify: return "notify";
    case config::ReadyMode::fd: return "fd";
  }
  return "exec";
}

std::string_view health_kind(config::HealthCheck::Kind k) {
  switch (k) {
    case config::HealthCheck::Kind::exec: return "exec";
    case config::HealthCheck::Kind::http: return "http";
    case config::HealthCheck::Kind::tcp: return "tcp";
  }
  return "exec";
}

void put_health(std::map<std::string, json>& s, const config::HealthCheck& h) {
  s["health.kind"] = health_kind(h.kind);
  if (h.kind == config::HealthCheck::Kind::exec) s["health.exec"] = h.exec;
  if (h.kind == config::HealthCheck::Kind::http) s["health.url"] = h.url;
  if (h.kind == config::HealthCheck::Kind::tcp) {
    s["health.host"] = h.host;
    s["health.port"] = h.port;
  }
  s["health.interval"] = duration(h.interval);
  s["health.timeout"] = duration(h.timeout);
  s["health.start_period"] = duration(h.start_period);
  s["health.retries"] = h.retries;
  s["health.restart_on_unhealthy"] = h.restart_on_unhealthy;
}

void put_limits(std::map<std::string, json>& s, const config::ResourceLimits& l) {
  auto mem = [&](const char* key, const std::optional<config::MemoryLimit>& m) {
    if (m) s[std::string("limits.") + key] = m->text();
  };
  mem("memory_max", l.memory_max);
  mem("memory_high", l.memory_high);
  mem("memory_swap_max", l.memory_swap_max);
  if (l.cpu_max_us) s["limits.cpu_max"] = config::cpu_max_text(*l.cpu_max_us);
  if (l.cpu_weight) s["limits.cpu_weight"] = *l.cpu_weight;
  if (l.io_weight) s["limits.io_weight"] = *l.io_weight;
  if (l.pids_max)
    s["limits.pids_max"] = *l.pids_max == config::ResourceLimits::kMax ? json("max") : json(*l.pids_max);
}

std::vector<KeyChange> diff_maps(const std::map<std::string, json>& a, const std::map<std::string, json>& b,
                                 const std::set<std::string>& masked_keys) {
  std::set<std::string> keys;
  for (const auto& kv : a) keys.insert(kv.first);
  for (const auto& kv : b) keys.insert(kv.first);
  std::vector<KeyChange> out;
  for (const std::string& k : keys) {
    auto ia = a.find(k);
    auto ib = b.find(k);
    json from = ia == a.end() ? json() : ia->second;
    json to = ib == b.end() ? json() : ib->second;
    if (from == to) continue;
    KeyChange c{k, std::move(from), std::move(to), masked_keys.count(k) > 0};
    if (c.masked) {
      // Present but secret: the reader learns that it changed, not what it is.
      if (!c.from.is_null()) c.from = kMasked;
      if (!c.to.is_null()) c.to = kMasked;
    }
    out.push_back(std::move(c));
  }
  return out;
}

// A trigger's table flattened ("match.events" → [...]), its secret masked. The interpreted
// secret (after ${VAR}) counts too: the same text may read a changed variable.
std::map<std::string, json> trigger_settings(const config::Trigger& t) {
  std::map<std::string, json> s;
  std::ostringstream text;
  text << toml::json_formatter{t.table};
  json table = json::parse(text.str(), nullptr, false);
  // A local, not a temporary: items() refers to it for the whole loop.
  const json flat = table.is_object() ? table.flatten() : json::object();
  for (const auto& item : flat.items()) {
    std::string key = item.key().substr(1);  // "/match/events/0"
    for (char& c : key)
      if (c == '/') c = '.';
    s[key] = item.value();
  }
  for (auto it = s.begin(); it != s.end();)
    it = it->first == "secret" || it->first.rfind("secret.", 0) == 0 ? s.erase(it) : std::next(it);
  s["secret"] = std::to_string(std::hash<std::string>{}(t.secret));
  return s;
}

std::vector<KeyChange> diff_triggers(const config::Trigger& a, const config::Trigger& b) {
  std::vector<KeyChange> out = diff_maps(trigger_settings(a), trigger_settings(b), {"secret"});
  return out;
}

void compare(std::vector<KeyChange>& into, const char* key, const json& from, const json& to) {
  if (from != to) into.push_back({key, from, to, false});
}

void plan_settings(const config::Config& a, const config::Config& b, ReloadPlan& plan) {
  auto& restart = plan.daemon_restart;
  compare(restart, "listen_address", a.listen_address, b.listen_address);
  compare(restart, "listen_port", a.listen_port, b.listen_port);
  compare(restart, "data_dir", a.data_dir, b.data_dir);
  compare(restart, "http.max_body_bytes", a.http.max_body_bytes, b.http.max_body_bytes);
  compare(restart, "http.max_connections_per_client", a.http.max_connections_per_client,
          b.http.max_connections_per_client);
  // TLS is switched on or off only at start; a new certificate path is loaded by the reload.
  auto& cert = a.http.cert.empty() != b.http.cert.empty() ? restart : plan.settings;
  compare(cert, "http.cert", a.http.cert, b.http.cert);
  compare(cert, "http.key", a.http.key, b.http.key);
  auto& s = plan.settings;
  compare(s, "log_level", config::to_string(a.log_level), config::to_string(b.log_level));
  compare(s, "http.allowed_origins", a.http.allowed_origins, b.http.allowed_origins);
  compare(s, "http.api_keys_file", a.http.api_keys_file, b.http.api_keys_file);
  compare(s, "http.public_read", a.http.public_read, b.http.public_read);
  compare(s, "http.max_registered_services", a.http.max_registered_services, b.http.max_registered_services);
  compare(s, "http.max_follow_streams", a.http.max_follow_streams, b.http.max_follow_streams);
  compare(s, "http.max_public_follow_streams", a.http.max_public_follow_streams, b.http.max_public_follow_streams);
  compare(s, "events.max_size", a.events.max_size, b.events.max_size);
  compare(s, "events.keep", a.events.keep, b.events.keep);
  compare(s, "events.max_age", duration(a.events.max_age), duration(b.events.max_age));
}

void plan_triggers(const config::Config& a, const config::Config& b, ReloadPlan& plan) {
  std::map<std::string, const config::Trigger*> old, now;
  for (const auto& t : a.triggers) old[t.id] = &t;
  for (const auto& t : b.triggers) now[t.id] = &t;
  for (const auto& [id, t] : now) {
    auto it = old.find(id);
    if (it == old.end()) {
      plan.triggers_added.push_back(id);
      continue;
    }
    std::vector<KeyChange> changes = diff_triggers(*it->second, *t);
    if (!changes.empty()) plan.triggers_changed.push_back({id, std::move(changes), ""});
  }
  for (const auto& kv : old)
    if (!now.count(kv.first)) plan.triggers_removed.push_back(kv.first);
}

json changes_json(const std::vector<KeyChange>& changes) {
  json list = json::array();
  for (const KeyChange& c : changes) {
    json j = json::object();
    j["key"] = c.key;
    j["from"] = c.from;
    j["to"] = c.to;
    if (c.masked) j["masked"] = true;
    list.push_back(std::move(j));
  }
  return list;
}

json planned_json(const std::vector<PlannedChange>& list, const char* name_key) {
  json out = json::array();
  for (const PlannedChange& p : list) {
    json j = json::object();
    j[name_key] = p.name;
    j["changes"] = changes_json(p.changes);
    if (!p.reason.empty()) j["reason"] = p.reason;
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

// What a socket binds, as a reader would compare it: "tcp 0.0.0.0:8080 backlog 4096 reuse_port",
// "unix /run/app.sock mode 0660 user www".
std::string socket_text(const config::Socket& k) {
  std::string t = k.describe() + " backlog " + std::to_string(k.backlog);
  if (k.reuse_port) t += " reuse_port";
  if (k.family == config::Socket::Family::unix_path) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(k.mode));
    t += std::string(" mode ") + mode;
    if (!k.user.empty()) t += " user " + k.user;
    if (!k.group.empty()) t += " group " + k.group;
  }
  return t;
}

std::map<std::string, json> spec_settings(const config::ServiceSpec& spec) {
  std::map<std::string, json> s;
  s["command"] = spec.command;
  for (const auto& [k, v] : spec.env) s["env." + k] = v;
  s["env_files"] = spec.env_files;
  s["working_dir"] = spec.working_dir;
  s["user"] = spec.user;
  s["group"] = spec.group;
  s["restart"] = config::to_string(spec.restart);
  s["restart_delay"] = duration(spec.restart_delay);
  s["restart_delay_max"] = duration(spec.restart_delay_max);
  s["restart_reset_after"] = duration(spec.restart_reset_after);
  s["restart_limit"] = spec.restart_limit;
  s["restart_window"] = duration(spec.restart_window);
  s["stop_signal"] = spec.stop_signal;
  s["stop_timeout"] = duration(spec.stop_timeout);
  json deps = json::array();
  for (const auto& d : spec.depends_on) deps.push_back(d.name + ":" + std::string(config::to_string(d.condition)));
  s["depends_on"] = std::move(deps);
  if (spec.port) s["port"] = port_text(*spec.port);
  json ports = json::array();
  for (const auto& p : spec.ports) ports.push_back(port_text(p));
  s["ports"] = std::move(ports);
  if (spec.health) put_health(s, *spec.health);
  s["log_max_size"] = spec.log_max_size;
  s["log_keep"] = spec.log_keep;
  s["autostart"] = spec.autostart;
  s["stdin"] = spec.stdin;
  s["ready"] = ready_text(spec.ready);
  if (spec.ready == config::ReadyMode::fd) s["ready_fd"] = spec.ready_fd;
  s["ready_timeout"] = duration(spec.ready_timeout);
  if (spec.image) s["image"] = *spec.image;
  s["docker_args"] = spec.docker_args;
  s["volumes"] = spec.volumes;
  if (spec.network) s["network"] = *spec.network;
  if (spec.docker_cli) s["docker_cli"] = *spec.docker_cli;
  put_limits(s, spec.limits);
  for (const auto& k : spec.sockets) s["sockets." + k.name] = socket_text(k);
  s["restart_mode"] = spec.restart_mode == config::RestartMode::overlap ? "overlap" : "stop-first";
  s["start_on"] = spec.start_on == config::StartOn::connection ? "connection" : "boot";
  if (spec.attach) {
    s["attach.pid_file"] = spec.attach->pid_file;
    s["attach.control"] = spec.attach->control;
  }
  return s;
}

std::vector<KeyChange> diff_specs(const config::ServiceSpec& from, const config::ServiceSpec& to) {
  std::map<std::string, json> a = spec_settings(from);
  std::map<std::string, json> b = spec_settings(to);
  std::set<std::string> masked;
  for (const auto& m : {&a, &b})
    for (const auto& kv : *m)
      if (kv.first.rfind("env.", 0) == 0) masked.insert(kv.first);
  std::vector<KeyChange> out = diff_maps(a, b, masked);
  // A setting this listing does not know yet (a key added since) still shows up.
  if (out.empty() && from != to) out.push_back({"(other)", nullptr, nullptr, false});
  return out;
}

ReloadPlan plan_reload(const config::Config& running, const std::map<std::string, RunningService>& services,
                       const config::Config& next) {
  ReloadPlan plan;
  std::set<std::string> wanted;
  for (const auto& s : next.services) wanted.insert(s.name);
  for (const auto& [name, r] : services)
    if (!r.gone && r.from_config && !wanted.count(name)) plan.removed.push_back(name);
  for (const auto& s : next.services) {
    auto it = services.find(s.name);
    if (it == services.end() || !it->second.spec) {
      plan.added.push_back(s.name);
      continue;
    }
    const RunningService& r = it->second;
    const config::SpecChange change = config::classify_change(*r.spec, s);
    if (change == config::SpecChange::none && r.from_config) continue;
    PlannedChange p{s.name, diff_specs(*r.spec, s), ""};
    if (change == config::SpecChange::limits_only && r.from_config) {
      plan.in_place.push_back(std::move(p));
      continue;
    }
    if (!r.from_config) p.reason = "registered through the API; the config's entry takes it over";
    plan.restarted.push_back(std::move(p));
  }
  plan_triggers(running, next, plan);
  plan_settings(running, next, plan);
  return plan;
}

bool ReloadPlan::empty() const {
  return added.empty() && removed.empty() && restarted.empty() && in_place.empty() && triggers_added.empty() &&
         triggers_removed.empty() && triggers_changed.empty() && daemon_restart.empty() && settings.empty();
}

json ReloadPlan::to_json() const {
  json services = json::object();
  services["added"] = added;
  services["removed"] = removed;
  services["restarted"] = planned_json(restarted, "name");
  services["in_place"] = planned_json(in_place, "name");
  json triggers = json::object();
  triggers["added"] = triggers_added;
  triggers["removed"] = triggers_removed;
  triggers["changed"] = planned_json(triggers_changed, "id");
  json j = json::object();
  j["services"] = std::move(services);
  j["triggers"] = std::move(triggers);
  j["settings"] = changes_json(settings);
  j["daemon_restart"] = changes_json(daemon_restart);
  j["empty"] = empty();
  return j;
}

}  // namespace actors
