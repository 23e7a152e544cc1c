#include "actors/proc_stats.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace actors {

namespace {

// Reads a small procfs file whole. procfs generates the text on read, so one
// read() with a big enough buffer gets a consistent snapshot.
std::optional<std::string> slurp(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out(1024, '\0');
  ssize_t n;
  do n = ::read(fd, out.data(), out.size());
  while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n <= 0) return std::nullopt;
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::uint64_t> rss_of(const std::string& statm_path) {
  auto text = slurp(statm_path);
  if (!text) return std::nullopt;
  unsigned long long size = 0, resident = 0;
  if (std::sscanf(text->c_str(), "%llu %llu", &size, &resident) != 2) return std::nullopt;
  return static_cast<std::uint64_t>(resident) * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

std::optional<ProcStats> read_proc_stats(pid_t pid, std::uint64_t expect_start_ticks) {
  const std::string dir = "/proc/" + std::to_string(pid);
  auto stat = slurp(dir + "/stat");
  if (!stat) return std::nullopt;
  // The comm field (2) may hold spaces and parentheses: parse after the last ')'.
  const auto rp = stat->rfind(')');
  if (rp == std::string::npos || rp + 2 >= stat->size()) return std::nullopt;
  const char* p = stat->c_str() + rp + 2;  // field 3 (state)
  unsigned long long utime = 0, stime = 0, start = 0, rss_pages = 0;
  // Fields 3..24: state, then 10 numbers to field 13, utime (14), stime (15), six
  // more to field 21, starttime (22), vsize (23), rss in pages (24). One file, not
  // also statm: /v1/services reads this for every service on every request.
  int got = std::sscanf(p,
                        "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu %*u %llu",
                        &utime, &stime, &start, &rss_pages);
  if (got != 4) return std::nullopt;
  if (expect_start_ticks != 0 && start != expect_start_ticks) return std::nullopt;
  ProcStats s;
  const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
  s.cpu_seconds = static_cast<double>(utime + stime) / (hz > 0 ? hz : 100.0);
  s.start_ticks = start;
  s.rss_bytes = static_cast<std::uint64_t>(rss_pages) * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  return s;
}

std::optional<std::uint64_t> self_rss_bytes() { return rss_of("/proc/self/statm"); }

}  // namespace actors
