// systemd units: one NAME.service per service, plus NAME.socket for socket-activated ones.
#include <csignal>
#include <cstring>
#include <string>

#include "tools/export/export.hpp"
#include "tools/export/export_common.hpp"

namespace tools::exporter {

// expand_vars: in ExecStart=, "$PORT"/"${PORT}" stay systemd's own expansion from Environment=,
// which is what Dockless does at start; elsewhere "$" is doubled (literal).
std::string systemd_quote(const std::string& arg, bool expand_vars) {
  bool plain = !arg.empty();
  for (char c : arg)
    if (c == ' ' || c == '\t' || c == '"' || c == '\'' || c == '\\' || c == '$' || c == '%' || c == ';')
      plain = false;
  if (plain) return arg;
  std::string out = "\"";
  for (char c : arg) {
    // "$" and "%" are systemd's own expansions; doubled they are literal.
    if (c == '"' || c == '\\') out += '\\';
    if (c == '$' && !expand_vars) out += '$';
    if (c == '%') out += '%';
    out += c;
  }
  return out + "\"";
}

namespace {

std::string unit_for(const config::ServiceSpec& s, Result* r) {
  const std::string& n = s.name;
  std::string u = "# Exported from Dockless service \"" + n + "\" (dockless export --format systemd)\n[Unit]\n";
  u += "Description=" + n + " (exported from Dockless)\n";
  for (const auto& d : s.depends_on) {
    u += "After=" + d.name + ".service\nRequires=" + d.name + ".service\n";
    if (d.condition == config::DependencyCondition::healthy)
      r->dropped.push_back(n + ": depends_on " + d.name + " condition \"healthy\" is only ordering (After=/Requires=) in systemd");
  }
  if (!s.sockets.empty()) u += "Requires=" + n + ".socket\nAfter=" + n + ".socket\n";
  u += "\n[Service]\n";
  u += s.ready == config::ReadyMode::notify ? "Type=notify\n" : "Type=exec\n";
  if (s.ready == config::ReadyMode::fd) r->dropped.push_back(n + ": ready = \"fd\" has no systemd equivalent (Type=exec used)");
  if (s.image) {
    std::string cmd = "podman run --rm --name " + n;
    for (const auto& [k, v] : s.env) append(&cmd, " -e ", systemd_quote(k + "=" + v));
    for (const auto& v : s.volumes) append(&cmd, " -v ", systemd_quote(v));
    if (s.network) append(&cmd, " --network ", systemd_quote(*s.network));
    for (const auto& a : s.docker_args) append(&cmd, " ", systemd_quote(a));
    if (std::uint16_t p = fixed_port(s)) append(&cmd, " -p ", std::to_string(p), ":", std::to_string(p));
    append(&cmd, " ", systemd_quote(*s.image));
    for (const auto& a : s.command) append(&cmd, " ", systemd_quote(a, true));
    append(&u, "ExecStart=/usr/bin/", cmd, "\n");
  } else {
    std::string cmd;
    for (const auto& a : s.command) append(&cmd, cmd.empty() ? "" : " ", systemd_quote(a, true));
    append(&u, "ExecStart=", cmd, "\n");
    for (const auto& [k, v] : s.env) append(&u, "Environment=", systemd_quote(k + "=" + v), "\n");
  }
  for (const auto& f : s.env_files) u += "EnvironmentFile=" + f + "\n";
  if (std::uint16_t p = fixed_port(s)) u += "Environment=PORT=" + std::to_string(p) + "\n";
  if (s.port && s.port->automatic) r->dropped.push_back(n + ": port = \"auto\" has no systemd equivalent ($PORT unset)");
  if (!s.working_dir.empty()) u += "WorkingDirectory=" + s.working_dir + "\n";
  if (!s.user.empty()) u += "User=" + s.user + "\n";
  if (!s.group.empty()) u += "Group=" + s.group + "\n";
  switch (s.restart) {
    case config::RestartPolicy::always: u += "Restart=always\n"; break;
    case config::RestartPolicy::on_failure: u += "Restart=on-failure\n"; break;
    case config::RestartPolicy::no: u += "Restart=no\n"; break;
  }
  u += "RestartSec=" + duration_text(s.restart_delay) + "\n";
  if (s.restart != config::RestartPolicy::no) {
    r->dropped.push_back(n + ": the exponential restart backoff (up to " + duration_text(s.restart_delay_max) +
                         ") is a fixed RestartSec= in systemd");
    if (s.restart_limit > 0)
      u += "StartLimitIntervalSec=" + duration_text(s.restart_window) + "\nStartLimitBurst=" +
           std::to_string(s.restart_limit) + "\n";
  }
  const char* sig = sigabbrev_np(s.stop_signal);
  if (sig) u += std::string("KillSignal=SIG") + sig + "\n";
  u += "TimeoutStopSec=" + duration_text(s.stop_timeout) + "\n";
  if (s.stdin) r->dropped.push_back(n + ": stdin = true (dockless stdin) has no systemd equivalent");
  const auto& l = s.limits;
  auto memory = [&](const char* key, const std::optional<config::MemoryLimit>& m) {
    if (!m) return;
    if (m->kind == config::MemoryLimit::Kind::max) u += std::string(key) + "=infinity\n";
    else if (m->kind == config::MemoryLimit::Kind::percent)
      u += std::string(key) + "=" + std::to_string(m->hundredths / 100) + "%\n";
    else u += std::string(key) + "=" + memory_bytes(*m) + "\n";
  };
  memory("MemoryMax", l.memory_max);
  memory("MemoryHigh", l.memory_high);
  memory("MemorySwapMax", l.memory_swap_max);
  if (l.cpu_max_us && *l.cpu_max_us != config::ResourceLimits::kMax)
    u += "CPUQuota=" + std::to_string(*l.cpu_max_us * 100 / config::ResourceLimits::kCpuPeriodUs) + "%\n";
  if (l.cpu_weight) u += "CPUWeight=" + std::to_string(*l.cpu_weight) + "\n";
  if (l.io_weight) u += "IOWeight=" + std::to_string(*l.io_weight) + "\n";
  if (l.pids_max)
    u += "TasksMax=" + (*l.pids_max == config::ResourceLimits::kMax ? std::string("infinity") : std::to_string(*l.pids_max)) + "\n";
  if (s.health) r->dropped.push_back(n + ": health check has no systemd equivalent (not exported)");
  if (!s.autostart) r->dropped.push_back(n + ": autostart = false: the unit is written without [Install]");
  if (s.log_max_size != (10u << 20) || s.log_keep != 5)
    r->dropped.push_back(n + ": log_max_size/log_keep: logs go to the journal, sized by journald.conf");
  if (s.autostart) u += "\n[Install]\nWantedBy=multi-user.target\n";
  return u;
}

std::string socket_unit_for(const config::ServiceSpec& s, Result* r) {
  std::string u = "# Exported from Dockless service \"" + s.name + "\" (dockless export --format systemd)\n[Unit]\n";
  u += "Description=" + s.name + " sockets (exported from Dockless)\n\n[Socket]\n";
  for (const auto& k : s.sockets) {
    std::string where = k.family == config::Socket::Family::unix_path
                            ? k.path
                            : (k.ipv6 ? "[" + k.address + "]" : k.address) + ":" + std::to_string(k.port);
    u += (k.type == config::Socket::Type::stream ? "ListenStream=" : "ListenDatagram=") + where + "\n";
    if (k.backlog != config::Socket::kDefaultBacklog) u += "Backlog=" + std::to_string(k.backlog) + "\n";
    if (k.reuse_port) u += "ReusePort=yes\n";
    if (k.family == config::Socket::Family::unix_path) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", k.mode);
      u += std::string("SocketMode=") + mode + "\n";
      if (!k.user.empty()) u += "SocketUser=" + k.user + "\n";
      if (!k.group.empty()) u += "SocketGroup=" + k.group + "\n";
    }
  }
  // systemd names all of one unit's fds with one FileDescriptorName=; per-socket names differ.
  if (s.sockets.size() > 1)
    r->dropped.push_back(s.name + ": " + std::to_string(s.sockets.size()) +
                         " sockets share one FileDescriptorName= in systemd; LISTEN_FDNAMES is the unit name for all");
  else u += "FileDescriptorName=" + s.sockets.front().name + "\n";
  u += "\n[Install]\nWantedBy=sockets.target\n";
  return u;
}

}  // namespace

Result to_systemd(const std::vector<const config::ServiceSpec*>& services) {
  Result r;
  for (const auto* s : services) {
    r.files.push_back({s->name + ".service", unit_for(*s, &r)});
    if (!s->sockets.empty()) r.files.push_back({s->name + ".socket", socket_unit_for(*s, &r)});
  }
  return r;
}

}  // namespace tools::exporter
