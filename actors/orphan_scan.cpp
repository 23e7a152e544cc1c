#include "actors/orphan_scan.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string_view>

#include "runtime/fd.hpp"

namespace actors {

namespace {

std::string read_small_file(const std::string& path) {
  runtime::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  std::string out;
  if (!fd) return out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    // An environment past 1 MiB is not one we wrote; stop reading rather than grow.
    if (out.size() > (1u << 20)) break;
  }
  return out;
}

// State and process group from /proc/PID/stat; false when gone or a zombie.
bool live_pgid(pid_t pid, pid_t* pgid) {
  const std::string stat = read_small_file("/proc/" + std::to_string(pid) + "/stat");
  const auto rp = stat.rfind(')');
  if (rp == std::string::npos || rp + 2 >= stat.size()) return false;
  // After "comm) ": state ppid pgrp ...
  const char state = stat[rp + 2];
  if (state == 'Z' || state == 'X') return false;
  const char* p = stat.c_str() + rp + 3;
  char* end = nullptr;
  (void)std::strtol(p, &end, 10);                 // ppid
  *pgid = static_cast<pid_t>(std::strtol(end, &end, 10));
  return *pgid > 0;
}

}  // namespace

std::vector<MarkedProcess> find_marked_processes(const std::string& supervisor, pid_t self) {
  std::vector<MarkedProcess> out;
  const std::string want = std::string(kSupervisorEnv) + "=" + supervisor;
  const std::string service_key = std::string(kServiceEnv) + "=";
  DIR* dir = ::opendir("/proc");
  if (!dir) return out;
  while (dirent* ent = ::readdir(dir)) {
    char* end = nullptr;
    const long pid = std::strtol(ent->d_name, &end, 10);
    if (pid <= 0 || *end != '\0' || pid == self) continue;
    const std::string env = read_small_file("/proc/" + std::to_string(pid) + "/environ");
    bool marked = false;
    std::string service;
    for (std::size_t at = 0; at < env.size();) {
      std::size_t nul = env.find('\0', at);
      if (nul == std::string::npos) nul = env.size();
      const std::string_view kv(env.data() + at, nul - at);
      if (kv == want) marked = true;
      else if (kv.substr(0, service_key.size()) == service_key) service = kv.substr(service_key.size());
      at = nul + 1;
    }
    MarkedProcess m;
    if (!marked || !live_pgid(static_cast<pid_t>(pid), &m.pgid)) continue;
    m.pid = static_cast<pid_t>(pid);
    m.service = std::move(service);
    out.push_back(std::move(m));
  }
  ::closedir(dir);
  return out;
}

}  // namespace actors
