#pragma once
// The machine's own figures for GET /v1/node and the dashboard: load average, memory and
// the data directory's disk. Read on request only (three small reads, nothing sampled).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace actors {

struct NodeStats {
  std::optional<double> load1, load5, load15;             // /proc/loadavg
  std::optional<std::uint64_t> memory_total, memory_available;  // /proc/meminfo, bytes
  std::optional<std::uint64_t> disk_total, disk_available;      // statvfs(data_dir), bytes
  unsigned cpus = 0;  // online CPUs: a load of `cpus` keeps every core busy
};

NodeStats read_node_stats(const std::string& data_dir);
// The text parsers (tested on text): "0.52 0.58 0.59 1/123 4567" and meminfo's
// "MemTotal:  8000000 kB" lines.
bool parse_loadavg(std::string_view text, NodeStats* out);
void parse_meminfo(std::string_view text, NodeStats* out);

}  // namespace actors
