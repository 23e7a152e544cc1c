#pragma once
// The daemon's own log lines, on stderr. Under systemd (JOURNAL_STREAM set) each
// line starts with a syslog priority "<N>" that journald turns into the level.
#include <string_view>

namespace tools {

enum class Level { debug = 7, info = 6, warn = 4, error = 3 };
void set_min_level(Level l);
void log(Level l, std::string_view message);

}  // namespace tools
