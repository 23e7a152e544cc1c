#pragma once
// Helpers shared by the export targets.
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

}  // namespace tools::exporter
