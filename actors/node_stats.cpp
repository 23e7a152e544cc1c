#include "actors/node_stats.hpp"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>

#include "runtime/fd.hpp"
#include "runtime/fs.hpp"

namespace actors {

namespace {

std::optional<std::string> slurp(const char* path) {
  runtime::Fd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  runtime::Result<std::string> text = runtime::read_from_start(fd.get());
  if (!text) return std::nullopt;
  return std::move(text).value();
}

// "MemTotal:       8000000 kB" → bytes.
std::optional<std::uint64_t> kib_field(std::string_view line) {
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view rest = line.substr(colon + 1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
  if (ec != std::errc()) return std::nullopt;
  return v * 1024;
}

}  // namespace

bool parse_loadavg(std::string_view text, NodeStats* out) {
  const std::string s(text);
  double a = 0, b = 0, c = 0;
  if (std::sscanf(s.c_str(), "%lf %lf %lf", &a, &b, &c) != 3) return false;
  out->load1 = a;
  out->load5 = b;
  out->load15 = c;
  return true;
}

void parse_meminfo(std::string_view text, NodeStats* out) {
  while (!text.empty()) {
    const std::size_t eol = text.find('\n');
    const std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (line.starts_with("MemTotal:")) out->memory_total = kib_field(line);
    else if (line.starts_with("MemAvailable:")) out->memory_available = kib_field(line);
  }
}

NodeStats read_node_stats(const std::string& data_dir) {
  NodeStats n;
  if (auto t = slurp("/proc/loadavg")) parse_loadavg(*t, &n);
  if (auto t = slurp("/proc/meminfo")) parse_meminfo(*t, &n);
  struct statvfs v {};
  if (::statvfs(data_dir.c_str(), &v) == 0) {
    n.disk_total = static_cast<std::uint64_t>(v.f_blocks) * v.f_frsize;
    // f_bavail: what an unprivileged writer can still use, as df shows it.
    n.disk_available = static_cast<std::uint64_t>(v.f_bavail) * v.f_frsize;
  }
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  n.cpus = cpus > 0 ? static_cast<unsigned>(cpus) : 0;
  return n;
}

}  // namespace actors
