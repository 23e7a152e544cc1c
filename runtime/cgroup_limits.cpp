#include "runtime/cgroup_limits.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "runtime/fd.hpp"

namespace runtime {

namespace {

std::string number_or_max(std::uint64_t v) {
  return v == CgroupLimitValues::kMax ? std::string("max") : std::to_string(v);
}

// Why a file can be missing although its controller is enabled: each is a kernel option of
// its own. Empty for files every kernel with the controller has.
std::string_view missing_file_reason(std::string_view file) {
  if (file == "memory.swap.max") return " (swap accounting is off: CONFIG_MEMCG_SWAP, or swapaccount=0 on the kernel command line)";
  if (file == "cpu.max") return " (built without CFS bandwidth control: CONFIG_CFS_BANDWIDTH)";
  if (file == "io.weight") return " (no io.cost controller: CONFIG_BLK_CGROUP_IOCOST)";
  return "";
}

// cgroup.controllers: one line of space-separated names ("cpuset cpu io memory pids").
Result<std::string> read_controllers(int dirfd) {
  Fd fd(::openat(dirfd, "cgroup.controllers", O_RDONLY | O_CLOEXEC));
  if (!fd) return Result<std::string>::failure(errno);
  std::string out;
  std::array<char, 512> buf{};
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Result<std::string>::failure(errno);
    if (n == 0) break;
    out.append(buf.data(), static_cast<std::size_t>(n));
  }
  return out;
}

bool has_word(std::string_view list, std::string_view word) {
  std::size_t i = 0;
  while (i < list.size()) {
    std::size_t end = list.find_first_of(" \n", i);
    if (end == std::string_view::npos) end = list.size();
    if (list.substr(i, end - i) == word) return true;
    i = end + 1;
  }
  return false;
}

// One write of the whole value: cgroupfs parses each write() on its own, so a value split
// over two writes would be two (wrong) values. O_TRUNC is accepted and ignored there, and
// makes a plain file (the tests' stand-in directory) hold exactly the value.
Result<void> write_value(int dirfd, std::string_view file, const std::string& text) {
  Fd fd(::openat(dirfd, std::string(file).c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return Result<void>::failure(errno);
  ssize_t n;
  do n = ::write(fd.get(), text.data(), text.size());
  while (n < 0 && errno == EINTR);
  if (n < 0) return Result<void>::failure(errno);
  if (static_cast<std::size_t>(n) != text.size()) return Result<void>::failure(EIO);
  return {};
}

}  // namespace

bool CgroupLimitValues::any() const {
  return memory_max || memory_high || memory_swap_max || cpu_max || cpu_weight || io_weight || pids_max;
}

std::vector<CgroupLimitFile> limit_files(const CgroupLimitValues& v) {
  auto bytes = [](const std::optional<std::uint64_t>& x) -> std::optional<std::string> {
    if (!x) return std::nullopt;
    return number_or_max(*x);
  };
  std::optional<std::string> cpu_max;
  if (v.cpu_max) cpu_max = number_or_max(v.cpu_max->quota_us) + " " + std::to_string(v.cpu_max->period_us);
  auto weight = [](const std::optional<std::uint32_t>& x) -> std::optional<std::string> {
    if (!x) return std::nullopt;
    return std::to_string(*x);
  };
  std::optional<std::string> io_weight;
  // io.weight holds per-device lines too; "default N" sets the group's own weight only.
  if (v.io_weight) io_weight = "default " + std::to_string(*v.io_weight);
  // memory.high before memory.max: when both come down, the group is throttled towards the
  // new high before the hard limit can OOM-kill it.
  return {
      {"memory_high", "memory.high", "memory", bytes(v.memory_high), "max"},
      {"memory_max", "memory.max", "memory", bytes(v.memory_max), "max"},
      {"memory_swap_max", "memory.swap.max", "memory", bytes(v.memory_swap_max), "max"},
      {"cpu_max", "cpu.max", "cpu", std::move(cpu_max), "max 100000"},
      {"cpu_weight", "cpu.weight", "cpu", weight(v.cpu_weight), "100"},
      {"pids_max", "pids.max", "pids", bytes(v.pids_max), "max"},
      {"io_weight", "io.weight", "io", std::move(io_weight), "default 100"},
  };
}

std::vector<std::string_view> controllers_needed(const CgroupLimitValues& values) {
  std::vector<std::string_view> out;
  for (std::string_view c : {"memory", "cpu", "pids", "io"})
    for (const CgroupLimitFile& f : limit_files(values))
      if (f.text && f.controller == c) {
        out.push_back(c);
        break;
      }
  return out;
}

Result<void> check_controllers(int cgroup_dirfd, const CgroupLimitValues& values, std::string* detail) {
  if (!values.any()) return {};
  Result<std::string> controllers = read_controllers(cgroup_dirfd);
  if (!controllers) {
    if (detail) *detail = "cannot read cgroup.controllers: " + controllers.message();
    return Result<void>::failure(controllers.error());
  }
  for (const CgroupLimitFile& f : limit_files(values)) {
    if (!f.text) continue;
    if (!has_word(*controllers, f.controller)) {
      if (detail)
        *detail = std::string(f.key) + " needs the " + std::string(f.controller) +
                  " controller, which this cgroup does not have: run dockless under systemd with "
                  "Delegate=yes, or enable it in the parent's cgroup.subtree_control";
      return Result<void>::failure(ENOTSUP);
    }
    // The controller alone does not promise the file: see missing_file_reason.
    struct stat st {};
    if (::fstatat(cgroup_dirfd, std::string(f.file).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      const int err = errno;
      if (detail)
        *detail = err == ENOENT ? std::string(f.key) + " needs " + std::string(f.file) +
                                      ", which this kernel does not provide" +
                                      std::string(missing_file_reason(f.file))
                                : std::string(f.key) + ": cannot stat " + std::string(f.file) + ": " +
                                      std::strerror(err);
      return Result<void>::failure(err == ENOENT ? ENOTSUP : err);
    }
  }
  return {};
}

Result<void> apply_limits(int cgroup_dirfd, const CgroupLimitValues& values, std::string* detail,
                          UnsetLimits unset) {
  for (const CgroupLimitFile& f : limit_files(values)) {
    const bool resetting = !f.text;
    if (resetting && unset == UnsetLimits::keep) continue;
    const std::string text = f.text ? *f.text : std::string(f.default_text);
    Result<void> r = write_value(cgroup_dirfd, f.file, text);
    // No file, no controller: nothing of that limit can be in force, so nothing to reset.
    if (!r && resetting && r.error() == ENOENT) continue;
    if (!r) {
      if (detail)
        *detail = std::string(f.key) + ": writing \"" + text + "\" to " + std::string(f.file) + ": " +
                  r.message();
      return r;
    }
  }
  return {};
}

std::uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return 0;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page);
}

}  // namespace runtime
