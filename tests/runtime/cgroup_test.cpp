// runtime/cgroup: the daemon's subtree, spawning into a cgroup (Process::spawn and
// Process::start), and the cgroup kill that no setsid or double fork escapes. Real
// cgroupfs: on the hybrid development machines the empty cgroup2 at
// /sys/fs/cgroup/unified; skipped where no writable cgroup2 is mounted. Every test
// puts this process back where it was and removes what it made, deepest first, and
// names its cgroups after its pid so that parallel runs never meet.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iterator>
#include <memory>
#include <fstream>
#include <string>
#include <thread>

#include "run_loop.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/process.hpp"
#include "spawn_util.hpp"
#include "test_util.hpp"

using namespace runtime;
using namespace std::chrono_literals;

namespace {

using testutil::read_all;
using testutil::sh;

// Where this process sits when a test starts (the root of the hierarchy here).
struct Origin {
  Cgroup2Mount mount;
  std::string path;
};

std::optional<Origin> usable_cgroup2() {
  Result<Cgroup2Mount> m = find_cgroup2_mount();
  Result<std::string> own = cgroup_of(0);
  if (!m || !own || m->fs_path(*own).empty()) return std::nullopt;
  // Writable: a scratch child can be made (root on the hybrid layout).
  const std::string probe = m->fs_path(*own) + "/cgtest-probe." + std::to_string(::getpid());
  if (::mkdir(probe.c_str(), 0755) != 0) return std::nullopt;
  ::rmdir(probe.c_str());
  return Origin{*m, *own};
}

void move_self(const std::string& fs_dir) {
  std::ofstream(fs_dir + "/cgroup.procs") << "0" << std::flush;
}

std::string key() { return "cgroup_test/" + std::to_string(::getpid()); }

// The tree for this test, released (and checked gone) at the end.
struct TreeGuard {
  explicit TreeGuard(Origin o) : origin(std::move(o)) {}
  TreeGuard(const TreeGuard&) = delete;
  TreeGuard& operator=(const TreeGuard&) = delete;
  Origin origin;
  std::optional<CgroupTree> tree;
  ~TreeGuard() {
    if (!tree) return;
    // A test that failed half-way may have left members: killed, so release can
    // remove everything.
    for (const auto& e : std::filesystem::directory_iterator(tree->base_fs_path())) {
      if (!e.is_directory() || e.path().filename().string().rfind("svc.", 0) != 0) continue;
      std::ofstream(e.path() / "cgroup.kill") << "1" << std::flush;
      for (int i = 0; i < 6000; ++i) {
        std::ifstream events(e.path() / "cgroup.events");
        std::string text((std::istreambuf_iterator<char>(events)), std::istreambuf_iterator<char>());
        if (text.find("populated 0") != std::string::npos) break;
        std::this_thread::sleep_for(10ms);
      }
    }
    tree->release();
    EXPECT_EQ(cgroup_of(0).value_or("?"), origin.path);
  }
};

// The daemon's subtree, set up under a writable cgroup2 (skipped without one) and
// released, checked, after the test.
class CgroupTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::optional<Origin> origin = usable_cgroup2();
    if (!origin) GTEST_SKIP() << "no writable cgroup2 mounted";
    guard_ = std::make_unique<TreeGuard>(*origin);
    std::string reason;
    Result<CgroupTree> t = CgroupTree::setup(key(), &reason);
    ASSERT_TRUE(t.ok()) << reason;
    guard_->tree.emplace(std::move(t).value());
  }
  std::unique_ptr<TreeGuard> guard_;
};

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

TEST(Cgroup, FindsTheCgroup2MountInMountinfo) {
  testutil::TempDir dir;
  const std::string v1only = dir.path() + "/v1";
  std::ofstream(v1only) << "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n";
  EXPECT_EQ(find_cgroup2_mount(v1only).error(), ENOENT);
  const std::string hybrid = dir.path() + "/hybrid";
  std::ofstream(hybrid) << "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
                        << "40 30 0:37 /sub /mnt/cg\\040two rw,relatime shared:9 - cgroup2 cgroup2 rw\n";
  Result<Cgroup2Mount> m = find_cgroup2_mount(hybrid);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->mount_point, "/mnt/cg two");
  EXPECT_EQ(m->root, "/sub");
  EXPECT_EQ(m->fs_path("/sub/a/b"), "/mnt/cg two/a/b");
  EXPECT_EQ(m->fs_path("/sub"), "/mnt/cg two");
  EXPECT_EQ(m->fs_path("/subway"), "");  // outside what the mount shows
  EXPECT_EQ(m->fs_path("/other"), "");
}

