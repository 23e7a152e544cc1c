#include "tools/daemon/daemon_log.hpp"

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace tools {

namespace {
Level g_min = Level::info;
bool journal() {
  static const bool under_journald = std::getenv("JOURNAL_STREAM") != nullptr;
  return under_journald;
}
}  // namespace

void set_min_level(Level l) { g_min = l; }

void log(Level l, std::string_view message) {
  if (static_cast<int>(l) > static_cast<int>(g_min)) return;
  std::string line;
  if (journal()) {
    // Appended piecewise: GCC 12 -O3 reports a false -Wrestrict on "<" + string.
    line += '<';
    line += std::to_string(static_cast<int>(l));
    line += '>';
  } else {
    switch (l) {
      case Level::debug: line = "debug: "; break;
      case Level::info: break;
      case Level::warn: line = "warning: "; break;
      case Level::error: line = "error: "; break;
    }
  }
  line.append(message);
  line.push_back('\n');
  // One write per line, so lines from a crash are never interleaved mid-line.
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace tools
