#pragma once
// Helpers the process, start and spawn-slot tests share: a child's output read through
// the ring, a /bin/sh -c spawn, and a count of our zombies.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <string>

#include "runtime/ops_rw.hpp"
#include "runtime/process.hpp"
#include "runtime/task.hpp"

namespace testutil {

// Reads a (non-blocking) pipe through the ring until EOF.
inline runtime::Task<std::string> read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    runtime::Result<int> n = co_await runtime::read(fd, std::as_writable_bytes(std::span(buf)));
    if (!n.ok()) {
      if (n.error() == EAGAIN) continue;
      ADD_FAILURE() << "read: " << n.message();
      co_return out;
    }
    if (n.value() == 0) co_return out;
    out.append(buf, static_cast<std::size_t>(n.value()));
  }
}

inline runtime::SpawnOptions sh(const std::string& script) {
  runtime::SpawnOptions o;
  o.argv = {"/bin/sh", "-c", script};
  o.env = {{"PATH", "/usr/bin:/bin"}};
  return o;
}

// Our zombie children: /proc/*/stat with state Z and ppid == us.
inline int zombie_children() {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::ifstream f(e.path() / "stat");
    std::string stat;
    if (!std::getline(f, stat)) continue;
    auto cp = stat.rfind(')');
    if (cp == std::string::npos) continue;
    std::istringstream rest(stat.substr(cp + 2));
    char state;
    pid_t ppid;
    if (rest >> state >> ppid && state == 'Z' && ppid == ::getpid()) ++n;
  }
  return n;
}

}  // namespace testutil
