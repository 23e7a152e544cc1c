#pragma once
#include <string>
#include <vector>

namespace tools::exporter {

extern const char* const kUsage;

// The export subcommand; returns the exit code (2 on usage errors, 1 on config errors).
int run(const std::vector<std::string>& args, const std::string& default_config);

}  // namespace tools::exporter
