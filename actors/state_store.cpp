#include "actors/state_store.hpp"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "actors/docker_executor.hpp"
#include "actors/proc_stats.hpp"
#include "actors/service_actor.hpp"
#include "runtime/fs.hpp"
#include "runtime/clock.hpp"

namespace actors {

ServiceStore::Loaded ServiceStore::load(const config::ServiceContext& ctx) const {
  Loaded out;
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return out;
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string f = e->d_name;
    if (f.size() > 5 && f.compare(f.size() - 5, 5, ".toml") == 0) names.push_back(f);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& f : names) {
    std::ifstream in(dir_ + "/" + f);
    std::stringstream text;
    text << in.rdbuf();
    config::ServiceContext c = ctx;
    c.source_name = dir_ + "/" + f;
    config::ServiceResult r = config::parse_service_string(text.str(), c);
    if (r.ok()) out.services.push_back(std::move(*r.service));
    for (auto& e : r.errors) out.errors.push_back(std::move(e));
  }
  return out;
}

ServiceStore::Fitting ServiceStore::load_beside(const config::ServiceContext& ctx, const config::Config& running) const {
  Fitting out;
  Loaded stored = load(ctx);
  for (const auto& err : stored.errors) out.rejected.emplace_back(std::nullopt, err.to_string());
  auto by_name = [](const auto& a, const auto& b) { return a.name < b.name; };
  for (auto& spec : stored.services) {
    if (running.find(spec.name)) {
      out.rejected.emplace_back(spec.name, "a registered service has the name of a config.toml service; the config wins");
      continue;
    }
    config::Config trial = running;
    trial.services.insert(trial.services.end(), out.services.begin(), out.services.end());
    std::sort(trial.services.begin(), trial.services.end(), by_name);
    trial.services.push_back(spec);
    if (auto errs = config::validate_services(trial); !errs.empty()) {
      out.rejected.emplace_back(spec.name, errs.front().to_string());
      continue;
    }
    out.services.push_back(std::move(spec));
  }
  return out;
}

runtime::Task<runtime::Result<void>> ServiceStore::save(std::string name, std::string toml_text) {
  if (auto r = runtime::make_dirs(dir_); !r) co_return r;
  co_return co_await runtime::atomic_write(path_of(name), std::move(toml_text), 0600);
}

runtime::Result<void> ServiceStore::remove(const std::string& name) {
  if (::unlink(path_of(name).c_str()) != 0 && errno != ENOENT) return runtime::Result<void>::failure(errno);
  return {};
}

std::string snapshot_to_json(const Snapshot& s) {
  nlohmann::json j;
  j["version"] = 1;
  j["written_unix_ms"] = s.written_unix_ms;
  j["services"] = nlohmann::json::object();
  for (const auto& [name, e] : s.services) {
    nlohmann::json v = {{"state", e.state}, {"restarts", e.restarts}};
    if (e.pid) {
      v["pid"] = *e.pid;
      v["pid_start_ticks"] = e.pid_start_ticks;
    }
    if (!e.executor.empty()) v["executor"] = e.executor;
    if (!e.docker_cli.empty()) v["docker_cli"] = e.docker_cli;
    if (!e.ports.empty()) v["ports"] = e.ports;
    if (e.started_unix_ms > 0) v["started_unix_ms"] = e.started_unix_ms;
    j["services"][name] = std::move(v);
  }
  j["triggers"] = nlohmann::json::array();
  for (const TriggerBinding& b : s.triggers)
    j["triggers"].push_back({{"id", b.id},           {"path", b.path},       {"kind", b.kind},
                             {"provider", b.provider}, {"handler", b.handler}, {"version", b.version},
                             {"fingerprint", b.fingerprint}});
  return j.dump(2) + "\n";
}

Snapshot read_snapshot(const std::string& path) {
  Snapshot s;
  std::ifstream in(path);
  if (!in) return s;
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("services") || !j["services"].is_object()) return s;
  s.written_unix_ms = j.value("written_unix_ms", std::int64_t{0});
  for (const auto& [name, v] : j["services"].items()) {
    if (!v.is_object()) continue;
    SnapshotEntry e;
    e.state = v.value("state", "");
    e.restarts = v.value("restarts", 0);
    e.executor = v.value("executor", "");
    e.docker_cli = v.value("docker_cli", "");
    e.started_unix_ms = v.value("started_unix_ms", std::int64_t{0});
    if (v.contains("ports") && v["ports"].is_array())
      for (const auto& p : v["ports"])
        if (p.is_number_unsigned() && p.get<std::uint64_t>() <= 65535) e.ports.push_back(p.get<std::uint16_t>());
    if (v.contains("pid") && v["pid"].is_number_integer()) {
      e.pid = v["pid"].get<pid_t>();
      e.pid_start_ticks = v.value("pid_start_ticks", std::uint64_t{0});
    }
    s.services[name] = e;
  }
  if (auto t = j.find("triggers"); t != j.end() && t->is_array())
    for (const auto& v : *t) {
      if (!v.is_object() || !v.contains("id") || !v["id"].is_string()) continue;
      TriggerBinding b;
      b.id = v["id"].get<std::string>();
      b.path = v.value("path", "");
      b.kind = v.value("kind", "");
      b.provider = v.value("provider", "");
      b.handler = v.value("handler", "");
      b.version = v.value("version", std::uint64_t{1});
      b.fingerprint = v.value("fingerprint", "");
      s.triggers.push_back(std::move(b));
    }
  return s;
}

SnapshotEntry snapshot_entry(const ServiceStatus& status, const config::ServiceSpec& spec) {
  SnapshotEntry se;
  se.state = std::string(to_string(status.state));
  se.pid = status.pid;
  se.pid_start_ticks = status.pid_start_ticks;
  se.restarts = status.restarts;
  if (status.executor != "process") se.executor = status.executor;  // empty: process
  if (spec.image) se.docker_cli = docker_cli_of(spec);
  se.ports = status.ports;
  if (status.pid && status.started_at)
    se.started_unix_ms = runtime::unix_ms(*status.started_at);
  return se;
}

std::uint64_t process_start_ticks(pid_t pid) {
  auto stats = read_proc_stats(pid);
  return stats ? stats->start_ticks : 0;
}

}  // namespace actors
