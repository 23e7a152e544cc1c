#include "runtime/cgroup_stats.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>

#include "runtime/fs.hpp"
#include "runtime/ops_wait.hpp"

namespace runtime {

namespace {

std::optional<std::string> read_file_at(int dirfd, const char* name) {
  Fd fd(::openat(dirfd, name, O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  Result<std::string> text = read_from_start(fd.get());
  if (!text) return std::nullopt;
  return std::move(text).value();
}

std::optional<std::uint64_t> to_u64(std::string_view s) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end == s.data()) return std::nullopt;
  return v;
}

// Calls f(key, value) for each "key value" line.
template <typename F>
void for_each_pair(std::string_view text, F&& f) {
  while (!text.empty()) {
    const std::size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    const std::size_t sp = line.find(' ');
    if (sp == std::string_view::npos) continue;
    f(line.substr(0, sp), line.substr(sp + 1));
  }
}

// A single number (memory.current, pids.current): "123\n".
std::optional<std::uint64_t> single_at(int dirfd, const char* name) {
  std::optional<std::string> text = read_file_at(dirfd, name);
  if (!text) return std::nullopt;
  return to_u64(*text);
}

}  // namespace

MemoryEvents parse_memory_events(std::string_view text) {
  MemoryEvents e;
  for_each_pair(text, [&](std::string_view key, std::string_view value) {
    const std::optional<std::uint64_t> v = to_u64(value);
    if (!v) return;
    if (key == "low") e.low = *v;
    else if (key == "high") e.high = *v;
    else if (key == "max") e.max = *v;
    else if (key == "oom") e.oom = *v;
    else if (key == "oom_kill") e.oom_kill = *v;
  });
  return e;
}

std::optional<std::uint64_t> parse_cpu_usage_usec(std::string_view cpu_stat) {
  std::optional<std::uint64_t> usage;
  for_each_pair(cpu_stat, [&](std::string_view key, std::string_view value) {
    if (key == "usage_usec") usage = to_u64(value);
  });
  return usage;
}

std::optional<double> parse_pressure_avg10(std::string_view pressure) {
  // "some avg10=0.00 avg60=0.00 avg300=0.00 total=0"
  std::optional<double> avg;
  for_each_pair(pressure, [&](std::string_view key, std::string_view rest) {
    if (key != "some" || rest.substr(0, 6) != "avg10=") return;
    rest.remove_prefix(6);
    // A copy for strtod: the view is not NUL-terminated where the number ends.
    const std::string num(rest.substr(0, rest.find(' ')));
    char* end = nullptr;
    const double v = std::strtod(num.c_str(), &end);
    if (end != num.c_str()) avg = v;
  });
  return avg;
}

std::optional<OomCounters> read_oom_counters(int cgroup_fd) {
  std::optional<std::string> events = read_file_at(cgroup_fd, "memory.events");
  if (!events) return std::nullopt;
  OomCounters c{parse_memory_events(*events), read_file_at(cgroup_fd, "memory.max").value_or("")};
  while (!c.memory_max.empty() && c.memory_max.back() == '\n') c.memory_max.pop_back();
  return c;
}

Result<CgroupFile> CgroupFile::open(int cgroup_fd, const char* name) {
  Fd fd(::openat(cgroup_fd, name, O_RDONLY | O_CLOEXEC));
  if (!fd) return Result<CgroupFile>::failure(errno);
  return CgroupFile(std::move(fd));
}

Result<std::string> CgroupFile::read() const { return read_from_start(fd_.get()); }

Task<Result<void>> CgroupFile::changed(std::stop_token stop) const {
  // The fd is this object's, and the caller keeps the object alive across the
  // await (the watch below owns it in its frame), so the poll never outlives it.
  Result<int> r = co_await poll(fd_.get(), POLLPRI).stop_on(stop);
  if (!r) co_return Result<void>::failure(r.error());
  // A removed cgroup's files wake their pollers with POLLHUP; polling again would
  // return at once, forever.
  if (*r & POLLHUP) co_return Result<void>::failure(ENODEV);
  co_return Result<void>{};
}

Task<Result<void>> watch_memory_events(CgroupFile file, MemoryEvents last, std::stop_token stop,
                                       std::function<void(const MemoryEvents&, const MemoryEvents&)> on_change) {
  for (;;) {
    // One-shot poll, re-armed after each wake: the kernel coalesces changes (at
    // most one notification per 10 ms per file), so each wake reads the totals
    // and compares them, never counts wakes.
    if (Result<void> woke = co_await file.changed(stop); !woke) co_return woke;
    Result<std::string> text = file.read();
    if (!text) co_return Result<void>::failure(text.error());
    const MemoryEvents now = parse_memory_events(*text);
    if (now != last) on_change(last, now);
    last = now;
  }
}

CgroupUsage read_cgroup_cpu_memory(int cgroup_fd) {
  CgroupUsage u;
  u.memory_current = single_at(cgroup_fd, "memory.current");
  // cpu.stat is in every v2 cgroup, with or without the cpu controller.
  if (std::optional<std::string> t = read_file_at(cgroup_fd, "cpu.stat")) u.cpu_usage_usec = parse_cpu_usage_usec(*t);
  return u;
}

CgroupUsage read_cgroup_usage(int cgroup_fd) {
  CgroupUsage u = read_cgroup_cpu_memory(cgroup_fd);
  u.memory_peak = single_at(cgroup_fd, "memory.peak");  // kernel >= 5.19
  u.pids_current = single_at(cgroup_fd, "pids.current");
  // PSI: only with CONFIG_PSI (and not psi=0).
  if (std::optional<std::string> t = read_file_at(cgroup_fd, "memory.pressure")) u.memory_pressure = parse_pressure_avg10(*t);
  if (std::optional<std::string> t = read_file_at(cgroup_fd, "cpu.pressure")) u.cpu_pressure = parse_pressure_avg10(*t);
  return u;
}

}  // namespace runtime
