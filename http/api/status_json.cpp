// ServiceStatus and ServiceSpec → the JSON shapes of the API contract.
#include <chrono>
#include <cstdio>

#include "actors/proc_stats.hpp"
#include "actors/service_limits.hpp"
#include "actors/usage.hpp"
#include "http/api/handlers.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/cgroup_stats.hpp"
#include "runtime/process.hpp"
#include "runtime/clock.hpp"

namespace http::api {

using nlohmann::json;

std::string duration_text(config::Duration d) {
  const auto ms = d.count();
  if (ms == 0) return "0s";
  if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

runtime::Task<Response> now(Response r) { co_return r; }

Response no_such_service(const std::string& name) {
  json detail = json::object();
  detail["name"] = name;
  return Response::error(404, "no such service", detail);
}

namespace {

// The service's whole cgroup (children included), each figure only when its file exists.
json cgroup_stats_json(const runtime::CgroupUsage& u) {
  json j = json::object();
  if (u.memory_current) j["memory_current"] = *u.memory_current;
  if (u.memory_peak) j["memory_peak"] = *u.memory_peak;
  if (u.cpu_usage_usec) j["cpu_usage_usec"] = *u.cpu_usage_usec;
  if (u.pids_current) j["pids_current"] = *u.pids_current;
  if (u.memory_pressure) j["memory_pressure"] = *u.memory_pressure;
  if (u.cpu_pressure) j["cpu_pressure"] = *u.cpu_pressure;
  return j;
}

// The limits a start writes into the instance's cgroup, in the units usage is shown in, so a
// reader can put one next to the other: bytes (a share of RAM resolved on this machine), CPUs
// (cpu.max quota over period) and counts; "max" where a key is set to no limit.
json limits_in_force_json(const runtime::CgroupLimitValues& v) {
  if (!v.any()) return nullptr;
  json j = json::object();
  auto bound = [&](const char* key, const std::optional<std::uint64_t>& value) {
    if (value) j[key] = *value == runtime::CgroupLimitValues::kMax ? json("max") : json(*value);
  };
  bound("memory_max", v.memory_max);
  bound("memory_high", v.memory_high);
  bound("memory_swap_max", v.memory_swap_max);
  if (v.cpu_max)
    j["cpu_max"] = v.cpu_max->quota_us == runtime::CgroupLimitValues::kMax
                       ? json("max")
                       : json(static_cast<double>(v.cpu_max->quota_us) / static_cast<double>(v.cpu_max->period_us));
  if (v.cpu_weight) j["cpu_weight"] = *v.cpu_weight;
  if (v.io_weight) j["io_weight"] = *v.io_weight;
  bound("pids_max", v.pids_max);
  return j;
}

}  // namespace

json service_json(const actors::ServiceStatus& s, ApiContext& ctx, Disclosure d) {
  const actors::Supervisor& sup = *ctx.supervisor;
  json j = json::object();
  j["name"] = s.name;
  j["state"] = std::string(actors::to_string(s.state));
  j["pid"] = s.pid ? json(*s.pid) : json(nullptr);
  j["restarts"] = s.restarts;
  j["waiting_for_connection"] = s.waiting_for_connection;  // start_on = "connection", sockets watched
  j["next_pid"] = s.next_pid ? json(*s.next_pid) : json(nullptr);  // restart_mode = "overlap": the new instance
  j["executor"] = s.executor.empty() ? json(nullptr) : json(s.executor);  // "process", "docker"
  j["cgroup"] = s.cgroup.empty() ? json(nullptr) : json(s.cgroup);  // inside the cgroup2 hierarchy
  j["started_at"] = nullptr;
  j["uptime_seconds"] = nullptr;
  if (s.started_at) {
    const auto ms = runtime::unix_ms(*s.started_at);
    j["started_at"] = actors::format_utc_ms(ms);
    // Uptime only while a process of this start is alive.
    if (s.pid) j["uptime_seconds"] = static_cast<double>(runtime::now_unix_ms() - ms) / 1000.0;
  }
  j["exit_code"] = nullptr;
  j["exit_signal"] = nullptr;
  if (s.last_exit) {
    if (s.last_exit->signaled) j["exit_signal"] = runtime::signal_name(s.last_exit->code);
    else j["exit_code"] = s.last_exit->code;
  }
  // Both null and this true: the last instance ended, how is unknown (adopted after a crash).
  j["exit_unknown"] = s.last_exit_unknown;
  j["health"] = std::string(actors::to_string(s.health));
  j["health_reason"] = s.health_reason;
  j["notify_status"] = s.notify_status;
  j["ports"] = s.ports;
  j["cpu_seconds"] = nullptr;
  j["rss_bytes"] = nullptr;
  if (s.pid) {
    if (auto st = ctx.proc_stats.get(*s.pid, s.pid_start_ticks)) {
      j["cpu_seconds"] = st->cpu_seconds;
      j["rss_bytes"] = st->rss_bytes;
    }
  }
  const std::optional<runtime::CgroupUsage> usage = cgroup_usage(s, sup.cgroups());
  j["cgroup_stats"] = usage ? cgroup_stats_json(*usage) : json(nullptr);
  const config::ServiceSpec* spec = sup.spec(s.name);
  j["limits"] = spec ? limits_in_force_json(actors::limit_values(*spec)) : json(nullptr);
  j["last_error"] = s.last_error;
  j["next_restart_in_ms"] = s.state == actors::State::backoff ? json(s.next_restart_in.count()) : json(nullptr);
  j["source"] = sup.from_config(s.name) ? "config" : "api";
  // Command lines carry tokens: withheld from public readers.
  if (d == Disclosure::state) j["command"] = nullptr;
  else j["command"] = spec ? json(spec->command) : json::array();
  j["autostart"] = spec ? spec->autostart : false;
  j["stdin"] = spec ? spec->stdin : false;
  // attach = { ... }: someone else's process, watched; `control`: stop/signal allowed.
  j["attached"] = spec && spec->attach.has_value();
  j["control"] = spec && spec->attach ? json(spec->attach->control) : json(nullptr);
  j["pid_file"] = spec && spec->attach && d != Disclosure::state ? json(spec->attach->pid_file) : json(nullptr);
  return j;
}

namespace {

json port_json(const config::Port& p) { return p.automatic ? json("auto") : json(p.number); }

json health_json(const config::HealthCheck& h, Disclosure d) {
  json j = json::object();
  switch (h.kind) {
    case config::HealthCheck::Kind::exec: j["exec"] = d == Disclosure::state ? json(nullptr) : json(h.exec); break;
    // A URL can carry credentials (user:password@, ?token=) as a command line can.
    case config::HealthCheck::Kind::http: j["http"] = d == Disclosure::state ? json(nullptr) : json(h.url); break;
    case config::HealthCheck::Kind::tcp:
      if (h.port == 0) j["tcp"] = h.host + ":$PORT";
      else j["tcp"] = h.host + ":" + std::to_string(h.port);
      break;
  }
  j["interval"] = duration_text(h.interval);
  j["timeout"] = duration_text(h.timeout);
  j["start_period"] = duration_text(h.start_period);
  j["retries"] = h.retries;
  j["restart_on_unhealthy"] = h.restart_on_unhealthy;
  return j;
}

}  // namespace

namespace {

// Each set limit under its config key, in a form the key accepts back (a POSTed spec JSON
// re-registers with the same limits): bytes as a number, "max", "50%".
void limits_json(json& j, const config::ResourceLimits& l) {
  auto memory = [&](const char* key, const std::optional<config::MemoryLimit>& m) {
    if (!m) return;
    if (m->kind == config::MemoryLimit::Kind::bytes) j[key] = m->bytes;
    else j[key] = m->text();
  };
  memory("memory_max", l.memory_max);
  memory("memory_high", l.memory_high);
  memory("memory_swap_max", l.memory_swap_max);
  if (l.cpu_max_us) j["cpu_max"] = config::cpu_max_text(*l.cpu_max_us);
  if (l.cpu_weight) j["cpu_weight"] = *l.cpu_weight;
  if (l.io_weight) j["io_weight"] = *l.io_weight;
  if (l.pids_max) j["pids_max"] = *l.pids_max == config::ResourceLimits::kMax ? json("max") : json(*l.pids_max);
}

}  // namespace

json spec_json(const config::ServiceSpec& s, Disclosure d) {
  const bool public_view = d == Disclosure::state;
  json j = json::object();
  j["name"] = s.name;
  j["command"] = public_view ? json(nullptr) : json(s.command);
  // env_file entries are already merged in, as the service sees them: redacting `env`
  // redacts the files' contents too. Their paths stay: a path is not the secret.
  j["env"] = d == Disclosure::secrets ? json(s.env) : redacted_env(json(s.env));
  j["env_redacted"] = d != Disclosure::secrets;
  j["env_file"] = s.env_files;
  j["working_dir"] = s.working_dir;
  j["user"] = s.user;
  j["group"] = s.group;
  j["restart"] = std::string(config::to_string(s.restart));
  j["restart_delay"] = duration_text(s.restart_delay);
  j["restart_delay_max"] = duration_text(s.restart_delay_max);
  j["restart_reset_after"] = duration_text(s.restart_reset_after);
  j["restart_limit"] = s.restart_limit;
  j["restart_window"] = duration_text(s.restart_window);
  j["stop_signal"] = runtime::signal_name(s.stop_signal);
  j["stop_timeout"] = duration_text(s.stop_timeout);
  json deps = json::array();
  for (const auto& d : s.depends_on) {
    json dep = json::object();
    dep["name"] = d.name;
    dep["condition"] = std::string(config::to_string(d.condition));
    deps.push_back(std::move(dep));
  }
  j["depends_on"] = std::move(deps);
  j["port"] = s.port ? port_json(*s.port) : json(nullptr);
  json ports = json::array();
  for (const auto& p : s.ports) ports.push_back(port_json(p));
  j["ports"] = std::move(ports);
  // Only when set, so a service without sockets reads as it did before they existed.
  if (!s.sockets.empty()) {
    json sockets = json::array();
    for (const auto& k : s.sockets) {
      json one = {{"name", k.name}, {"listen", k.describe()}};
      if (k.family == config::Socket::Family::unix_path) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(k.mode));
        one["mode"] = mode;
      } else if (k.type == config::Socket::Type::stream) {
        one["backlog"] = k.backlog;
      }
      sockets.push_back(std::move(one));
    }
    j["sockets"] = std::move(sockets);
  }
  j["health"] = s.health ? health_json(*s.health, d) : json(nullptr);
  j["log_max_size"] = s.log_max_size;
  j["log_keep"] = s.log_keep;
  j["autostart"] = s.autostart;
  j["stdin"] = s.stdin;
  switch (s.ready) {
    case config::ReadyMode::exec: j["ready"] = "exec"; break;
    case config::ReadyMode::notify: j["ready"] = "notify"; break;
    case config::ReadyMode::fd: j["ready"] = "fd:" + std::to_string(s.ready_fd); break;
  }
  if (s.image) j["image"] = *s.image;
  // `docker run` words can carry `-e NAME=value`, as command lines carry tokens.
  if (!s.docker_args.empty()) j["docker_args"] = public_view ? json(nullptr) : json(s.docker_args);
  if (!s.volumes.empty()) j["volumes"] = s.volumes;
  if (s.network) j["network"] = *s.network;
  if (s.docker_cli) j["docker_cli"] = *s.docker_cli;
  if (s.attach) j["attach"] = {{"pid_file", public_view ? json(nullptr) : json(s.attach->pid_file)},
                               {"control", s.attach->control}};
  limits_json(j, s.limits);
  return j;
}

}  // namespace http::api
