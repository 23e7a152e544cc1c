// One [services.NAME] table → ServiceSpec.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "config/detail.hpp"
#include "config/envfile.hpp"
#include "config/service_parse.hpp"
#include "config/substitute.hpp"

namespace config::detail {

namespace {
constexpr std::string_view kUndefinedHint = "; set it in the environment or in env/env_file";
}  // namespace


bool ServiceParser::run(ServiceSpec* out) {
  errors_at_start_ = r_.sink().errors.size();
  r_.reject_unknown({"command", "env", "env_file", "working_dir", "user", "group", "restart",
                     "restart_delay", "restart_delay_max", "restart_reset_after", "restart_limit",
                     "restart_window", "restart_mode", "start_on", "stop_signal", "stop_timeout", "depends_on", "ports", "port", "sockets",
                     "health", "log_max_size", "log_keep", "autostart", "stdin", "ready", "ready_timeout", "image",
                     "docker_args", "volumes", "network", "docker_cli", "memory_max", "memory_high",
                     "memory_swap_max", "cpu_max", "cpu_weight", "pids_max", "io_weight", "attach"});
  env_files();
  env_table();
  if (const toml::node* n = r_.find("command")) {
    if (auto argv = command_of(*n, "command")) spec_.command = std::move(*argv);
  } else if (!r_.find("image") && !r_.find("attach")) {  // a container may run its image's default command
    r_.sink().add(spec_.pos, "[" + r_.path() + "]: missing required key \"command\"");
  }
  for (auto [key, field] : {std::pair{"working_dir", &spec_.working_dir}, std::pair{"user", &spec_.user},
                            std::pair{"group", &spec_.group}}) {
    if (auto v = r_.string(key))
      if (auto s = subst(*r_.find(key), key, *v)) *field = std::move(*s);
  }
  if (auto v = r_.one_of("restart", {"no", "on-failure", "always"}))
    spec_.restart = *v == "no" ? RestartPolicy::no
                    : *v == "always" ? RestartPolicy::always : RestartPolicy::on_failure;
  for (auto [key, field] : {std::pair{"restart_delay", &spec_.restart_delay},
                            std::pair{"restart_delay_max", &spec_.restart_delay_max},
                            std::pair{"restart_reset_after", &spec_.restart_reset_after},
                            std::pair{"restart_window", &spec_.restart_window},
                            std::pair{"stop_timeout", &spec_.stop_timeout},
                            std::pair{"ready_timeout", &spec_.ready_timeout}}) {
    if (auto d = r_.duration(key)) *field = *d;
  }
  if (auto v = r_.integer("restart_limit", 0, INT32_MAX)) spec_.restart_limit = static_cast<int>(*v);
  if (const toml::node* n = r_.find("stop_signal")) {
    if (n->is_integer()) {
      if (auto v = r_.integer("stop_signal", 1, 64)) spec_.stop_signal = static_cast<int>(*v);
    } else if (n->is_string()) {
      std::string why;
      if (auto s = parse_signal(n->as_string()->get(), &why)) spec_.stop_signal = *s;
      else r_.error(*n, "stop_signal", why);
    } else {
      r_.type_error(*n, "stop_signal", "a signal name or number");
    }
  }
  dependencies();
  ports();
  sockets();
  health();
  if (auto v = r_.size("log_max_size", 4096)) spec_.log_max_size = *v;
  if (auto v = r_.integer("log_keep", 1, 1000)) spec_.log_keep = static_cast<int>(*v);
  if (auto v = r_.boolean("autostart")) spec_.autostart = *v;
  if (auto v = r_.boolean("stdin")) spec_.stdin = *v;
  ready();
  socket_fds_clash();
  socket_modes();
  misc();
  limits();
  attach();
  bool ok = service_name_valid(spec_.name) &&  // a bad name is reported by the caller
            r_.sink().errors.size() == errors_at_start_;
  *out = std::move(spec_);
  return ok;
}

// env_stage: resolving the env table's own values, which see env files and the daemon's
// environment only, so `PATH = "/opt/bin:${PATH}"` extends the daemon's PATH.
Resolution ServiceParser::resolve(std::string_view name, bool env_stage) {
  if (name == "PORT") return Resolution::kept();
  if (name.substr(0, 9) == "services.") {
    std::string_view rest = name.substr(9);
    std::size_t dot = rest.rfind('.');
    if (dot == std::string_view::npos || rest.substr(dot + 1) != "port")
      return Resolution::failed("unknown reference ${" + std::string(name) +
                                "}; only ${services.NAME.port} is supported");
    std::string_view target = rest.substr(0, dot);
    auto it = ctx_.ports.find(target);
    if (it == ctx_.ports.end())
      return Resolution::failed("${" + std::string(name) + "} names unknown service " + quote(target));
    if (!it->second)
      return Resolution::failed("${" + std::string(name) + "}: service " + quote(target) + " has no port");
    if (it->second->automatic) {
      if (std::find(spec_.port_refs.begin(), spec_.port_refs.end(), target) == spec_.port_refs.end())
        spec_.port_refs.emplace_back(target);
      return Resolution::kept();
    }
    return Resolution::of(std::to_string(it->second->number));
  }
  const auto& local = env_stage ? file_env_ : spec_.env;
  if (auto it = local.find(std::string(name)); it != local.end()) return Resolution::of(it->second);
  if (ctx_.inputs.env)
    if (auto v = ctx_.inputs.env(name)) return Resolution::of(*v);
  return Resolution::failed("undefined variable ${" + std::string(name) + "}" + std::string(kUndefinedHint));
}

std::optional<std::string> ServiceParser::subst(const toml::node& at, std::string_view key,
                                                std::string_view text, bool env_stage) {
  Substituted s = substitute(text, [&](std::string_view n) { return resolve(n, env_stage); });
  for (const std::string& e : s.errors) r_.error(at, key, e);
  if (!s.errors.empty()) return std::nullopt;
  return std::move(s.text);
}

std::optional<std::vector<std::string>> ServiceParser::command_of(const toml::node& n, std::string_view key) {
  std::vector<std::string> argv;
  if (n.is_string()) {
    std::string why;
    auto words = split_command(n.as_string()->get(), &why);
    if (!words) {
      r_.error(n, key, why);
      return std::nullopt;
    }
    argv = std::move(*words);
  } else if (n.is_array()) {
    for (const toml::node& item : *n.as_array()) {
      if (!item.is_string()) {
        r_.error(item, key, "expected an array of strings, got an array item of type " +
                                std::string(type_name(item)));
        return std::nullopt;
      }
      argv.push_back(item.as_string()->get());
    }
  } else {
    r_.type_error(n, key, "a string or an array of strings");
    return std::nullopt;
  }
  if (argv.empty() || argv[0].empty()) {
    r_.error(n, key, "must not be empty");
    return std::nullopt;
  }
  bool ok = true;
  for (std::string& arg : argv) {
    if (auto s = subst(n, key, arg)) arg = std::move(*s);
    else ok = false;
  }
  if (!ok) return std::nullopt;
  return argv;
}

void ServiceParser::env_files() {
  const toml::node* n = r_.find("env_file");
  if (!n) return;
  std::vector<const toml::node*> items;
  if (n->is_string()) {
    items.push_back(n);
  } else if (n->is_array()) {
    for (const toml::node& item : *n->as_array()) items.push_back(&item);
  } else {
    r_.type_error(*n, "env_file", "a string or an array of strings");
    return;
  }
  for (const toml::node* item : items) {
    if (!item->is_string()) {
      r_.type_error(*item, "env_file", "a file name string");
      continue;
    }
    std::filesystem::path path = item->as_string()->get();
    if (path.is_relative() && !ctx_.base_dir.empty()) path = std::filesystem::path(ctx_.base_dir) / path;
    std::string error = "no file reader given";
    std::optional<std::string> text = ctx_.inputs.read_file ? ctx_.inputs.read_file(path.string(), &error) : std::nullopt;
    if (!text) {
      r_.error(*item, "env_file", "cannot read " + quote(path.string()) + ": " + error);
      continue;
    }
    EnvFileContents contents = parse_env_file_text(*text);
    for (EnvFileLineError& e : contents.errors)
      r_.sink().errors.push_back({path.string(), e.line, e.col, std::move(e.message)});
    for (auto& [k, v] : contents.vars) file_env_[k] = std::move(v);
    spec_.env_files.push_back(path.string());
  }
  spec_.env = file_env_;
}

void ServiceParser::env_table() {
  const toml::node* n = r_.find("env");
  if (!n) return;
  if (!n->is_table()) {
    r_.type_error(*n, "env", "a table of strings");
    return;
  }
  // Two steps so that every value sees the same inputs, whatever the key order.
  std::map<std::string, std::string> values;
  for (auto&& [k, v] : *n->as_table()) {
    std::string key = "env." + std::string(k.str());
    std::string text;
    if (v.is_string()) text = v.as_string()->get();
    else if (v.is_integer()) text = std::to_string(v.as_integer()->get());
    else if (v.is_boolean()) text = v.as_boolean()->get() ? "true" : "false";
    else if (v.is_floating_point()) {
      std::ostringstream o;
      o << v.as_floating_point()->get();
      text = o.str();
    } else {
      r_.type_error(v, key, "a string, number or boolean");
      continue;
    }
    if (auto s = subst(v, key, text, /*env_stage=*/true)) values[std::string(k.str())] = std::move(*s);
  }
  for (auto& [k, v] : values) spec_.env[k] = std::move(v);
}

void ServiceParser::dependencies() {
  const toml::node* n = r_.find("depends_on");
  if (!n) return;
  auto condition = [&](const toml::node& c, std::string_view key) -> std::optional<DependencyCondition> {
    auto v = r_.one_of_node(c, key, {"started", "healthy"});
    if (!v) return std::nullopt;
    return *v == "healthy" ? DependencyCondition::healthy : DependencyCondition::started;
  };
  if (n->is_table()) {  // depends_on = { db = "healthy" }
    for (auto&& [k, v] : *n->as_table())
      if (auto c = condition(v, "depends_on." + std::string(k.str())))
        spec_.depends_on.push_back({std::string(k.str()), *c, pos_of(v)});
    return;
  }
  if (!n->is_array()) {
    r_.type_error(*n, "depends_on", "an array of service names");
    return;
  }
  for (const toml::node& item : *n->as_array()) {
    if (item.is_string()) {
      spec_.depends_on.push_back({item.as_string()->get(), DependencyCondition::started, pos_of(item)});
    } else if (item.is_table()) {  // { name = "db", condition = "healthy" }
      Reader dr(*item.as_table(), r_.path() + ".depends_on", r_.sink());
      dr.reject_unknown({"name", "condition"});
      auto name = dr.string("name", true);
      if (!dr.find("name")) r_.error(item, "depends_on", "missing \"name\" in dependency table");
      DependencyCondition c = DependencyCondition::started;
      if (const toml::node* cn = dr.find("condition")) {
        auto parsed = condition(*cn, "depends_on.condition");
        if (!parsed) continue;
        c = *parsed;
      }
      if (name) spec_.depends_on.push_back({*name, c, pos_of(item)});
    } else {
      r_.error(item, "depends_on",
               "expected a service name or { name = \"...\", condition = \"...\" }, got " +
                   std::string(type_name(item)));
    }
  }
}

std::optional<Port> ServiceParser::port_of(const toml::node& n, std::string_view key) {
  if (n.is_integer() && n.as_integer()->get() >= 1 && n.as_integer()->get() <= 65535)
    return Port{static_cast<std::uint16_t>(n.as_integer()->get()), false, pos_of(n)};
  if (n.is_string() && n.as_string()->get() == "auto") return Port{0, true, pos_of(n)};
  std::string got = n.is_integer() ? std::to_string(n.as_integer()->get())
                    : n.is_string() ? quote(n.as_string()->get()) : std::string(type_name(n));
  r_.error(n, key, "expected a port number (1-65535) or \"auto\", got " + got);
  return std::nullopt;
}

void ServiceParser::ports() {
  if (const toml::node* n = r_.find("port")) spec_.port = port_of(*n, "port");
  if (const toml::node* n = r_.find("ports")) {
    if (!n->is_array()) {
      r_.type_error(*n, "ports", "an array of port numbers or \"auto\"");
    } else {
      for (const toml::node& item : *n->as_array())
        if (auto p = port_of(item, "ports")) spec_.ports.push_back(*p);
    }
  }
  if (!spec_.port && !spec_.ports.empty()) spec_.port = spec_.ports.front();
  if (!spec_.port) return;
  // Fold the primary into `ports`, each fixed number once.
  std::vector<Port> all{*spec_.port};
  bool primary_seen = false;
  for (const Port& p : spec_.ports) {
    bool same_as_primary = p.automatic == spec_.port->automatic && p.number == spec_.port->number;
    if (same_as_primary && !primary_seen) {
      primary_seen = true;
      continue;
    }
    bool dup = !p.automatic && std::any_of(all.begin(), all.end(), [&](const Port& q) {
      return !q.automatic && q.number == p.number;
    });
    if (!dup) all.push_back(p);
  }
  spec_.ports = std::move(all);
}

bool parse_service_into(std::string_view name, const toml::table& table, const ServiceContext& ctx,
                        Sink& sink, ServiceSpec* out) {
  ServiceParser parser(name, table, ctx, sink);
  return parser.run(out);
}

}  // namespace config::detail
