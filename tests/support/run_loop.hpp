#pragma once
// Test helper: runs one coroutine to completion on a fresh reactor.
#include "runtime/reactor.hpp"

template <class F>
auto run_loop(F&& make_task, runtime::Reactor::Options opts = {}) {
  runtime::Reactor r(opts);
  return r.run(make_task());
}
