// Docker Compose: container services directly; native ones get a placeholder image and a note.
#include <cstring>
#include <set>
#include <string>

#include "tools/export/export.hpp"
#include "tools/export/export_common.hpp"

namespace tools::exporter {
namespace {

// YAML double-quoted scalar: always quoted, so no value is read as a number, bool or null.
std::string q(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

// Compose interpolates ${VAR} and $VAR itself: "$$" keeps a literal dollar.
std::string dollars(const std::string& s) {
  std::string out;
  for (char c : s) {
    out += c;
    if (c == '$') out += '$';
  }
  return out;
}

// The `--network` values that are modes rather than the name of a network.
bool network_mode(const std::string& n) {
  return n == "host" || n == "none" || n == "bridge" || n.starts_with("container:") || n.starts_with("service:");
}

void service(const config::ServiceSpec& s, std::string* y, Result* r, std::set<std::string>* networks) {
  const std::string& n = s.name;
  // A Compose command runs without a shell: nothing would expand $PORT there.
  const std::string port_text = fixed_port(s) ? std::to_string(fixed_port(s)) : "";
  *y += "  " + n + ":\n";
  if (s.image) {
    *y += "    image: " + q(*s.image) + "\n";
  } else {
    // A native service needs an image that holds its program: the user picks one.
    *y += "    # native service in Dockless: pick an image that has " + (s.command.empty() ? n : s.command[0]) + "\n";
    *y += "    image: " + q("REPLACE-ME/" + n) + "\n";
    r->dropped.push_back(n + ": native service: exported with a placeholder image (REPLACE-ME/" + n + ")");
  }
  if (!s.command.empty()) {
    *y += "    command:\n";
    for (const auto& a : s.command) append(y, "      - ", q(dollars(port_in(a, port_text))), "\n");
  }
  if (!s.env.empty() || fixed_port(s)) {
    *y += "    environment:\n";
    for (const auto& [k, v] : s.env) *y += "      " + q(k) + ": " + q(dollars(v)) + "\n";
    if (std::uint16_t p = fixed_port(s)) *y += "      PORT: " + q(std::to_string(p)) + "\n";
  }
  if (!s.env_files.empty()) {
    *y += "    env_file:\n";
    for (const auto& f : s.env_files) *y += "      - " + q(f) + "\n";
  }
  if (!s.working_dir.empty()) *y += "    working_dir: " + q(s.working_dir) + "\n";
  if (!s.user.empty()) *y += "    user: " + q(s.user + (s.group.empty() ? "" : ":" + s.group)) + "\n";
  const char* restart = s.restart == config::RestartPolicy::always       ? "always"
                        : s.restart == config::RestartPolicy::on_failure ? "on-failure"
                                                                         : "no";
  *y += "    restart: " + q(restart) + "\n";
  if (s.restart != config::RestartPolicy::no)
    r->dropped.push_back(n + ": restart delays and limit (restart_delay, restart_limit) have no Compose equivalent");
  *y += "    stop_grace_period: " + q(duration_text(s.stop_timeout)) + "\n";
  const char* sig = sigabbrev_np(s.stop_signal);
  if (sig) append(y, "    stop_signal: ", q(std::string("SIG") + sig), "\n");
  // As the docker executor does: every port published as P:P, none on the host network (where
  // the engine discards them with a warning).
  const bool host_network = s.network && *s.network == "host";
  std::string ports;
  for (const auto& p : s.ports) {
    if (p.automatic) {
      r->dropped.push_back(n + ": port = \"auto\" has no Compose equivalent");
    } else if (!host_network) {
      const std::string pp = std::to_string(p.number);
      append(&ports, "      - ", q(pp + ":" + pp), "\n");
    }
  }
  if (!ports.empty()) append(y, "    ports:\n", ports);
  if (!s.volumes.empty()) {
    *y += "    volumes:\n";
    for (const auto& v : s.volumes) *y += "      - " + q(v) + "\n";
  }
  if (s.network && network_mode(*s.network)) {
    *y += "    network_mode: " + q(*s.network) + "\n";
  } else if (s.network) {
    // `docker run --network NAME` joins an existing network: Compose's external network.
    *y += "    networks:\n      - " + q(*s.network) + "\n";
    networks->insert(*s.network);
  }
  // --init (a shell or server as PID 1 ignores SIGTERM) is common enough to translate; the
  // rest of docker_args is named, not guessed at.
  std::string rest;
  for (const auto& a : s.docker_args) {
    if (a == "--init")
      *y += "    init: true\n";
    else
      append(&rest, rest.empty() ? "" : " ", a);
  }
  if (!rest.empty()) r->dropped.push_back(n + ": docker_args are not translated to Compose keys: " + rest);
  if (!s.sockets.empty()) r->dropped.push_back(n + ": sockets (socket activation) have no Compose equivalent");
  if (s.stdin) *y += "    stdin_open: true\n";
  if (!s.depends_on.empty()) {
    *y += "    depends_on:\n";
    for (const auto& d : s.depends_on)
      *y += "      " + d.name + ":\n        condition: " +
            (d.condition == config::DependencyCondition::healthy ? "service_healthy" : "service_started") + "\n";
  }
  if (s.health) {
    const auto& h = *s.health;
    *y += "    healthcheck:\n      test:\n";
    if (h.kind == config::HealthCheck::Kind::exec) {
      *y += "        - \"CMD\"\n";
      for (const auto& a : h.exec) append(y, "        - ", q(dollars(port_in(a, port_text))), "\n");
    } else {
      const std::string port = h.port ? std::to_string(h.port) : std::to_string(fixed_port(s));
      const std::string probe = h.kind == config::HealthCheck::Kind::http
                                    ? "wget -q -O /dev/null http://" + h.host + ":" + port + h.path
                                    : "nc -z " + h.host + " " + port;
      *y += "        - \"CMD-SHELL\"\n        - " + q(probe) + "\n";
      r->dropped.push_back(n + ": " + (h.kind == config::HealthCheck::Kind::http ? "http" : "tcp") +
                           " health check becomes a shell probe (" + probe + "): the image needs that tool");
    }
    *y += "      interval: " + q(duration_text(h.interval)) + "\n      timeout: " + q(duration_text(h.timeout)) +
          "\n      retries: " + std::to_string(h.retries) + "\n      start_period: " + q(duration_text(h.start_period)) + "\n";
    if (h.restart_on_unhealthy) r->dropped.push_back(n + ": health.restart_on_unhealthy has no Compose equivalent");
  }
  const auto& l = s.limits;
  if (l.memory_max && l.memory_max->kind == config::MemoryLimit::Kind::bytes)
    *y += "    mem_limit: " + memory_bytes(*l.memory_max) + "\n";
  else if (l.memory_max) r->dropped.push_back(n + ": limits.memory_max " + l.memory_max->text() + " (only bytes export)");
  if (l.memory_high) r->dropped.push_back(n + ": limits.memory_high has no Compose equivalent");
  if (l.memory_swap_max) r->dropped.push_back(n + ": limits.memory_swap_max has no Compose equivalent");
  if (l.cpu_max_us && *l.cpu_max_us != config::ResourceLimits::kMax) {
    char cpus[32];
    std::snprintf(cpus, sizeof cpus, "%.2f",
                  static_cast<double>(*l.cpu_max_us) / static_cast<double>(config::ResourceLimits::kCpuPeriodUs));
    *y += std::string("    cpus: ") + cpus + "\n";
  }
  if (l.cpu_weight) r->dropped.push_back(n + ": limits.cpu_weight has no Compose equivalent (cpu_shares differs in scale)");
  if (l.io_weight) r->dropped.push_back(n + ": limits.io_weight has no Compose equivalent");
  if (l.pids_max && *l.pids_max != config::ResourceLimits::kMax)
    *y += "    pids_limit: " + std::to_string(*l.pids_max) + "\n";
  if (s.ready != config::ReadyMode::exec) r->dropped.push_back(n + ": ready (notify/fd) has no Compose equivalent");
}

}  // namespace

Result to_compose(const std::vector<const config::ServiceSpec*>& services) {
  Result r;
  std::string y = "# Exported from Dockless (dockless export --format compose)\nservices:\n";
  std::set<std::string> networks;
  for (const auto* s : services) service(*s, &y, &r, &networks);
  if (!networks.empty()) {
    y += "networks:\n";
    for (const auto& n : networks) append(&y, "  ", q(n), ":\n    external: true\n");
  }
  r.files.push_back({"compose.yaml", y});
  return r;
}

}  // namespace tools::exporter
