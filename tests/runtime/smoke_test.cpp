#include <gtest/gtest.h>

#include "run_loop.hpp"
#include "runtime/ops_wait.hpp"
#include "runtime/process.hpp"

using namespace runtime;
using namespace std::chrono_literals;

TEST(Smoke, SleepAndSpawn) {
  int code = run_loop([]() -> Task<int> {
    Result<int> r = co_await sleep_for(1ms);
    EXPECT_TRUE(r.ok());
    SpawnOptions o;
    o.argv = {"/bin/sh", "-c", "exit 3"};
    auto p = Process::spawn(o);
    EXPECT_TRUE(p.ok());
    auto st = co_await p->wait();
    co_return st.ok() ? st->code : -1;
  });
  EXPECT_EQ(code, 3);
}
