// A Nomad job (JSON job specification, as `nomad job run -json` and the HTTP API take it):
// one group per service, docker tasks for containers, raw_exec for native ones.
#include <nlohmann/json.hpp>
#include <string>

#include "tools/export/export.hpp"
#include "tools/export/export_common.hpp"

namespace tools::exporter {
namespace {

constexpr long long kNs = 1'000'000;  // Nomad's durations are nanoseconds in JSON

nlohmann::json group_for(const config::ServiceSpec& s, Result* r) {
  const std::string& n = s.name;
  nlohmann::json task = {{"Name", n}};
  nlohmann::json cfg = nlohmann::json::object();
  // Nomad passes args without a shell: $PORT becomes the fixed port or Nomad's own variable
  // for a dynamic one (NOMAD_PORT_main, the port labelled below), as Dockless substitutes it.
  const std::uint16_t port = fixed_port(s);
  const std::string port_text = port ? std::to_string(port) : s.port ? "${NOMAD_PORT_main}" : "";
  std::vector<std::string> args;
  for (std::size_t i = 1; i < s.command.size(); ++i) args.push_back(port_in(s.command[i], port_text));
  if (s.image) {
    task["Driver"] = "docker";
    cfg["image"] = *s.image;
    if (!s.command.empty()) {
      cfg["command"] = s.command.front();
      cfg["args"] = args;
    }
    if (!s.volumes.empty()) cfg["volumes"] = s.volumes;
    if (s.network) cfg["network_mode"] = *s.network;
    if (!s.docker_args.empty()) r->dropped.push_back(n + ": docker_args are not translated to Nomad docker options");
  } else {
    // raw_exec runs as the client's user with no isolation: what Dockless does too.
    task["Driver"] = "raw_exec";
    if (!s.command.empty()) {
      cfg["command"] = s.command.front();
      cfg["args"] = args;
    }
    if (!s.working_dir.empty())
      r->dropped.push_back(n + ": working_dir has no raw_exec equivalent (the task runs in its allocation dir)");
  }
  task["Config"] = cfg;
  nlohmann::json env = nlohmann::json::object();
  for (const auto& [k, v] : s.env) env[k] = v;
  if (!env.empty()) task["Env"] = env;
  if (!s.env_files.empty()) r->dropped.push_back(n + ": env_file has no Nomad equivalent (use a template block)");
  if (!s.user.empty()) task["User"] = s.user;
  if (!s.group.empty()) r->dropped.push_back(n + ": group has no Nomad task equivalent");
  task["KillTimeout"] = s.stop_timeout.count() * kNs;
  const char* sig = sigabbrev_np(s.stop_signal);
  if (sig) task["KillSignal"] = std::string("SIG") + sig;
  nlohmann::json res = nlohmann::json::object();
  const auto& l = s.limits;
  if (l.memory_max && l.memory_max->kind == config::MemoryLimit::Kind::bytes)
    res["MemoryMB"] = static_cast<long long>((l.memory_max->bytes + (1u << 20) - 1) >> 20);
  else if (l.memory_max) r->dropped.push_back(n + ": limits.memory_max " + l.memory_max->text() + " (only bytes export)");
  if (l.cpu_max_us && *l.cpu_max_us != config::ResourceLimits::kMax) {
    // Nomad reserves CPU in MHz, not a share of time: 1000 MHz per full core as an estimate.
    res["CPU"] = static_cast<long long>(*l.cpu_max_us * 1000 / config::ResourceLimits::kCpuPeriodUs);
    r->dropped.push_back(n + ": limits.cpu_max became Resources.CPU at 1000 MHz per core (an estimate)");
  }
  if (l.memory_high || l.memory_swap_max || l.cpu_weight || l.io_weight || l.pids_max)
    r->dropped.push_back(n + ": limits memory_high/memory_swap_max/cpu_weight/io_weight/pids_max have no Nomad equivalent");
  if (!res.empty()) task["Resources"] = res;
  nlohmann::json group = {{"Name", n}, {"Count", 1}};
  if (port || (s.port && s.port->automatic)) {
    nlohmann::json p = {{"Label", "main"}, {"To", 0}};
    if (port) p["Value"] = port;
    group["Networks"] = nlohmann::json::array({{{port ? "ReservedPorts" : "DynamicPorts", nlohmann::json::array({p})}}});
    if (s.image) task["Config"]["ports"] = {"main"};
    task["Env"]["PORT"] = port_text;
  }
  if (!s.sockets.empty()) r->dropped.push_back(n + ": sockets (socket activation) have no Nomad equivalent");
  if (s.health) {
    const auto& h = *s.health;
    nlohmann::json check = {{"Name", n + "-health"},
                            {"Interval", h.interval.count() * kNs},
                            {"Timeout", h.timeout.count() * kNs}};
    if (h.kind == config::HealthCheck::Kind::exec) {
      check["Type"] = "script";
      check["Command"] = h.exec.empty() ? "" : h.exec.front();
      if (h.exec.size() > 1) check["Args"] = std::vector<std::string>(h.exec.begin() + 1, h.exec.end());
      check["TaskName"] = n;
    } else {
      check["Type"] = h.kind == config::HealthCheck::Kind::http ? "http" : "tcp";
      if (h.kind == config::HealthCheck::Kind::http) check["Path"] = h.path;
      check["PortLabel"] = "main";
      if (!port && !(s.port && s.port->automatic))
        r->dropped.push_back(n + ": the health check's port is not the service's port; Nomad checks need a port label");
    }
    if (h.restart_on_unhealthy)
      check["CheckRestart"] = {{"Limit", h.retries}, {"Grace", h.start_period.count() * kNs}};
    group["Services"] = nlohmann::json::array({{{"Name", n}, {"Provider", "nomad"}, {"Checks", {check}}}});
    if (port || (s.port && s.port->automatic)) group["Services"][0]["PortLabel"] = "main";
  }
  // Restart: the in-place restarts of a task; "no" becomes zero attempts then fail.
  nlohmann::json restart = {{"Attempts", s.restart == config::RestartPolicy::no ? 0 : s.restart_limit},
                            {"Interval", s.restart_window.count() * kNs},
                            {"Delay", s.restart_delay.count() * kNs},
                            {"Mode", "fail"}};
  group["RestartPolicy"] = restart;
  if (s.restart == config::RestartPolicy::always)
    r->dropped.push_back(n + ": restart = \"always\": Nomad restarts a service task on any exit, but within RestartPolicy's attempts");
  if (!s.depends_on.empty())
    r->dropped.push_back(n + ": depends_on has no Nomad equivalent across groups (use lifecycle hooks or Consul checks)");
  if (s.ready != config::ReadyMode::exec) r->dropped.push_back(n + ": ready (notify/fd) has no Nomad equivalent");
  if (s.stdin) r->dropped.push_back(n + ": stdin = true has no Nomad equivalent");
  if (!s.autostart) r->dropped.push_back(n + ": autostart = false has no Nomad equivalent (the group runs)");
  group["Tasks"] = nlohmann::json::array({task});
  return group;
}

}  // namespace

Result to_nomad(const std::vector<const config::ServiceSpec*>& services) {
  Result r;
  nlohmann::json groups = nlohmann::json::array();
  for (const auto* s : services) groups.push_back(group_for(*s, &r));
  nlohmann::json job = {{"Job",
                         {{"ID", "dockless"},
                          {"Name", "dockless"},
                          {"Type", "service"},
                          {"Datacenters", {"dc1"}},
                          {"TaskGroups", groups}}}};
  r.files.push_back({"dockless.nomad.json", job.dump(2) + "\n"});
  return r;
}

}  // namespace tools::exporter
