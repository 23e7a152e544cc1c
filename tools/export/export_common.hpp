#pragma once
// Helpers shared by the export targets.
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace tools::exporter {

inline long long seconds_of(config::Duration d) { return d.count() / 1000; }

// "1500ms" or "2s": durations as systemd, Compose and Go's time.ParseDuration read them.
inline std::string duration_text(config::Duration d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

// A memory limit in bytes, or "" for unlimited/percent (which the caller reports).
inline std::string memory_bytes(const config::MemoryLimit& m) {
  if (m.kind == config::MemoryLimit::Kind::bytes) return std::to_string(m.bytes);
  return "";
}

// Appends the pieces one by one, where a `"text" + std::string` chain would build temporaries:
// GCC 12 at -O3 reports some of those as overlapping memcpy (-Wrestrict, GCC PR 105329, a false
// positive), which -Werror turns into a build failure.
template <typename... Parts>
void append(std::string* out, const Parts&... parts) {
  (out->append(std::string_view(parts)), ...);
}

// The port the service listens on, when it has a fixed one (0 otherwise).
inline std::uint16_t fixed_port(const config::ServiceSpec& s) {
  if (s.port && !s.port->automatic) return s.port->number;
  return 0;
}

// Dockless puts the service's port into $PORT/${PORT} of its command at start ($PORTS stays).
// Targets that run a command without a shell or systemd's expansion get `port` (the number,
// or the target's own variable) written in instead; an empty `port` leaves `arg` as it is.
inline std::string port_in(const std::string& arg, const std::string& port) {
  if (port.empty()) return arg;
  std::string out;
  for (std::size_t i = 0; i < arg.size();) {
    const bool braced = arg.compare(i, 7, "${PORT}") == 0;
    const bool bare = !braced && arg.compare(i, 5, "$PORT") == 0 &&
                      (i + 5 == arg.size() || !(std::isalnum(static_cast<unsigned char>(arg[i + 5])) || arg[i + 5] == '_'));
    if (braced || bare) {
      out += port;
      i += braced ? 7 : 5;
    } else {
      out += arg[i++];
    }
  }
  return out;
}

}  // namespace tools::exporter
