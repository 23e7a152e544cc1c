// The dockless binary: `serve` runs the daemon; the other subcommands are clients.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "dockless_config.h"
#include "tools/serve.hpp"

namespace {

const char* env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

void usage(std::FILE* out) {
  std::fputs(
      "usage: dockless <command> [options]\n"
      "\n"
      "  serve [--config FILE] [--data-dir DIR] [--listen ADDR:PORT] [--socket PATH]\n"
      "                          run the daemon (env: DOCKLESS_CONFIG, DOCKLESS_DATA_DIR,\n"
      "                          DOCKLESS_LISTEN, DOCKLESS_SOCKET)\n"
      "  check-config [FILE]     validate a config file without running anything\n"
      "  version                 print the version\n",
      out);
}

int check_config(const std::vector<std::string>& args) {
  std::string path = args.empty() ? env_or("DOCKLESS_CONFIG", DOCKLESS_DEFAULT_CONFIG) : args[0];
  config::ParseResult r = config::parse_file(path, config::process_environment());
  if (!r.ok()) {
    for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    std::fprintf(stderr, "%s: %zu error(s)\n", path.c_str(), r.errors.size());
    return 1;
  }
  std::printf("%s: ok (%zu service(s))\n", path.c_str(), r.config->services.size());
  return 0;
}

int serve_command(const std::vector<std::string>& args) {
  tools::ServeOptions o;
  o.config_path = env_or("DOCKLESS_CONFIG", DOCKLESS_DEFAULT_CONFIG);
  o.config_explicit = std::getenv("DOCKLESS_CONFIG") != nullptr;
  o.data_dir = env_or("DOCKLESS_DATA_DIR", "");
  o.listen = env_or("DOCKLESS_LISTEN", "");
  o.socket_path = env_or("DOCKLESS_SOCKET", "/run/dockless/dockless.sock");
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
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "serve") return serve_command(args);
  if (cmd == "check-config") return check_config(args);
  if (cmd == "version" || cmd == "--version") {
    std::printf("dockless %s\n", DOCKLESS_VERSION);
    return 0;
  }
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    usage(stdout);
    return 0;
  }
  std::fprintf(stderr, "dockless: unknown command \"%s\"\n", cmd.c_str());
  usage(stderr);
  return 2;
}
