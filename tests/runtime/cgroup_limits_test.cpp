// runtime/cgroup_limits: what apply_limits writes and check_controllers refuses, first on a
// stand-in directory of plain files (any machine), then on real cgroupfs: a scratch cgroup
// under the cgroup2 mount. Where that hierarchy has no controllers (the development
// machines' hybrid layout) only the refusal runs for real; where it has them (the aarch64
// VM, tools/arm-test.sh) each limit is enforced on a forked child: an OOM kill, a fork bomb
// held at pids_max, a busy loop held near cpu_max, a limit changed in place. Those skip
// with the reason when the controller is missing.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "runtime/cgroup_limits.hpp"
#include "test_util.hpp"

using runtime::CgroupLimitValues;
using runtime::Fd;
using runtime::UnsetLimits;

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;
const char* const kFiles[] = {"memory.max", "memory.high", "memory.swap.max", "cpu.max",
                              "cpu.weight", "pids.max",    "io.weight"};

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void put(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

Fd open_dir(const std::string& path) { return Fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); }

CgroupLimitValues every_limit() {
  CgroupLimitValues v;
  v.memory_max = 512 * kMiB;
  v.memory_high = 384 * kMiB;
  v.memory_swap_max = 0;
  v.cpu_max = CgroupLimitValues::CpuMax{50'000, 100'000};
  v.cpu_weight = 200;
  v.io_weight = 300;
  v.pids_max = CgroupLimitValues::kMax;
  return v;
}

// A stand-in cgroup: a directory holding the limit files as plain files.
struct FakeCgroup {
  testutil::TempDir dir;
  Fd fd;
  explicit FakeCgroup(const std::string& controllers = "cpuset cpu io memory hugetlb pids rdma misc\n") {
    put(dir / "cgroup.controllers", controllers);
    for (const char* f : kFiles) put(dir / f, "untouched");
    fd = open_dir(dir.path());
  }
  std::string read(const char* file) { return slurp(dir / file); }
};

}  // namespace

TEST(CgroupLimitsFiles, ApplyWritesEachSetLimitInTheKernelsForm) {
  FakeCgroup cg;
  std::string detail;
  ASSERT_TRUE(runtime::apply_limits(cg.fd.get(), every_limit(), &detail).ok()) << detail;
  EXPECT_EQ(cg.read("memory.max"), "536870912");
  EXPECT_EQ(cg.read("memory.high"), "402653184");
  EXPECT_EQ(cg.read("memory.swap.max"), "0");
  EXPECT_EQ(cg.read("cpu.max"), "50000 100000");
  EXPECT_EQ(cg.read("cpu.weight"), "200");
  EXPECT_EQ(cg.read("io.weight"), "default 300");
  EXPECT_EQ(cg.read("pids.max"), "max");
}

TEST(CgroupLimitsFiles, NothingSetWritesNothing) {
  FakeCgroup cg;
  std::string detail;
  ASSERT_TRUE(runtime::apply_limits(cg.fd.get(), CgroupLimitValues{}, &detail).ok()) << detail;
  for (const char* f : kFiles) EXPECT_EQ(cg.read(f), "untouched") << f;
  CgroupLimitValues only_pids;
  only_pids.pids_max = 8;
  ASSERT_TRUE(runtime::apply_limits(cg.fd.get(), only_pids, &detail).ok()) << detail;
  EXPECT_EQ(cg.read("pids.max"), "8");
  EXPECT_EQ(cg.read("memory.max"), "untouched");
}

