// Process::start: the spawn that does not pause the loop (the child shares our
// memory but is not waited for; its exec or failure comes back through a pipe
// read on the ring). Its errors and fd hygiene are Process::spawn's.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "run_loop.hpp"
#include "runtime/process.hpp"
#include "runtime/scope.hpp"
#include "spawn_util.hpp"
#include "test_util.hpp"

using namespace runtime;

namespace {

using testutil::read_all;
using testutil::sh;
using testutil::zombie_children;


std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

TEST(ProcessStart, FailuresReportedAsSpawnReportsThem) {
  testutil::TempDir dir;
  const std::string plain = dir.path() + "/not-executable";
  std::ofstream(plain) << "#!/bin/sh\n";
  ::chmod(plain.c_str(), 0644);
  run_loop([&]() -> Task<void> {
    std::string detail;
    SpawnOptions o;
    o.argv = {"/nonexistent"};
    Result<Process> p = co_await Process::start(o, &detail);
    EXPECT_EQ(p.error(), ENOENT);
    EXPECT_EQ(detail, "exec /nonexistent: No such file or directory");

    SpawnOptions x;
    x.argv = {plain};
    Result<Process> q = co_await Process::start(x, &detail);
    EXPECT_EQ(q.error(), EACCES);  // root too: execve wants an x bit somewhere
    EXPECT_EQ(detail, "exec " + plain + ": Permission denied");

    SpawnOptions c = sh("exit 0");
    c.working_dir = "/nonexistent-dir";
    Result<Process> r = co_await Process::start(c, &detail);
    EXPECT_EQ(r.error(), ENOENT);
    EXPECT_EQ(detail, "chdir /nonexistent-dir: No such file or directory");

    SpawnOptions n;
    n.argv = {"no-such-program-here"};
    n.env = {{"PATH", "/usr/bin:/bin"}};
    Result<Process> s = co_await Process::start(n, &detail);
    EXPECT_EQ(s.error(), ENOENT);
    EXPECT_EQ(detail, "exec no-such-program-here: No such file or directory");
    EXPECT_EQ(zombie_children(), 0);
  });
}

TEST(ProcessStart, ChildGetsStdioAndExtraFdsOnly) {
  run_loop([&]() -> Task<void> {
    int ready[2];
    CO_ASSERT_TRUE(::pipe2(ready, O_CLOEXEC) == 0);
    // The ring, the report pipe and everything else of ours stays behind.
    SpawnOptions o = sh("echo ready >&3; ls /proc/$$/fd; exit 4");
    o.extra_fds = {{ready[1], 3}};
    std::string detail;
    Result<Process> p = co_await Process::start(o, &detail);
    CO_ASSERT_TRUE(p.ok());
    ::close(ready[1]);
    std::string out = co_await read_all(p->stdout_pipe().get());
    EXPECT_EQ(out, "0\n1\n2\n3\n");
    char buf[16] = {};
    EXPECT_EQ(::read(ready[0], buf, sizeof buf), 6);
    EXPECT_EQ(std::string(buf), "ready\n");
    ::close(ready[0]);
    Result<ExitStatus> st = co_await p->wait();
    CO_ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->code, 4);
  });
}

// Many starts in flight at once, each child on its own stack in our memory.
TEST(ProcessStart, ConcurrentStartsAllExecAndLeaveNothing) {
  const std::size_t fds_before = open_fds();
  run_loop([&]() -> Task<void> {
    constexpr int kChildren = 64;
    int exited_ok = 0;
    Scope scope;
    for (int i = 0; i < kChildren; ++i) {
      scope.spawn([](int i, int& exited_ok) -> Task<void> {
        SpawnOptions o = sh("echo " + std::to_string(i));
        std::string detail;
        Result<Process> p = co_await Process::start(o, &detail);
        if (!p.ok()) {
          ADD_FAILURE() << detail;
          co_return;
        }
        std::string out = co_await read_all(p->stdout_pipe().get());
        EXPECT_EQ(out, std::to_string(i) + "\n");
        Result<ExitStatus> st = co_await p->wait();
        if (st.ok() && st->success()) ++exited_ok;
      }(i, exited_ok), "start");
    }
    co_await scope.join();
    EXPECT_EQ(exited_ok, kChildren);
    EXPECT_EQ(zombie_children(), 0);
  });
  EXPECT_EQ(open_fds(), fds_before);
}

// A stop while the start is in flight: cancelled (the child killed and reaped), or,
// if the child had exec'd before the first look, started. Never a zombie.
TEST(ProcessStart, StopLeavesNoChild) {
  run_loop([&]() -> Task<void> {
    std::stop_source stop;
    stop.request_stop();
    SpawnOptions o = sh("exec sleep 100");
    o.stdout_mode = o.stderr_mode = SpawnOptions::Stdio::null;
    Result<Process> p = co_await Process::start(o, nullptr, stop.get_token());
    if (p.ok()) {
      EXPECT_TRUE(p->signal(SIGKILL).ok());
      (void)co_await p->wait();
    } else {
      EXPECT_EQ(p.error(), ECANCELED);
    }
    EXPECT_EQ(zombie_children(), 0);
  });
}

}  // namespace
