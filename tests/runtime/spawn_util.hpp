#pragma once
// Helpers the process and spawn-slot tests share: a child's output read through the
// ring, and a /bin/sh -c spawn.
#include <gtest/gtest.h>

#include <span>
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

}  // namespace testutil