// A limit removed from the config on reload must stop applying: reset writes the defaults.
TEST(CgroupLimitsFiles, ResetWritesDefaultsForUnsetLimits) {
  FakeCgroup cg;
  std::string detail;
  CgroupLimitValues only_memory;
  only_memory.memory_max = 64 * kMiB;
  ASSERT_TRUE(runtime::apply_limits(cg.fd.get(), only_memory, &detail, UnsetLimits::reset).ok()) << detail;
  EXPECT_EQ(cg.read("memory.max"), "67108864");
  EXPECT_EQ(cg.read("memory.high"), "max");
  EXPECT_EQ(cg.read("memory.swap.max"), "max");
  EXPECT_EQ(cg.read("cpu.max"), "max 100000");
  EXPECT_EQ(cg.read("cpu.weight"), "100");
  EXPECT_EQ(cg.read("pids.max"), "max");
  EXPECT_EQ(cg.read("io.weight"), "default 100");
}

// No file, no controller: nothing of it can be in force, so a reset skips it; a set limit
// whose file is missing fails, naming the key.
TEST(CgroupLimitsFiles, MissingFiles) {
  FakeCgroup cg;
  ASSERT_EQ(::unlink((cg.dir / "io.weight").c_str()), 0);
  std::string detail;
  CgroupLimitValues v;
  v.pids_max = 8;
  EXPECT_TRUE(runtime::apply_limits(cg.fd.get(), v, &detail, UnsetLimits::reset).ok()) << detail;
  v.io_weight = 10;
  auto r = runtime::apply_limits(cg.fd.get(), v, &detail);
  EXPECT_EQ(r.error(), ENOENT);
  EXPECT_EQ(detail, "io_weight: writing \"default 10\" to io.weight: No such file or directory");
}

TEST(CgroupLimitsFiles, ControllersNeeded) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(runtime::controllers_needed(CgroupLimitValues{}), V{});
  EXPECT_EQ(runtime::controllers_needed(every_limit()), (V{"memory", "cpu", "pids", "io"}));
  CgroupLimitValues v;
  v.pids_max = 3;
  v.cpu_weight = 5;
  EXPECT_EQ(runtime::controllers_needed(v), (V{"cpu", "pids"}));
  v = {};
  v.memory_swap_max = 0;
  EXPECT_EQ(runtime::controllers_needed(v), (V{"memory"}));
}

TEST(CgroupLimitsFiles, CheckNamesTheFirstKeyThatCannotBeEnforced) {
  FakeCgroup cg("memory pids\n");
  std::string detail;
  CgroupLimitValues v;
  v.memory_max = 64 * kMiB;
  v.pids_max = 8;
  EXPECT_TRUE(runtime::check_controllers(cg.fd.get(), v, &detail).ok()) << detail;
  v.cpu_weight = 50;
  auto r = runtime::check_controllers(cg.fd.get(), v, &detail);
  EXPECT_EQ(r.error(), ENOTSUP);
  EXPECT_EQ(detail,
            "cpu_weight needs the cpu controller, which this cgroup does not have: run dockless under systemd "
            "with Delegate=yes, or enable it in the parent's cgroup.subtree_control");
  // The controller is there but the kernel lacks the file (no swap accounting).
  v.cpu_weight.reset();
  v.memory_swap_max = 0;
  ASSERT_EQ(::unlink((cg.dir / "memory.swap.max").c_str()), 0);
  r = runtime::check_controllers(cg.fd.get(), v, &detail);
  EXPECT_EQ(r.error(), ENOTSUP);
  EXPECT_EQ(detail,
            "memory_swap_max needs memory.swap.max, which this kernel does not provide (swap accounting is off: "
            "CONFIG_MEMCG_SWAP, or swapaccount=0 on the kernel command line)");
  // Nothing set: nothing to check, not even cgroup.controllers (so no fd is needed).
  EXPECT_TRUE(runtime::check_controllers(-1, CgroupLimitValues{}, &detail).ok());
}

