// Process: real children spawned with a pidfd, waited for through the ring on
// both paths (IORING_OP_WAITID and pidfd poll + waitid), with exec failures,
// stdio, extra fds, rlimits, process groups, no zombies and no leaked fds.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "run_loop.hpp"
#include "runtime/ops_rw.hpp"
#include "runtime/ops_wait.hpp"
#include "runtime/process.hpp"
#include "spawn_util.hpp"
#include "test_util.hpp"

using namespace runtime;
using namespace std::chrono_literals;

namespace {

using testutil::read_all;
using testutil::sh;
using testutil::zombie_children;

// The 256 MiB splice test re-executes this binary as the child: before main(),
// it writes a deterministic pattern to stdout and exits.
constexpr std::size_t kPatternBytes = 256u << 20;
void fill_block(std::size_t block, char* out, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) out[j] = static_cast<char>((block * 131 + j * 7 + (j >> 8)) & 0xff);
}
[[maybe_unused]] const bool pattern_child = [] {
  if (!std::getenv("DOCKLESS_TEST_PATTERN_CHILD")) return false;
  static char buf[65536];
  for (std::size_t b = 0; b < kPatternBytes / sizeof buf; ++b) {
    fill_block(b, buf, sizeof buf);
    for (std::size_t off = 0; off < sizeof buf;) {
      ssize_t n = ::write(1, buf + off, sizeof buf - off);
      if (n <= 0) _exit(2);
      off += static_cast<std::size_t>(n);
    }
  }
  _exit(0);
}();

// Runs `argv` to completion; stdout captured.
struct Outcome {
  Result<ExitStatus> status = Result<ExitStatus>::failure(EINVAL);
  std::string out;
};
Task<Outcome> run_capture(const SpawnOptions& o) {
  Outcome res;
  std::string detail;
  Result<Process> p = Process::spawn(o, &detail);
  if (!p.ok()) {
    ADD_FAILURE() << "spawn: " << detail;
    co_return res;
  }
  res.out = co_await read_all(p->stdout_pipe().get());
  res.status = co_await p->wait();
  co_return res;
}

bool alive(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(f, stat)) return false;
  auto close_paren = stat.rfind(')');
  return close_paren != std::string::npos && stat.size() > close_paren + 2 && stat[close_paren + 2] != 'Z';
}


}  // namespace

// Every test runs on both wait paths: IORING_OP_WAITID (where the kernel has it)
// and the pidfd poll + waitid(P_PIDFD) fallback that kernels before 6.7 take.
class ProcessTest : public ::testing::TestWithParam<bool> {
 protected:
  template <class F>
  void run(F&& f) {
    Reactor::Options o;
    o.allow_waitid_op = GetParam();
    Reactor r(o);
    const bool has = r.features().waitid_op;
    if (!GetParam()) {
      EXPECT_FALSE(has);
    } else if (!has) {
      std::printf("(IORING_OP_WAITID unavailable here: the pidfd path was used)\n");
    }
    r.run(f());
  }
};
INSTANTIATE_TEST_SUITE_P(WaitPath, ProcessTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "waitid_op" : "pidfd_poll"; });

TEST_P(ProcessTest, ExitCodesAndSignals) {
  run([]() -> Task<void> {
    Outcome ok = co_await run_capture(sh("exit 0"));
    CO_ASSERT_TRUE(ok.status.ok());
    EXPECT_TRUE(ok.status->success());
    Outcome three = co_await run_capture(sh("exit 3"));
    CO_ASSERT_TRUE(three.status.ok());
    EXPECT_FALSE(three.status->signaled);
    EXPECT_EQ(three.status->code, 3);
    EXPECT_EQ(three.status->describe(), "exited with 3");
    Outcome killed = co_await run_capture(sh("kill -KILL $$"));
    CO_ASSERT_TRUE(killed.status.ok());
    EXPECT_TRUE(killed.status->signaled);
    EXPECT_EQ(killed.status->code, SIGKILL);
    EXPECT_EQ(killed.status->describe(), "killed by SIGKILL");
    // Signalled by us through the pidfd while we wait.
    Result<Process> p = Process::spawn(sh("exec sleep 100"));
    CO_ASSERT_TRUE(p.ok());
    spawn([](const Process& p) -> Task<void> {
      co_await sleep_for(5ms);
      EXPECT_TRUE(p.signal(SIGTERM).ok());
    }(p.value()));
    Result<ExitStatus> st = co_await p->wait();
    CO_ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_TRUE(st->signaled);
    EXPECT_EQ(st->code, SIGTERM);
    EXPECT_TRUE(p->reaped());
    EXPECT_EQ(p->signal(SIGTERM).error(), ESRCH);  // reaped: the pidfd names nobody
  });
}

TEST_P(ProcessTest, WaitCancelledByStopToken) {
  run([]() -> Task<void> {
    Result<Process> p = Process::spawn(sh("exec sleep 100"));
    CO_ASSERT_TRUE(p.ok());
    std::stop_source src;
    spawn([](std::stop_source s) -> Task<void> {
      co_await sleep_for(3ms);
      s.request_stop();
    }(src));
    Result<ExitStatus> st = co_await p->wait(src.get_token());
    EXPECT_EQ(st.error(), ECANCELED);
    EXPECT_TRUE(p->signal(SIGKILL).ok());
    Result<ExitStatus> done = co_await p->wait();
    CO_ASSERT_TRUE(done.ok());
    EXPECT_EQ(done->code, SIGKILL);
  });
}

