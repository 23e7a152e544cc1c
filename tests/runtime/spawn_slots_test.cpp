// Spawning through the reserved low fd slots (reserve_spawn_slots): the child
// shares the parent's fd table until it unshares the slots only. Real children:
// what reaches them, what the parent keeps, and that the child's fd table is not a
// copy of the parent's.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <initializer_list>
#include <csignal>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "run_loop.hpp"
#include "runtime/ops_rw.hpp"
#include "runtime/process.hpp"
#include "spawn_util.hpp"
#include "test_util.hpp"

using namespace runtime;

namespace {

using testutil::read_all;
using testutil::sh;

std::set<std::string> lines(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.insert(line);
  return out;
}

// (A helper: GCC 12 rejects a braced set of string literals inside a coroutine.)
std::set<std::string> expected_fds(std::initializer_list<int> fds) {
  std::set<std::string> out;
  for (int fd : fds) out.insert(std::to_string(fd));
  return out;
}

std::string target(int fd) {
  char buf[PATH_MAX];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

std::set<std::string> our_fds() {
  std::set<std::string> out;
  for (int fd = 0; fd < 4096; ++fd)
    if (::fcntl(fd, F_GETFD) >= 0) out.insert(std::to_string(fd) + " " + target(fd));
  return out;
}

// Many fds in the parent, one of them inheritable: none may reach the child.
struct Clutter {
  std::vector<Fd> fds;
  explicit Clutter(int n) {
    for (int i = 0; i < n; ++i) fds.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    fds.emplace_back(::open("/dev/null", O_RDONLY));  // no CLOEXEC
  }
};

}  // namespace

// Once for the whole program, before anything else holds low numbers (as the
// Supervisor does at start-up).
const bool reserved = reserve_spawn_slots();

TEST(SpawnSlots, ReservedOnThisKernel) {
  EXPECT_TRUE(reserved);
  EXPECT_TRUE(reserve_spawn_slots());  // idempotent
}

TEST(SpawnSlots, StdioAndOneExtraFdReachTheChildAndNothingElse) {
  Clutter clutter(500);
  const std::set<std::string> before = our_fds();
  run_loop([]() -> Task<void> {
    testutil::Pipe extra;
    SpawnOptions o = sh("echo via3 >&3; echo err >&2; ls /proc/$$/fd; exit 0");
    o.extra_fds = {{extra.w.get(), 3}};
    Result<Process> p = Process::spawn(o);
    CO_ASSERT_TRUE(p.ok());
    extra.w.reset();
    // EOF on each pipe proves the parent kept no copy of a child's end on a slot.
    const std::string via3 = co_await read_all(extra.r.get());
    const std::string err = co_await read_all(p->stderr_pipe().get());
    EXPECT_EQ(via3, "via3\n");
    EXPECT_EQ(err, "err\n");
    const std::string listing = co_await read_all(p->stdout_pipe().get());
    EXPECT_EQ(lines(listing), expected_fds({0, 1, 2, 3}));
    Result<ExitStatus> st = co_await p->wait();
    CO_ASSERT_TRUE(st.ok());
    EXPECT_TRUE(st->success());
  });
  // The slots are back on /dev/null and nothing of ours moved or closed.
  EXPECT_EQ(our_fds(), before);
}

TEST(SpawnSlots, MoreFdsThanSlotsTakeTheFullCopyPath) {
  run_loop([]() -> Task<void> {
    testutil::Pipe a, b, c;
    SpawnOptions o = sh("echo a >&3; echo b >&5; echo c >&7; ls /proc/$$/fd; exit 0");
    o.extra_fds = {{a.w.get(), 3}, {b.w.get(), 5}, {c.w.get(), 7}};
    Result<Process> p = Process::spawn(o);
    CO_ASSERT_TRUE(p.ok());
    a.w.reset();
    b.w.reset();
    c.w.reset();
    const std::string ra = co_await read_all(a.r.get());
    const std::string rb = co_await read_all(b.r.get());
    const std::string rc = co_await read_all(c.r.get());
    EXPECT_EQ(ra + rb + rc, "a\nb\nc\n");
    const std::string listing = co_await read_all(p->stdout_pipe().get());
    EXPECT_EQ(lines(listing), expected_fds({0, 1, 2, 3, 5, 7}));
    EXPECT_TRUE((co_await p->wait()).ok());
  });
}

TEST(SpawnSlots, InheritedStdioAndExecFailure) {
  run_loop([]() -> Task<void> {
    SpawnOptions o = sh("exit 0");
    o.stdin_mode = o.stdout_mode = o.stderr_mode = SpawnOptions::Stdio::inherit;
    Result<Process> p = Process::spawn(o);
    CO_ASSERT_TRUE(p.ok());
    EXPECT_TRUE((co_await p->wait())->success());
    SpawnOptions bad;
    bad.argv = {"/nonexistent/dockless-test"};
    std::string detail;
    Result<Process> q = Process::spawn(bad, &detail);
    EXPECT_FALSE(q.ok());
    EXPECT_EQ(detail, "exec /nonexistent/dockless-test: No such file or directory");
  });
}

// The point of the slots: the kernel no longer copies every fd of the parent into
// the child. The child's fd table says which path it took: FDSize in its status is
// the table's capacity, which a full copy of 8,000 fds would have made >= 8,192 (a
// table never shrinks, and exec keeps an unshared one), and the slot path keeps small.
TEST(SpawnSlots, TheChildsTableIsNotACopyOfTheParents) {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = std::max(rl.rlim_cur, std::min<rlim_t>(rl.rlim_max, 10000));
  ::setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 9000) GTEST_SKIP() << "RLIMIT_NOFILE " << rl.rlim_cur << " < 9000";
  Clutter clutter(8000);
  SpawnOptions o;
  o.argv = {"/bin/sleep", "30"};
  o.stdout_mode = o.stderr_mode = SpawnOptions::Stdio::null;
  Result<Process> p = Process::spawn(o);
  ASSERT_TRUE(p.ok());
  long fd_size = -1;
  std::ifstream status("/proc/" + std::to_string(p.value().pid()) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("FDSize:", 0) == 0) fd_size = std::stol(line.substr(7));
  (void)p.value().signal(SIGKILL);
  while (!p.value().try_reap()) ::usleep(1000);
  ASSERT_GT(fd_size, 0);
  EXPECT_LT(fd_size, 1024) << "the child got a copy of the parent's whole fd table";
}