namespace {

// The cgroup2 mount ("" when there is none): /sys/fs/cgroup on a unified host and in the
// VM, /sys/fs/cgroup/unified on a hybrid one.
std::string cgroup2_mount() {
  std::ifstream f("/proc/self/mountinfo");
  std::string line;
  while (std::getline(f, line)) {
    std::size_t sep = line.find(" - ");
    if (sep == std::string::npos || line.compare(sep + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream words(line);
    std::string id, parent, dev, root, mount_point;
    words >> id >> parent >> dev >> root >> mount_point;
    return mount_point;
  }
  return "";
}

// A child of the cgroup2 root, removed (after its members are gone) at the end.
class ScratchCgroup {
 public:
  ScratchCgroup() {
    root_ = cgroup2_mount();
    if (root_.empty()) return;
    static int n = 0;
    path_ = root_ + "/dockless-cgl-test-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
    if (::mkdir(path_.c_str(), 0755) != 0) {
      why_ = "mkdir " + path_ + ": " + std::strerror(errno);
      path_.clear();
      return;
    }
    fd_ = open_dir(path_);
  }
  ~ScratchCgroup() {
    if (path_.empty()) return;
    fd_.reset();
    // A member just killed and reaped may take a moment to leave.
    for (int i = 0; i < 200 && ::rmdir(path_.c_str()) != 0 && errno == EBUSY; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  bool ok() const { return fd_.valid(); }
  std::string why() const { return root_.empty() ? "no cgroup2 mount" : why_; }
  int fd() const { return fd_.get(); }
  std::string file(const char* name) const { return slurp(path_ + "/" + name); }
  // Makes `controller` available here through the root's subtree_control: false (and why)
  // when the hierarchy does not have it.
  bool enable(const std::string& controller, std::string* why) const {
    int fd = ::open((root_ + "/cgroup.subtree_control").c_str(), O_WRONLY | O_CLOEXEC);
    std::string text = "+" + controller;
    bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    if (!ok) *why = "the " + controller + " controller is not available in " + root_ + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return ok;
  }
  // A forked child that joins this cgroup, then runs `body` and exits with its result.
  template <class F>
  pid_t fork_into(F body) const {
    pid_t pid = ::fork();
    if (pid != 0) return pid;
    int procs = ::openat(fd_.get(), "cgroup.procs", O_WRONLY | O_CLOEXEC);
    char buf[32];
    int len = std::snprintf(buf, sizeof buf, "%d", static_cast<int>(::getpid()));
    if (procs < 0 || ::write(procs, buf, static_cast<std::size_t>(len)) != len) ::_exit(120);
    ::close(procs);
    ::_exit(body());
  }
  // memory.events' or pids.events' counter `key`.
  long counter(const char* file, const std::string& key) const {
    std::istringstream in(this->file(file));
    std::string k;
    long v = 0;
    while (in >> k >> v)
      if (k == key) return v;
    return -1;
  }
  // Kills every member and waits until there is none (cgroup.kill where the kernel has it).
  void kill_all() const {
    int kill_fd = ::openat(fd_.get(), "cgroup.kill", O_WRONLY | O_CLOEXEC);
    if (kill_fd >= 0) {
      (void)!::write(kill_fd, "1", 1);
      ::close(kill_fd);
    }
    for (int i = 0; i < 500; ++i) {
      std::istringstream procs(file("cgroup.procs"));
      bool any = false;
      for (long pid; procs >> pid; any = true) ::kill(static_cast<pid_t>(pid), SIGKILL);
      if (!any) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

 private:
  std::string root_, path_, why_;
  Fd fd_;
};

#define NEED_CGROUP(cg)                                         \
  do {                                                          \
    if (!(cg).ok()) GTEST_SKIP() << "no scratch cgroup: " << (cg).why(); \
  } while (0)
#define NEED_CONTROLLER(cg, name)                                \
  do {                                                           \
    std::string why_;                                            \
    if (!(cg).enable(name, &why_)) GTEST_SKIP() << why_;         \
  } while (0)

int wait_status(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

}  // namespace

// The development machines' hybrid layout: a cgroup2 without the memory controller. A limit
// there cannot be enforced, and the check says which key and how to get it.
TEST(CgroupLimitsReal, CheckRefusesWhatTheHierarchyLacks) {
  ScratchCgroup cg;
  NEED_CGROUP(cg);
  CgroupLimitValues v;
  v.memory_max = 64 * kMiB;
  std::string detail;
  if (cg.file("cgroup.controllers").find("memory") != std::string::npos)
    GTEST_SKIP() << "this cgroup has the memory controller; the enforcement tests cover it";
  auto r = runtime::check_controllers(cg.fd(), v, &detail);
  EXPECT_EQ(r.error(), ENOTSUP);
  EXPECT_EQ(detail,
            "memory_max needs the memory controller, which this cgroup does not have: run dockless under systemd "
            "with Delegate=yes, or enable it in the parent's cgroup.subtree_control");
  // Nothing set: nothing to enforce, nothing written, whichever way unset limits go.
  EXPECT_TRUE(runtime::check_controllers(cg.fd(), CgroupLimitValues{}, &detail).ok());
  EXPECT_TRUE(runtime::apply_limits(cg.fd(), CgroupLimitValues{}, &detail).ok()) << detail;
  EXPECT_TRUE(runtime::apply_limits(cg.fd(), CgroupLimitValues{}, &detail, UnsetLimits::reset).ok()) << detail;
  // And a set limit fails to apply rather than being ignored.
  EXPECT_EQ(runtime::apply_limits(cg.fd(), v, &detail).error(), ENOENT);
  EXPECT_EQ(detail, "memory_max: writing \"67108864\" to memory.max: No such file or directory");
}

TEST(CgroupLimitsReal, MemoryMaxOomKillsTheChild) {
  ScratchCgroup cg;
  NEED_CGROUP(cg);
  NEED_CONTROLLER(cg, "memory");
  CgroupLimitValues v;
  v.memory_max = 32 * kMiB;
  std::string detail;
  ASSERT_TRUE(runtime::check_controllers(cg.fd(), v, &detail).ok()) << detail;
  // No swap to escape into, where the kernel accounts it.
  if (::faccessat(cg.fd(), "memory.swap.max", F_OK, 0) == 0) v.memory_swap_max = 0;
  ASSERT_TRUE(runtime::apply_limits(cg.fd(), v, &detail).ok()) << detail;
  EXPECT_EQ(cg.file("memory.max"), "33554432\n");
  pid_t pid = cg.fork_into([] {
    const std::size_t size = 256 * kMiB;
    auto* p = static_cast<volatile char*>(::malloc(size));
    if (!p) return 3;
    for (std::size_t i = 0; i < size; i += 4096) p[i] = 1;  // every page, for real
    return 0;
  });
  ASSERT_GT(pid, 0);
  int status = wait_status(pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_GE(cg.counter("memory.events", "oom_kill"), 1) << cg.file("memory.events");
  std::printf("cgroup_limits: memory_max 32M: a 256M toucher was OOM-killed, oom_kill=%ld\n",
              cg.counter("memory.events", "oom_kill"));
}

TEST(CgroupLimitsReal, PidsMaxStopsAForkBomb) {
  ScratchCgroup cg;
  NEED_CGROUP(cg);
  NEED_CONTROLLER(cg, "pids");
  CgroupLimitValues v;
  v.pids_max = 8;
  std::string detail;
  ASSERT_TRUE(runtime::check_controllers(cg.fd(), v, &detail).ok()) << detail;
  ASSERT_TRUE(runtime::apply_limits(cg.fd(), v, &detail).ok()) << detail;
  testutil::Pipe report;
  // Every process of the bomb forks for ever; one that is refused says so once ('E' for
  // EAGAIN, 'O' for anything else).
  pid_t pid = cg.fork_into([&] {
    bool said = false;
    for (;;) {
      pid_t c = ::fork();
      if (c < 0 && !said) {
        char what = errno == EAGAIN ? 'E' : 'O';
        (void)!::write(report.w.get(), &what, 1);
        said = true;
      }
      if (c < 0) ::usleep(1000);
    }
    return 0;
  });
  ASSERT_GT(pid, 0);
  report.w.reset();
  char what = 0;
  pollfd pfd{report.r.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 20'000), 1) << "no fork of the bomb was refused within 20 s";
  ASSERT_EQ(::read(report.r.get(), &what, 1), 1);
  EXPECT_EQ(what, 'E');
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string current = cg.file("pids.current");
  EXPECT_LE(std::stol(current), 8) << current;
  // The test process, outside the cgroup, forks as usual while the bomb is at its cap.
  pid_t outside = ::fork();
  if (outside == 0) ::_exit(7);
  ASSERT_GT(outside, 0) << std::strerror(errno);
  int st = wait_status(outside);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 7);
  const long refused = cg.counter("pids.events", "max");
  EXPECT_GE(refused, 1) << cg.file("pids.events");
  cg.kill_all();
  (void)wait_status(pid);
  std::printf("cgroup_limits: pids_max 8: a fork bomb held at pids.current=%ld, %ld forks refused\n",
              std::stol(current), refused);
}

namespace {
std::uint64_t usage_usec(const ScratchCgroup& cg) {
  std::istringstream in(cg.file("cpu.stat"));
  std::string k;
  std::uint64_t v = 0;
  while (in >> k >> v)
    if (k == "usage_usec") return v;
  return 0;
}
}  // namespace

TEST(CgroupLimitsReal, CpuMaxHoldsABusyLoop) {
  ScratchCgroup cg;
  NEED_CGROUP(cg);
  NEED_CONTROLLER(cg, "cpu");
  CgroupLimitValues v;
  v.cpu_max = CgroupLimitValues::CpuMax{20'000, 100'000};
  std::string detail;
  ASSERT_TRUE(runtime::check_controllers(cg.fd(), v, &detail).ok()) << detail;
  ASSERT_TRUE(runtime::apply_limits(cg.fd(), v, &detail).ok()) << detail;
  EXPECT_EQ(cg.file("cpu.max"), "20000 100000\n");
  pid_t pid = cg.fork_into([] {
    for (;;) asm volatile("");  // a loop the compiler must keep
    return 0;
  });
  ASSERT_GT(pid, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // past its first period
  const auto t0 = std::chrono::steady_clock::now();
  const std::uint64_t u0 = usage_usec(cg);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const std::uint64_t u1 = usage_usec(cg);
  const double wall_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  ::kill(pid, SIGKILL);
  (void)wait_status(pid);
  const double share = static_cast<double>(u1 - u0) / wall_us;
  std::printf("cgroup_limits: cpu_max 20%%: a busy loop used %.1f%% of one CPU\n", share * 100);
  // Wide: an emulated machine's clock and scheduler are coarse. Unlimited it would be ~100 %.
  EXPECT_GE(share, 0.05);
  EXPECT_LE(share, 0.40);
}

TEST(CgroupLimitsReal, ChangedLimitTakesEffectInPlace) {
  ScratchCgroup cg;
  NEED_CGROUP(cg);
  NEED_CONTROLLER(cg, "memory");
  NEED_CONTROLLER(cg, "pids");
  CgroupLimitValues v;
  v.memory_max = 256 * kMiB;
  v.memory_high = 192 * kMiB;
  v.pids_max = 50;
  std::string detail;
  ASSERT_TRUE(runtime::apply_limits(cg.fd(), v, &detail).ok()) << detail;
  testutil::Pipe hold, joined;
  pid_t pid = cg.fork_into([&] {
    char c = 'J';
    hold.w.reset();
    (void)!::write(joined.w.get(), &c, 1);  // body() runs once it is a member
    return static_cast<int>(::read(hold.r.get(), &c, 1));  // until the test is done
  });
  ASSERT_GT(pid, 0);
  hold.r.reset();
  joined.w.reset();
  char c = 0;
  ASSERT_EQ(::read(joined.r.get(), &c, 1), 1) << "the child did not join the cgroup";
  ASSERT_NE(cg.file("cgroup.procs").find(std::to_string(pid)), std::string::npos);
  // Lowered on the running group, as a reload does.
  v.memory_max = 128 * kMiB;
  v.memory_high = 96 * kMiB;
  v.pids_max = 20;
  ASSERT_TRUE(runtime::apply_limits(cg.fd(), v, &detail).ok()) << detail;
  EXPECT_EQ(cg.file("memory.max"), "134217728\n");
  EXPECT_EQ(cg.file("memory.high"), "100663296\n");
  EXPECT_EQ(cg.file("pids.max"), "20\n");
  // memory_high removed from the config: reset to the kernel's default; the rest stays.
  v.memory_high.reset();
  ASSERT_TRUE(runtime::apply_limits(cg.fd(), v, &detail, UnsetLimits::reset).ok()) << detail;
  EXPECT_EQ(cg.file("memory.high"), "max\n");
  EXPECT_EQ(cg.file("memory.max"), "134217728\n");
  hold.w.reset();  // the child reads EOF and exits
  int st = wait_status(pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  std::printf("cgroup_limits: memory.max, memory.high and pids.max changed on a running group\n");
}

// Each controller's check on a real cgroup: pass with it, a clear refusal for io when io is
// not enabled (it is never enabled here).
TEST(CgroupLimitsReal, CheckPassesWhereControllersAre) {
  ScratchCgroup cg;
  NEED_CGROUP(cg);
  NEED_CONTROLLER(cg, "memory");
  NEED_CONTROLLER(cg, "pids");
  NEED_CONTROLLER(cg, "cpu");
  CgroupLimitValues v;
  v.memory_max = 64 * kMiB;
  v.memory_high = 32 * kMiB;
  v.pids_max = 8;
  v.cpu_weight = 50;
  v.cpu_max = CgroupLimitValues::CpuMax{50'000, 100'000};
  std::string detail;
  EXPECT_TRUE(runtime::check_controllers(cg.fd(), v, &detail).ok()) << detail;
  EXPECT_TRUE(runtime::apply_limits(cg.fd(), v, &detail).ok()) << detail;
  EXPECT_EQ(cg.file("cpu.weight"), "50\n");
  if (cg.file("cgroup.controllers").find("io") == std::string::npos) {
    v.io_weight = 10;
    EXPECT_EQ(runtime::check_controllers(cg.fd(), v, &detail).error(), ENOTSUP);
    EXPECT_EQ(detail,
              "io_weight needs the io controller, which this cgroup does not have: run dockless under systemd "
              "with Delegate=yes, or enable it in the parent's cgroup.subtree_control");
  }
}

// io_weight where the io controller is: the weight the kernel holds (io.weight, iocost's file)
// reads back, and a reset returns it to the default. Proportional disk time itself is not
// measured: the VM has no block device to contend for.
TEST(CgroupLimitsReal, IoWeightIsHeldWhereTheIoControllerIs) {
  ScratchCgroup cg;
  NEED_CGROUP(cg);
  NEED_CONTROLLER(cg, "io");
  CgroupLimitValues v;
  v.io_weight = 300;
  std::string detail;
  runtime::Result<void> checked = runtime::check_controllers(cg.fd(), v, &detail);
  if (!checked) {
    // The io controller without io.weight (no CONFIG_BLK_CGROUP_IOCOST): a refusal naming it.
    EXPECT_EQ(checked.error(), ENOTSUP);
    EXPECT_NE(detail.find("io_weight"), std::string::npos) << detail;
    GTEST_SKIP() << "io controller without io.weight: " << detail;
  }
  ASSERT_TRUE(runtime::apply_limits(cg.fd(), v, &detail).ok()) << detail;
  EXPECT_EQ(cg.file("io.weight"), "default 300\n");
  ASSERT_TRUE(runtime::apply_limits(cg.fd(), CgroupLimitValues{}, &detail, runtime::UnsetLimits::reset).ok())
      << detail;
  EXPECT_EQ(cg.file("io.weight"), "default 100\n");
  std::printf("cgroup_limits: io.weight 300 held and reset to 100\n");
}