TEST_P(ProcessTest, ExecAndChdirFailuresAreDetailed) {
  run([]() -> Task<void> {
    std::string detail;
    SpawnOptions o;
    o.argv = {"/nonexistent"};
    Result<Process> p = Process::spawn(o, &detail);
    EXPECT_EQ(p.error(), ENOENT);
    EXPECT_EQ(detail, "exec /nonexistent: No such file or directory");
    SpawnOptions c = sh("exit 0");
    c.working_dir = "/nonexistent-dir";
    Result<Process> q = Process::spawn(c, &detail);
    EXPECT_EQ(q.error(), ENOENT);
    EXPECT_EQ(detail, "chdir /nonexistent-dir: No such file or directory");
    SpawnOptions n;
    n.argv = {"no-such-program-here"};
    n.env = {{"PATH", "/usr/bin:/bin"}};
    Result<Process> r = Process::spawn(n, &detail);
    EXPECT_EQ(r.error(), ENOENT);
    EXPECT_EQ(detail, "exec no-such-program-here: No such file or directory");
    EXPECT_EQ(zombie_children(), 0);
    co_return;
  });
}

TEST_P(ProcessTest, PathEnvAndWorkingDir) {
  testutil::TempDir dir;
  run([&]() -> Task<void> {
    SpawnOptions o;
    o.argv = {"env"};  // found through PATH
    o.env = {{"PATH", "/usr/bin:/bin"}, {"A", "1"}, {"B", "two words"}};
    Outcome e = co_await run_capture(o);
    // execve gets the map in name order.
    EXPECT_EQ(e.out, "A=1\nB=two words\nPATH=/usr/bin:/bin\n");
    SpawnOptions w;
    w.argv = {"/bin/pwd"};
    w.working_dir = dir.path();
    Outcome pwd = co_await run_capture(w);
    EXPECT_EQ(pwd.out, std::filesystem::canonical(dir.path()).string() + "\n");
  });
}

TEST_P(ProcessTest, StdinNullAndPipe) {
  run([]() -> Task<void> {
    SpawnOptions o = sh("cat; echo end");
    Outcome null_in = co_await run_capture(o);
    EXPECT_EQ(null_in.out, "end\n");
    o.stdin_mode = SpawnOptions::Stdio::pipe;
    Result<Process> p = Process::spawn(o);
    CO_ASSERT_TRUE(p.ok());
    EXPECT_EQ((co_await write(p->stdin_pipe().get(), testutil::bytes("fed\n"))).value_or(-1), 4);
    p->stdin_pipe().reset();  // EOF for cat
    EXPECT_EQ(co_await read_all(p->stdout_pipe().get()), "fed\nend\n");
    EXPECT_TRUE((co_await p->wait()).ok());
  });
}

TEST_P(ProcessTest, ExtraFdsAndEverythingElseClosed) {
  run([]() -> Task<void> {
    testutil::Pipe extra;
    // An inheritable fd in the daemon (no CLOEXEC) must still not reach the child.
    Fd stray(::dup(extra.r.get()));
    // ls must not be the script's last command: a shell that execs its last command
    // (busybox ash, on the ARM test image) would list ls's own directory fd too.
    SpawnOptions o = sh("echo via3 >&3; ls /proc/$$/fd; exit 0");
    o.extra_fds = {{extra.w.get(), 3}};
    Outcome res = co_await run_capture(o);
    extra.w.reset();
    std::string via3 = co_await read_all(extra.r.get());
    EXPECT_EQ(via3, "via3\n");
    std::set<std::string> fds;
    std::istringstream in(res.out);
    for (std::string line; std::getline(in, line);) fds.insert(line);
    EXPECT_EQ(fds, (std::set<std::string>{"0", "1", "2", "3"})) << res.out;
  });
}

TEST_P(ProcessTest, RlimitsApplied) {
  run([]() -> Task<void> {
    SpawnOptions o = sh("ulimit -n");
    o.rlimits = {{RLIMIT_NOFILE, rlimit{77, 77}}};
    Outcome res = co_await run_capture(o);
    EXPECT_EQ(res.out, "77\n");
  });
}

