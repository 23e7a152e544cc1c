// runtime/cgroup_stats: memory.events and usage parsing on text (cgroupfs is not
// needed), and the POLLPRI wake of a cgroup file through the ring on a real
// cgroup. The development machines' hybrid cgroup2 has no controllers, so no
// memory.events there: the wake is shown on cgroup.events, which every non-root
// cgroup has and which kernfs notifies the same way; memory.events itself is
// exercised in the aarch64 VM by tests/actors/limits_test.cpp.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "run_loop.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/cgroup_stats.hpp"
#include "runtime/ops_wait.hpp"
#include "test_util.hpp"

using namespace runtime;
using namespace std::chrono_literals;

namespace {

TEST(CgroupStats, ParsesMemoryEventsSkippingUnknownAndMalformedLines) {
  const MemoryEvents e = parse_memory_events(
      "low 1\nhigh 22\nmax 333\noom 4\noom_kill 5\noom_group_kill 9\nbogus\nmax_extra x\n");
  EXPECT_EQ(e.low, 1u);
  EXPECT_EQ(e.high, 22u);
  EXPECT_EQ(e.max, 333u);
  EXPECT_EQ(e.oom, 4u);
  EXPECT_EQ(e.oom_kill, 5u);
  EXPECT_EQ(parse_memory_events(""), MemoryEvents{});
  EXPECT_EQ(parse_memory_events("oom_kill notanumber\n").oom_kill, 0u);
  // No trailing newline: the last line still counts.
  EXPECT_EQ(parse_memory_events("oom_kill 7").oom_kill, 7u);
}

TEST(CgroupStats, ParsesCpuStatAndPressure) {
  EXPECT_EQ(parse_cpu_usage_usec("usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n"), 123456u);
  EXPECT_FALSE(parse_cpu_usage_usec("user_usec 1\n").has_value());
  const std::optional<double> p = parse_pressure_avg10(
      "some avg10=1.25 avg60=0.50 avg300=0.00 total=12345\nfull avg10=9.00 avg60=0.00 avg300=0.00 total=1\n");
  ASSERT_TRUE(p.has_value());
  EXPECT_DOUBLE_EQ(*p, 1.25);
  EXPECT_FALSE(parse_pressure_avg10("full avg10=1.00 avg60=0 avg300=0 total=0\n").has_value());
}

// Absent files are left out, present ones read through the directory fd.
TEST(CgroupStats, UsageReadsWhatExistsAndOmitsTheRest) {
  testutil::TempDir dir;
  std::ofstream(dir.path() + "/memory.current") << "4096\n";
  std::ofstream(dir.path() + "/cpu.stat") << "usage_usec 77\nuser_usec 70\nsystem_usec 7\n";
  std::ofstream(dir.path() + "/cpu.pressure") << "some avg10=0.10 avg60=0.00 avg300=0.00 total=5\n";
  Fd fd(::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  const CgroupUsage u = read_cgroup_usage(fd.get());
  EXPECT_EQ(u.memory_current, 4096u);
  EXPECT_EQ(u.cpu_usage_usec, 77u);
  ASSERT_TRUE(u.cpu_pressure.has_value());
  EXPECT_DOUBLE_EQ(*u.cpu_pressure, 0.10);
  EXPECT_FALSE(u.memory_peak.has_value());
  EXPECT_FALSE(u.pids_current.has_value());
  EXPECT_FALSE(u.memory_pressure.has_value());
  EXPECT_FALSE(read_oom_counters(fd.get()).has_value()) << "no memory.events: no memory controller";
  std::ofstream(dir.path() + "/memory.events") << "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n";
  std::ofstream(dir.path() + "/memory.max") << "104857600\n";
  const std::optional<OomCounters> c = read_oom_counters(fd.get());
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->events.oom_kill, 1u);
  EXPECT_EQ(c->memory_max, "104857600");
}

// A scratch cgroup under this process's own (root on the hybrid layout); null
// when no writable cgroup2 is mounted.
struct Scratch {
  std::string fs;
  Fd dir;
  ~Scratch() {
    dir.reset();
    if (!fs.empty()) ::rmdir(fs.c_str());
  }
};

bool make_scratch(Scratch& s) {
  Result<Cgroup2Mount> m = find_cgroup2_mount();
  Result<std::string> own = cgroup_of(0);
  if (!m || !own || m->fs_path(*own).empty()) return false;
  const std::string fs = m->fs_path(*own) + "/cgstats-test." + std::to_string(::getpid());
  if (::mkdir(fs.c_str(), 0755) != 0) return false;
  s.fs = fs;
  s.dir.reset(::open(fs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return static_cast<bool>(s.dir);
}

// The wake through the ring: the poll is armed first (the coroutine suspends),
// then another thread moves a child into the cgroup; kernfs flags cgroup.events
// and the one-shot poll completes. A stop ends a pending wait with ECANCELED.
TEST(CgroupStats, ChangedWakesThroughTheRingOnAChangeAndStopsOnTheToken) {
  Scratch s;
  if (!make_scratch(s)) GTEST_SKIP() << "no writable cgroup2 mounted (needs root and a cgroup2 hierarchy)";
  Result<CgroupFile> file = CgroupFile::open(s.dir.get(), "cgroup.events");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(read_cgroup_usage(s.dir.get()).cpu_usage_usec.has_value(), true) << "cpu.stat is in every v2 cgroup";

  const pid_t child = ::fork();
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  ASSERT_GT(child, 0);
  std::thread mover([&] {
    std::this_thread::sleep_for(150ms);
    std::ofstream(s.fs + "/cgroup.procs") << child << std::flush;
  });
  std::string after;
  const bool woke = run_loop([&]() -> Task<bool> {
    Result<std::string> before = file->read();
    if (!before || before->find("populated 0") == std::string::npos) co_return false;
    // A safety deadline only: the test fails rather than hangs if no wake comes.
    Result<int> r = co_await poll(file->fd(), POLLPRI).deadline(5s);
    if (!r) co_return false;
    Result<std::string> now = file->read();
    after = now.value_or("");
    // Nothing changed since the read: a pending changed() waits until the stop.
    std::stop_source stop;
    stop.request_stop();
    Result<void> stopped = co_await file->changed(stop.get_token());
    co_return !stopped && stopped.error() == ECANCELED;
  });
  mover.join();
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_TRUE(woke);
  EXPECT_NE(after.find("populated 1"), std::string::npos) << after;

  // Once the cgroup is gone its file can no longer be read: a watch ends there
  // (ENODEV) instead of polling a dead file.
  for (int i = 0; i < 500 && ::rmdir(s.fs.c_str()) != 0; ++i) std::this_thread::sleep_for(10ms);
  Result<std::string> gone = file->read();
  EXPECT_FALSE(gone.ok());
  s.fs.clear();
}

// The real thing, where the memory controller can be enabled (the aarch64 VM's
// own cgroup2; skipped on the development machines): a child over memory.max is
// OOM-killed and watch_memory_events, woken through the ring, sees oom_kill grow.
TEST(CgroupStats, WatchSeesAnOomKillThroughTheRing) {
  Result<Cgroup2Mount> m = find_cgroup2_mount();
  Result<std::string> own = cgroup_of(0);
  if (!m || !own || *own != "/") GTEST_SKIP() << "needs to run in the cgroup2 root (the VM's init)";
  if (!(std::ofstream(m->mount_point + "/cgroup.subtree_control") << "+memory" << std::flush))
    GTEST_SKIP() << "the memory controller cannot be enabled under " << m->mount_point;
  Scratch s;
  if (!make_scratch(s)) GTEST_SKIP() << "no writable cgroup2";
  Result<CgroupFile> file = CgroupFile::open(s.dir.get(), "memory.events");
  if (!file) GTEST_SKIP() << "no memory.events in " << s.fs;
  ASSERT_TRUE(std::ofstream(s.fs + "/memory.max") << "16777216" << std::flush);
  std::ofstream(s.fs + "/memory.swap.max") << "0" << std::flush;  // absent without swap
  const MemoryEvents base = parse_memory_events(file->read().value_or(""));

  int go[2];
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  const std::string procs = s.fs + "/cgroup.procs";
  const pid_t child = ::fork();
  if (child == 0) {
    // Join, wait for the watch to be armed, then touch 64 MiB under a 16 MiB limit.
    const int fd = ::open(procs.c_str(), O_WRONLY);
    if (fd < 0 || ::write(fd, "0", 1) != 1) ::_exit(2);
    char c;
    if (::read(go[0], &c, 1) != 1) ::_exit(3);
    const std::size_t size = 64u << 20;
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) ::_exit(4);
    std::memset(p, 1, size);
    ::_exit(0);
  }
  ASSERT_GT(child, 0);
  ::close(go[0]);
  ::alarm(60);  // a watch that never wakes fails the test instead of hanging it
  std::thread release([&] {
    std::this_thread::sleep_for(100ms);
    (void)!::write(go[1], "x", 1);
  });
  MemoryEvents seen;
  int wakes = 0;
  const Result<void> ended = run_loop([&]() -> Task<Result<void>> {
    std::stop_source stop;
    co_return co_await watch_memory_events(std::move(file).value(), base, stop.get_token(),
                                           [&](const MemoryEvents&, const MemoryEvents& now) {
                                             ++wakes;
                                             seen = now;
                                             if (now.oom_kill > base.oom_kill) stop.request_stop();
                                           });
  });
  ::alarm(0);
  release.join();
  ::close(go[1]);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
  EXPECT_EQ(ended.error(), ECANCELED);
  EXPECT_GE(wakes, 1);
  EXPECT_EQ(seen.oom_kill, base.oom_kill + 1);
  EXPECT_GE(seen.oom, 1u);
  EXPECT_GE(seen.max, 1u);
}

}  // namespace
