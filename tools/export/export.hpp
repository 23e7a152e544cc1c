#pragma once
// `dockless export`: a config's services as definitions for another engine (Docker
// Compose, systemd units, a Nomad job), for users whose services outgrow one machine.
// Pure functions of a parsed config: no daemon, no I/O.
#include <string>
#include <vector>

#include "config/config.hpp"

namespace tools::exporter {

// One output file: its name (used with --output DIR) and its text.
struct File {
  std::string name;
  std::string text;
};

struct Result {
  std::vector<File> files;
  // What the target cannot express, one line each ("web: health.retries has no ..."):
  // printed on stderr, never silently dropped.
  std::vector<std::string> dropped;
};

Result to_compose(const std::vector<const config::ServiceSpec*>& services);
Result to_systemd(const std::vector<const config::ServiceSpec*>& services);
Result to_nomad(const std::vector<const config::ServiceSpec*>& services);

// systemd's quoting of one ExecStart= argument (systemd.service(5) "Command lines").
std::string systemd_quote(const std::string& arg, bool expand_vars = false);

}  // namespace tools::exporter