// The child leads its own process group; SIGKILL to the group takes the shell and
// the sleeps it backgrounded.
TEST_P(ProcessTest, SignalGroupKillsWholeTree) {
  run([]() -> Task<void> {
    Result<Process> p = Process::spawn(sh("sleep 100 & echo $!; sleep 100 & echo $!; wait"));
    CO_ASSERT_TRUE(p.ok());
    std::string pids;
    char buf[64];
    while (std::count(pids.begin(), pids.end(), '\n') < 2) {
      Result<int> n = co_await read(p->stdout_pipe().get(), std::as_writable_bytes(std::span(buf)));
      CO_ASSERT_TRUE(n.ok() && n.value() > 0) << n.message();
      pids.append(buf, static_cast<std::size_t>(n.value()));
    }
    std::istringstream in(pids);
    pid_t a = 0, b = 0;
    in >> a >> b;
    EXPECT_TRUE(alive(a) && alive(b));
    EXPECT_EQ(::getpgid(a), p->pid());
    EXPECT_TRUE(p->signal_group(SIGKILL).ok());
    Result<ExitStatus> st = co_await p->wait();
    CO_ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->code, SIGKILL);
    for (int i = 0; i < 200 && (alive(a) || alive(b)); ++i) co_await sleep_for(5ms);
    EXPECT_FALSE(alive(a)) << a;
    EXPECT_FALSE(alive(b)) << b;
  });
}

TEST_P(ProcessTest, ThousandChildrenNoZombieNoFdLeak) {
  const int fds_before = testutil::count_fds();
  run([]() -> Task<void> {
    // 20 at a time, so reaping overlaps spawning.
    for (int batch = 0; batch < 50; ++batch) {
      std::vector<Process> kids;
      for (int i = 0; i < 20; ++i) {
        SpawnOptions o;
        o.argv = {"/bin/true"};
        Result<Process> p = Process::spawn(o);
        CO_ASSERT_TRUE(p.ok()) << p.message();
        kids.push_back(std::move(p.value()));
      }
      for (auto& k : kids) {
        Result<ExitStatus> st = co_await k.wait();
        CO_ASSERT_TRUE(st.ok() && st->success()) << st.message();
      }
    }
  });
  EXPECT_EQ(zombie_children(), 0);
  EXPECT_EQ(testutil::count_fds(), fds_before);
}

// A grandchild is not ours: attach() sees its exit through the pidfd, but the
// status belongs to its real parent, so wait() reports ECHILD.
TEST_P(ProcessTest, AttachToNonChildSeesExit) {
  run([]() -> Task<void> {
    Outcome parent = co_await run_capture(sh("sleep 0.3 >/dev/null & echo $!"));
    CO_ASSERT_TRUE(parent.status.ok());
    const pid_t grandchild = static_cast<pid_t>(std::stol(parent.out));
    Result<Process> a = Process::attach(grandchild);
    CO_ASSERT_TRUE(a.ok()) << a.message();
    EXPECT_FALSE(a->is_child());
    const auto start = std::chrono::steady_clock::now();
    Result<ExitStatus> st = co_await a->wait();
    EXPECT_EQ(st.error(), ECHILD) << st.message();
    EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms);  // it did wait for the exit
    EXPECT_FALSE(alive(grandchild));
  });
}

// 256 MiB from a child's stdout into a file with splice, the way LogActor moves
// logs: SPLICE_F_NONBLOCK so an empty pipe answers EAGAIN instead of parking a
// kernel worker, then poll(POLLIN) through the ring, until EOF. Byte-exact.
TEST_P(ProcessTest, Splice256MiBFromChildIsByteExact) {
  testutil::TempDir dir;
  const std::string path = dir / "out";
  run([&]() -> Task<void> {
    SpawnOptions o;
    o.argv = {"/proc/self/exe"};
    o.env = {{"DOCKLESS_TEST_PATTERN_CHILD", "1"}};
    o.stderr_mode = SpawnOptions::Stdio::inherit;
    std::string detail;
    Result<Process> p = Process::spawn(o, &detail);
    CO_ASSERT_TRUE(p.ok()) << detail;
    Fd file(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    const int in = p->stdout_pipe().get();
    std::size_t total = 0;
    int polls = 0;
    for (;;) {
      Result<int> n = co_await splice(in, -1, file.get(), -1, 1u << 20, SPLICE_F_NONBLOCK);
      if (n.ok() && n.value() == 0) break;  // EOF: the child closed stdout
      if (n.ok()) {
        total += static_cast<std::size_t>(n.value());
        continue;
      }
      CO_ASSERT_EQ(n.error(), EAGAIN) << n.message();
      ++polls;
      Result<int> ready = co_await poll(in, POLLIN);
      CO_ASSERT_TRUE(ready.ok()) << ready.message();
    }
    Result<ExitStatus> st = co_await p->wait();
    CO_ASSERT_TRUE(st.ok() && st->success()) << (st.ok() ? st->describe() : st.message());
    EXPECT_EQ(total, kPatternBytes);
    std::printf("spliced %zu bytes with %d polls\n", total, polls);
  });
  Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  static char want[65536], got[65536];
  std::size_t block = 0;
  for (;; ++block) {
    std::size_t have = 0;
    while (have < sizeof got) {
      ssize_t n = ::read(f.get(), got + have, sizeof got - have);
      ASSERT_GE(n, 0);
      if (n == 0) break;
      have += static_cast<std::size_t>(n);
    }
    if (have == 0) break;
    ASSERT_EQ(have, sizeof got) << "short block " << block;
    fill_block(block, want, sizeof want);
    ASSERT_EQ(std::memcmp(want, got, sizeof got), 0) << "mismatch in block " << block;
  }
  EXPECT_EQ(block * sizeof got, kPatternBytes);
}
