// Small pieces of the public API: names, fingerprints, environments, defaults.
#include <cstdlib>
#include <sstream>

#include "config/config.hpp"

namespace config {

std::string Error::to_string() const {
  if (line <= 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + message;
}

VariableLookup map_environment(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

FileReader map_files(std::map<std::string, std::string> files) {
  return [files = std::move(files)](const std::string& path, std::string* error) -> std::optional<std::string> {
    auto it = files.find(path);
    if (it != files.end()) return it->second;
    *error = "No such file or directory";
    return std::nullopt;
  };
}

bool service_name_valid(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && !(i > 0 && (c == '_' || c == '.' || c == '-'))) return false;
  }
  return true;
}

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error: return "error";
  }
  return "info";
}

std::string_view to_string(RestartPolicy policy) {
  switch (policy) {
    case RestartPolicy::no: return "no";
    case RestartPolicy::on_failure: return "on-failure";
    case RestartPolicy::always: return "always";
  }
  return "on-failure";
}

std::string_view to_string(DependencyCondition condition) {
  return condition == DependencyCondition::healthy ? "healthy" : "started";
}

const ServiceSpec* Config::find(std::string_view name) const {
  for (const ServiceSpec& s : services)
    if (s.name == name) return &s;
  return nullptr;
}

Config embedded_defaults() { return Config{}; }

namespace {

// Length-prefixed, so no value can forge a field boundary.
void field(std::ostringstream& out, std::string_view key, std::string_view value) {
  out << key << '=' << value.size() << ':' << value << ';';
}

void list(std::ostringstream& out, std::string_view key, const std::vector<std::string>& values) {
  out << key << "=[";
  for (const std::string& v : values) field(out, "", v);
  out << "];";
}

}  // namespace

std::string ServiceSpec::fingerprint() const {
  std::ostringstream out;
  field(out, "name", name);
  list(out, "command", command);
  out << "env={";
  for (const auto& [k, v] : env) field(out, k, v);
  out << "};";
  list(out, "env_files", env_files);
  field(out, "working_dir", working_dir);
  field(out, "user", user);
  field(out, "group", group);
  out << "restart=" << to_string(restart) << ";delay=" << restart_delay.count()
      << ";delay_max=" << restart_delay_max.count() << ";reset=" << restart_reset_after.count()
      << ";limit=" << restart_limit << ";window=" << restart_window.count() << ";signal=" << stop_signal
      << ";stop_timeout=" << stop_timeout.count() << ";deps=[";
  for (const Dependency& d : depends_on) out << d.name << ':' << to_string(d.condition) << ',';
  out << "];port=";
  if (port) out << (port->automatic ? "auto" : std::to_string(port->number));
  out << ";ports=[";
  for (const Port& p : ports) out << (p.automatic ? "auto" : std::to_string(p.number)) << ',';
  out << "];sockets=[";
  for (const Socket& s : sockets) field(out, "", s.fingerprint());
  out << "];health=";
  if (health) {
    out << static_cast<int>(health->kind) << ',';
    list(out, "exec", health->exec);
    field(out, "host", health->host);
    field(out, "path", health->path);
    out << health->port << ',' << health->interval.count() << ',' << health->timeout.count() << ','
        << health->start_period.count() << ',' << health->retries << ',' << health->restart_on_unhealthy;
  }
  out << ";log=" << log_max_size << ',' << log_keep << ";autostart=" << autostart << ";stdin=" << stdin
      << ";ready=" << static_cast<int>(ready) << ',' << ready_fd << ',' << ready_timeout.count() << ";restart_mode=" << static_cast<int>(restart_mode)
      << ";start_on=" << static_cast<int>(start_on) << ';';
  field(out, "image", image.value_or(""));
  out << image.has_value();
  list(out, "docker_args", docker_args);
  list(out, "volumes", volumes);
  field(out, "network", network.value_or(""));
  field(out, "docker_cli", docker_cli.value_or(""));
  list(out, "port_refs", port_refs);
  if (attach) out << "attach=" << attach->pid_file << ',' << attach->control << ';';
  out << "limits={" << limits.fingerprint() << "};";
  return out.str();
}

}  // namespace config