TEST(Cgroup, BaseNameIsStablePerKeyAndDistinctBetweenKeys) {
  EXPECT_EQ(CgroupTree::base_name("/var/lib/dockless"), CgroupTree::base_name("/var/lib/dockless"));
  EXPECT_NE(CgroupTree::base_name("/var/lib/dockless"), CgroupTree::base_name("/tmp/d1"));
  EXPECT_EQ(CgroupTree::base_name("/x").size(), std::string("dockless.").size() + 12);
}

// Run by hand (here: the root cgroup, shared with everything): a child BASE named
// after the key; the daemon in BASE/supervisor; a second set-up from there (the
// upgrade's exec) finds the same BASE; release puts the daemon back and removes it all.
TEST(Cgroup, SubtreeUnderASharedCgroupAndAgainAfterAnExec) {
  std::optional<Origin> origin = usable_cgroup2();
  if (!origin) GTEST_SKIP() << "no writable cgroup2 mounted";
  TreeGuard g{*origin};
  std::string reason;
  Result<CgroupTree> t = CgroupTree::setup(key(), &reason);
  ASSERT_TRUE(t.ok()) << reason;
  const std::string base = (origin->path == "/" ? "" : origin->path) + "/" + CgroupTree::base_name(key());
  EXPECT_EQ(t->base_path(), base);
  EXPECT_TRUE(t->created_base());
  EXPECT_EQ(t->base_fs_path(), origin->mount.fs_path(base));
  EXPECT_EQ(cgroup_of(0).value_or("?"), base + "/supervisor");

  Result<CgroupTree> again = CgroupTree::setup(key(), &reason);
  ASSERT_TRUE(again.ok()) << reason;
  EXPECT_EQ(again->base_path(), base);
  EXPECT_TRUE(again->created_base());
  EXPECT_EQ(cgroup_of(0).value_or("?"), base + "/supervisor");
  {
    Result<Cgroup> svc = again->service("web");
    ASSERT_TRUE(svc.ok());
    EXPECT_EQ(svc->path(), base + "/svc.web");
  }
  g.tree.emplace(std::move(again).value());
  g.tree->release();
  g.tree.reset();
  EXPECT_FALSE(exists(t->base_fs_path())) << "release removes the empty subtree";
}

// The unit's cgroup with Delegate=yes: the daemon alone in a cgroup of its own,
// which then is BASE itself.
TEST(Cgroup, DelegatedCgroupIsTheBase) {
  std::optional<Origin> origin = usable_cgroup2();
  if (!origin) GTEST_SKIP() << "no writable cgroup2 mounted";
  const std::string name = "cgtest-unit." + std::to_string(::getpid());
  const std::string unit = (origin->path == "/" ? "" : origin->path) + "/" + name;
  const std::string unit_fs = origin->mount.fs_path(unit);
  ASSERT_EQ(::mkdir(unit_fs.c_str(), 0755), 0);
  move_self(unit_fs);
  ASSERT_EQ(cgroup_of(0).value_or("?"), unit);
  {
    std::string reason;
    Result<CgroupTree> t = CgroupTree::setup(key(), &reason);
    ASSERT_TRUE(t.ok()) << reason;
    EXPECT_EQ(t->base_path(), unit);
    EXPECT_FALSE(t->created_base());
    EXPECT_EQ(cgroup_of(0).value_or("?"), unit + "/supervisor");
    t->release();  // not ours to remove: stays
    EXPECT_EQ(cgroup_of(0).value_or("?"), unit + "/supervisor");
  }
  move_self(origin->mount.fs_path(origin->path));
  EXPECT_EQ(::rmdir((unit_fs + "/supervisor").c_str()), 0);
  EXPECT_EQ(::rmdir(unit_fs.c_str()), 0);
}

