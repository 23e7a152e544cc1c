// `dockless export --format compose|systemd|nomad [--config FILE] [--output DIR] [NAME...]`:
// reads the config file offline (no daemon) and prints or writes the exported definitions.
#include "tools/export/export_command.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "actors/config_inputs.hpp"
#include "config/config.hpp"
#include "tools/export/export.hpp"

namespace tools::exporter {

const char* const kUsage =
    "usage: dockless export --format compose|systemd|nomad [--config FILE] [--output DIR] [NAME...]\n";

int run(const std::vector<std::string>& args, const std::string& default_config) {
  std::string format;
  std::string path = default_config;
  std::string output;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--format" || a == "--config" || a == "--output") {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "dockless export: %s needs a value\n%s", a.c_str(), kUsage);
        return 2;
      }
      (a == "--format" ? format : a == "--config" ? path : output) = args[++i];
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "dockless export: unknown option \"%s\"\n%s", a.c_str(), kUsage);
      return 2;
    } else {
      names.push_back(a);
    }
  }
  if (format != "compose" && format != "systemd" && format != "nomad") {
    std::fprintf(stderr, "dockless export: --format must be compose, systemd or nomad\n%s", kUsage);
    return 2;
  }
  config::ParseResult parsed = config::parse_file(path, actors::host_config_inputs());
  if (!parsed.ok()) {
    for (const auto& e : parsed.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    return 1;
  }
  std::vector<const config::ServiceSpec*> chosen;
  if (names.empty()) {
    for (const auto& s : parsed.config->services) chosen.push_back(&s);
  } else {
    for (const auto& n : names) {
      const config::ServiceSpec* s = parsed.config->find(n);
      if (!s) {
        std::fprintf(stderr, "dockless export: no service \"%s\" in %s\n", n.c_str(), path.c_str());
        return 1;
      }
      chosen.push_back(s);
    }
  }
  const Result r = format == "compose" ? to_compose(chosen) : format == "systemd" ? to_systemd(chosen) : to_nomad(chosen);
  for (const auto& d : r.dropped) std::fprintf(stderr, "not exported: %s\n", d.c_str());
  for (const auto& f : r.files) {
    if (output.empty()) {
      if (r.files.size() > 1) std::printf("# --- %s\n", f.name.c_str());
      std::fputs(f.text.c_str(), stdout);
      continue;
    }
    const std::string file = output + "/" + f.name;
    std::ofstream out(file, std::ios::trunc);
    out << f.text;
    if (!out.flush()) {
      std::fprintf(stderr, "dockless export: cannot write %s\n", file.c_str());
      return 1;
    }
    std::fprintf(stderr, "wrote %s\n", file.c_str());
  }
  return 0;
}

}  // namespace tools::exporter
