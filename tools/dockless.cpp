// The dockless binary: `serve` runs the daemon; the other subcommands are clients
// (tools/cli/) of its HTTP API.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "actors/config_inputs.hpp"
#include "actors/reload_plan.hpp"
#include "config/config.hpp"
#include "dockless_config.h"
#include "tools/cli/cli.hpp"
#include "tools/cli/cli_plan.hpp"
#include "tools/daemon/serve.hpp"
#include "tools/export/export_command.hpp"

namespace {

const char* env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// With no daemon to ask, the plan of a first start: every service and trigger is added, and
// the daemon's settings are FILE's own (nothing to compare them with).
int offline_plan(const config::Config& cfg, bool json) try {
  config::Config running = cfg;
  running.services.clear();
  running.triggers.clear();
  const nlohmann::json plan = actors::plan_reload(running, {}, cfg).to_json();
  if (json) {
    nlohmann::json j = {{"ok", true}, {"dry_run", true}, {"offline", true}, {"plan", plan}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("no daemon reachable; the plan of a first start:\n%s", tools::cli::render_plan(plan).c_str());
  }
  return 0;
} catch (const std::exception& e) {  // nlohmann::json's, which main() must not let out
  std::fprintf(stderr, "dockless check-config: %s\n", e.what());
  return 1;
}

int check_config(const tools::cli::CommandLine& cl) {
  std::vector<std::string> files;
  bool plan = false;
  bool json = false;
  for (const auto& a : cl.args) {
    if (a == "--plan") plan = true;
    else if (a == "--json") json = true;
    else files.push_back(a);
  }
  if (files.size() > 1 || (json && !plan)) {
    std::fputs("usage: dockless check-config [--plan [--json]] [FILE]\n", stderr);
    return tools::cli::kUsage;
  }
  std::string path = files.empty() ? env_or("DOCKLESS_CONFIG", DOCKLESS_DEFAULT_CONFIG) : files[0];
  config::ParseResult r = config::parse_file(path, actors::host_config_inputs());
  if (!r.ok()) {
    for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    std::fprintf(stderr, "%s: %zu error(s)\n", path.c_str(), r.errors.size());
    return 1;
  }
  std::fprintf(json ? stderr : stdout, "%s: ok (%zu service(s))\n", path.c_str(), r.config->services.size());
  if (!plan) return 0;
  // The running daemon's dry run: the plan the reload it would run applies (of the config file
  // the daemon reads, which is FILE when they are the same file).
  tools::cli::CommandLine reload = cl;
  reload.command = "reload";
  reload.args = {"--dry-run"};
  if (json) reload.args.emplace_back("--json");
  const int rc = tools::cli::run_client(reload);
  if (rc != tools::cli::kUnreachable) return rc;
  return offline_plan(*r.config, json);
}

int serve_command(const std::vector<std::string>& args) {
  tools::ServeOptions o;
  o.config_path = env_or("DOCKLESS_CONFIG", DOCKLESS_DEFAULT_CONFIG);
  o.config_explicit = std::getenv("DOCKLESS_CONFIG") != nullptr;
  o.data_dir = env_or("DOCKLESS_DATA_DIR", "");
  o.listen = env_or("DOCKLESS_LISTEN", "");
  o.socket_path = env_or("DOCKLESS_SOCKET", "/run/dockless/dockless.sock");
  o.cert = env_or("DOCKLESS_CERT", "");
  o.key = env_or("DOCKLESS_KEY", "");
  for (std::size_t i = 0; i < args.size(); ++i) {
    auto value = [&](const char* flag) -> const std::string* {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "dockless serve: %s needs a value\n", flag);
        return nullptr;
      }
      return &args[++i];
    };
    const std::string& a = args[i];
    std::string* target = a == "--config"     ? &o.config_path
                          : a == "--data-dir" ? &o.data_dir
                          : a == "--listen"   ? &o.listen
                          : a == "--socket"   ? &o.socket_path
                          : a == "--cert"     ? &o.cert
                          : a == "--key"      ? &o.key
                                              : nullptr;
    if (!target) {
      std::fprintf(stderr, "dockless serve: unknown option \"%s\"\n", a.c_str());
      return 2;
    }
    const std::string* v = value(a.c_str());
    if (!v) return 2;
    *target = *v;
    if (a == "--config") o.config_explicit = true;
  }
  return tools::serve(o);
}

}  // namespace

int main(int argc, char** argv) {
  namespace cli = tools::cli;
  cli::CommandLine cl;
  if (!cli::parse_command_line(std::vector<std::string>(argv + 1, argv + argc), &cl)) return cli::kUsage;
  const std::string& cmd = cl.command;
  if (cmd.empty()) {
    cli::print_usage(stderr);
    return cli::kUsage;
  }
  if (cmd == "serve") {
    std::vector<std::string> args = cl.args;
    // `dockless --socket PATH serve`: the global flag names serve's socket too.
    if (cl.globals.socket_flag) args.insert(args.begin(), {"--socket", cl.globals.socket});
    for (const auto& a : args)
      if (a == "--help" || a == "-h") return cli::print_command_help("serve", stdout), 0;
    return serve_command(args);
  }
  if (cmd == "check-config") {
    for (const auto& a : cl.args)
      if (a == "--help" || a == "-h") return cli::print_command_help("check-config", stdout), 0;
    return check_config(cl);
  }
  if (cmd == "export") {
    for (const auto& a : cl.args)
      if (a == "--help" || a == "-h") return cli::print_command_help("export", stdout), 0;
    return tools::exporter::run(cl.args, env_or("DOCKLESS_CONFIG", DOCKLESS_DEFAULT_CONFIG));
  }
  if (cmd == "version" || cmd == "--version") {
    for (const auto& a : cl.args)
      if (a == "--help" || a == "-h") return cli::print_command_help("version", stdout), 0;
    cli::print_version(cl.globals);
    return 0;
  }
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    if (cl.args.empty()) {
      cli::print_usage(stdout);
      return 0;
    }
    if (cli::print_command_help(cl.args[0], stdout)) return 0;
    std::fprintf(stderr, "dockless: unknown command \"%s\"\n", cl.args[0].c_str());
    return cli::kUsage;
  }
  if (cli::is_client_command(cmd)) return cli::run_client(cl);
  std::fprintf(stderr, "dockless: unknown command \"%s\"\n", cmd.c_str());
  cli::print_usage(stderr);
  return cli::kUsage;
}