// The child is in the cgroup when it execs: it reads its own /proc/self/cgroup.
TEST_F(CgroupTreeTest, SpawnAndStartPutTheChildInTheCgroup) {
  TreeGuard& g = *guard_;
  Result<Cgroup> svc = g.tree->service("placed");
  ASSERT_TRUE(svc.ok());
  run_loop([&]() -> Task<void> {
    for (const bool start : {false, true}) {
      SpawnOptions o = sh("cat /proc/self/cgroup");
      o.cgroup_fd = svc->fd();
      std::string detail;
      // No co_await inside ?: (GCC 12 mishandles the temporaries there).
      Result<Process> p = Result<Process>::failure(EINVAL);
      if (start) p = co_await Process::start(o, &detail);
      else p = Process::spawn(o, &detail);
      EXPECT_TRUE(p.ok()) << detail;
      if (!p) co_return;
      const std::string out = co_await read_all(p->stdout_pipe().get());
      EXPECT_NE(out.find("0::" + svc->path() + "\n"), std::string::npos) << (start ? "start: " : "spawn: ") << out;
      Result<ExitStatus> st = co_await p->wait();
      EXPECT_TRUE(st.ok() && st->success());
    }
  });
  // The daemon's own cgroup is untouched by the children's moves (CLONE_VM shares
  // memory, not the thread group).
  EXPECT_EQ(cgroup_of(0).value_or("?"), g.tree->base_path() + "/supervisor");
  Result<void> removed = svc->remove();
  EXPECT_TRUE(removed.ok()) << removed.message();
}

// A service that leaves a setsid'ed, double-forked grandchild behind: the
// process-group kill misses it, cgroup.kill does not; the empty cgroup then goes.
// The group kill misses a grandchild that setsid'ed and double-forked; `kill` (one of the
// two ways) takes it, and a member forking in a loop, and the cgroup empties.
void kill_escapees(TreeGuard& g, Result<void> (Cgroup::*kill)() const) {
  Result<Cgroup> svc = g.tree->service("escapee");
  ASSERT_TRUE(svc.ok());
  run_loop([&]() -> Task<void> {
    SpawnOptions o = sh("(setsid sh -c 'sleep 1000 &' &) ; (setsid sh -c 'while :; do sleep 1000 & sleep 0.01; done' &) ;"
                        " exec sleep 1000");
    o.cgroup_fd = svc->fd();
    o.stdout_mode = o.stderr_mode = SpawnOptions::Stdio::null;
    std::string detail;
    Result<Process> p = co_await Process::start(o, &detail);
    EXPECT_TRUE(p.ok()) << detail;
    if (!p) co_return;
    // The grandchild: a `sleep 1000` in a session other than the service's.
    auto long_sleep = [](pid_t pid) {
      std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline");
      std::string argv((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      return argv == std::string("sleep\0" "1000\0", 11);
    };
    pid_t grandchild = 0;
    for (int i = 0; i < 6000 && grandchild == 0; ++i) {
      const std::vector<pid_t> members = svc->members().value_or({});
      for (pid_t m : members)
        if (m != p->pid() && ::getsid(m) != p->pid() && long_sleep(m)) grandchild = m;
      if (grandchild == 0) std::this_thread::sleep_for(10ms);
    }
    EXPECT_NE(grandchild, 0);
    if (grandchild == 0) co_return;
    EXPECT_NE(::getsid(grandchild), p->pid());
    (void)p->signal_group(SIGKILL);
    Result<ExitStatus> st = co_await p->wait();
    EXPECT_TRUE(st.ok() && st->signaled);
    EXPECT_EQ(::kill(grandchild, 0), 0) << "the group kill should have missed it";
    EXPECT_TRUE(svc->populated().value_or(false));
    EXPECT_EQ(svc->remove().error(), EBUSY);

    Result<void> killed = ((*svc).*kill)();
    EXPECT_TRUE(killed.ok()) << killed.message();
    Result<void> empty = co_await svc->wait_empty(60s);
    EXPECT_TRUE(empty.ok()) << empty.message();
    EXPECT_FALSE(svc->populated().value_or(true));
    // Gone (init reaps it): at most a zombie for a moment, never running.
    for (int i = 0; i < 6000 && ::kill(grandchild, 0) == 0; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_NE(::kill(grandchild, 0), 0);
  });
  const std::string fs = svc->fs_path();
  Result<void> removed = svc->remove();
  EXPECT_TRUE(removed.ok()) << removed.message();
  EXPECT_FALSE(exists(fs));
}

TEST_F(CgroupTreeTest, KillTakesTheSetsidDoubleForkedGrandchild) { kill_escapees(*guard_, &Cgroup::kill); }

// Kernels before 5.14 have no cgroup.kill: freeze, SIGKILL each member, thaw.
TEST_F(CgroupTreeTest, FreezeThenKillTakesThemTooWhereCgroupKillIsMissing) {
  kill_escapees(*guard_, &Cgroup::kill_frozen);
}

// Stop by signal: every member gets it, those in the leader's group only once.
TEST_F(CgroupTreeTest, SignalMembersReachesOtherSessions) {
  TreeGuard& g = *guard_;
  Result<Cgroup> svc = g.tree->service("term");
  ASSERT_TRUE(svc.ok());
  run_loop([&]() -> Task<void> {
    SpawnOptions o = sh("setsid sleep 1000 & exec sleep 1000");
    o.cgroup_fd = svc->fd();
    Result<Process> p = Process::spawn(o);
    EXPECT_TRUE(p.ok());
    if (!p) co_return;
    for (int i = 0; i < 6000 && svc->members().value().size() < 2; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(svc->members().value().size(), 2u);
    (void)p->signal_group(SIGTERM);
    EXPECT_TRUE(svc->signal_members(SIGTERM, p->pid()).ok());
    Result<void> empty = co_await svc->wait_empty(60s);
    EXPECT_TRUE(empty.ok()) << empty.message();
    Result<ExitStatus> st = co_await p->wait();
    EXPECT_TRUE(st.ok() && st->signaled && st->code == SIGTERM);
  });
  EXPECT_TRUE(svc->remove().ok());
}

// A cgroup the child cannot join is a spawn failure naming the step and the cgroup:
// in the parent (no cgroup.procs to open) and in the child (the write fails).
TEST(Cgroup, FailureToJoinIsASpawnFailure) {
  testutil::TempDir dir;
  Fd plain(::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  const std::string full = dir.path() + "/full";
  ASSERT_EQ(::mkdir(full.c_str(), 0755), 0);
  ASSERT_EQ(::symlink("/dev/full", (full + "/cgroup.procs").c_str()), 0);
  Fd refusing(::open(full.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  run_loop([&]() -> Task<void> {
    for (const bool start : {false, true}) {
      SpawnOptions o = sh("exit 0");
      o.cgroup_fd = plain.get();
      std::string detail;
      Result<Process> p = Result<Process>::failure(EINVAL);
      if (start) p = co_await Process::start(o, &detail);
      else p = Process::spawn(o, &detail);
      EXPECT_EQ(p.error(), ENOENT);
      EXPECT_EQ(detail, "cgroup " + dir.path() + ": No such file or directory");

      o.cgroup_fd = refusing.get();
      Result<Process> q = Result<Process>::failure(EINVAL);
      if (start) q = co_await Process::start(o, &detail);
      else q = Process::spawn(o, &detail);
      EXPECT_EQ(q.error(), ENOSPC);
      EXPECT_EQ(detail, "cgroup " + full + ": No space left on device");
    }
  });
  EXPECT_EQ(testutil::zombie_children(), 0);
}

TEST_F(CgroupTreeTest, WaitEmptyOnAnEmptyCgroupReturnsAtOnce) {
  TreeGuard& g = *guard_;
  Result<Cgroup> svc = g.tree->service("idle");
  ASSERT_TRUE(svc.ok());
  run_loop([&]() -> Task<void> {
    Result<void> r = co_await svc->wait_empty(60s);
    EXPECT_TRUE(r.ok());
  });
  EXPECT_TRUE(svc->kill().ok());
  EXPECT_TRUE(svc->members().value().empty());
  EXPECT_TRUE(svc->remove().ok());
  EXPECT_TRUE(svc->remove().ok()) << "twice is fine";
}

}  // namespace
