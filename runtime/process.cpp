#include "runtime/process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>

#include "runtime/io_op.hpp"
#include "runtime/ops_wait.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

namespace runtime {

namespace {

constexpr int kOpWaitid = 50;  // IORING_OP_WAITID, see reactor.cpp
constexpr std::size_t kChildStackSize = 64 * 1024;
// Enough for stdio and one extra fd (a readiness pipe); a spawn handing over more
// copies the whole table as before.
constexpr std::size_t kSpawnSlots = 4;

// Everything the child needs, prepared by the parent: between clone and exec the
// child shares our memory (CLONE_VM) and must not allocate.
struct ChildPlan {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* working_dir = nullptr;
  int stdio_src[3] = {-1, -1, -1};  // -1: inherit this fd as is
  const std::pair<int, int>* extra = nullptr;
  std::size_t extra_count = 0;
  const std::pair<int, rlimit>* rlimits = nullptr;
  std::size_t rlimit_count = 0;
  bool set_ids = false;
  uid_t uid = 0;
  gid_t gid = 0;
  bool set_gid = false;
  const gid_t* groups = nullptr;
  std::size_t group_count = 0;
  // > 0: the child shares our fd table (CLONE_FILES) and first takes a private copy
  // of fds [0, unshare_below) only; everything it is given sits in that range.
  unsigned unshare_below = 0;
  // Written by the child when a step fails; read by the parent after clone returns
  // (CLONE_VFORK guarantees the child has exec'd or exited by then).
  int err = 0;
  const char* failed_step = nullptr;
};

[[noreturn]] void child_fail(ChildPlan* plan, const char* step) {
  plan->err = errno;
  plan->failed_step = step;
  _exit(127);
}

// Runs in the child on its own stack. Only system calls from here on.
__attribute__((no_sanitize("address", "undefined"))) int child_main(void* arg) {
  auto* plan = static_cast<ChildPlan*>(arg);

  // Before any other fd operation: the table is still the daemon's own. Copying
  // only its low slots keeps a spawn O(1) in the number of fds the daemon holds.
  if (plan->unshare_below > 0 &&
      syscall(SYS_close_range, plan->unshare_below, ~0U, CLOSE_RANGE_UNSHARE) != 0)
    child_fail(plan, "close_range");

  // Dispositions set to "ignore" survive exec (SIGPIPE, or SIGHUP under nohup);
  // a service must start with the defaults. Handlers are reset by exec itself.
  struct sigaction dfl{};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, &dfl, nullptr);  // EINVAL for glibc-reserved signals: harmless
  }
  // New session: the service leads its own process group, so the stop signal can
  // reach everything it forks, and our terminal's signals never reach it.
  if (setsid() < 0) child_fail(plan, "setsid");

  // Move every fd we hand over above the target range first, so that placing one
  // cannot clobber another that happens to sit on a target number.
  int highest_target = 2;
  for (std::size_t i = 0; i < plan->extra_count; ++i)
    if (plan->extra[i].second > highest_target) highest_target = plan->extra[i].second;
  int moved_std[3];
  for (int i = 0; i < 3; ++i) {
    moved_std[i] = -1;
    if (plan->stdio_src[i] < 0) continue;
    moved_std[i] = fcntl(plan->stdio_src[i], F_DUPFD_CLOEXEC, highest_target + 1);
    if (moved_std[i] < 0) child_fail(plan, "dup");
  }
  int moved_extra[16];
  if (plan->extra_count > 16) {
    errno = EMFILE;
    child_fail(plan, "extra fds");
  }
  for (std::size_t i = 0; i < plan->extra_count; ++i) {
    moved_extra[i] = fcntl(plan->extra[i].first, F_DUPFD_CLOEXEC, highest_target + 1);
    if (moved_extra[i] < 0) child_fail(plan, "dup");
  }
  // dup2 clears close-on-exec on the target, which is exactly the set we keep.
  for (int i = 0; i < 3; ++i)
    if (moved_std[i] >= 0 && dup2(moved_std[i], i) < 0) child_fail(plan, "dup2");
  for (std::size_t i = 0; i < plan->extra_count; ++i)
    if (dup2(moved_extra[i], plan->extra[i].second) < 0) child_fail(plan, "dup2");
  // Whitelist: 0-2 and the extra targets stay, every other fd goes. The rest of
  // ours are close-on-exec already, but fds the daemon inherited may not be.
  for (int fd = 3; fd <= highest_target; ++fd) {
    bool keep = false;
    for (std::size_t i = 0; i < plan->extra_count; ++i) keep |= plan->extra[i].second == fd;
    if (!keep) close(fd);
  }
  syscall(SYS_close_range, highest_target + 1, ~0U, 0);

  for (std::size_t i = 0; i < plan->rlimit_count; ++i)
    if (setrlimit(plan->rlimits[i].first, &plan->rlimits[i].second) < 0) child_fail(plan, "setrlimit");
  // Groups before gid before uid: once the uid changes we may no longer change groups.
  if (plan->set_gid) {
    if (setgroups(plan->group_count, plan->groups) < 0) child_fail(plan, "setgroups");
    if (setgid(plan->gid) < 0) child_fail(plan, "setgid");
  }
  if (plan->set_ids && setuid(plan->uid) < 0) child_fail(plan, "setuid");
  if (plan->working_dir && chdir(plan->working_dir) < 0) child_fail(plan, "chdir");

  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execve(plan->path, plan->argv, plan->envp);
  child_fail(plan, "exec");
}

std::string find_in_path(const std::string& name, const Environment& env) {
  if (name.find('/') != std::string::npos) return name;
  std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  if (auto it = env.find("PATH"); it != env.end())
    path = it->second;
  else if (const char* p = ::getenv("PATH"))
    path = p;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return {};
}

// The child's stack, reused: CLONE_VFORK suspends the daemon until the child has
// exec'd, so only one child ever runs on it.
char* child_stack_top() {
  static std::unique_ptr<char[]> stack(new char[kChildStackSize]);
  // Stacks grow down on every architecture we target; keep 16-byte alignment.
  // Rounded down by pointer arithmetic, so the result keeps `stack`'s provenance.
  char* top = stack.get() + kChildStackSize;
  return top - (reinterpret_cast<std::uintptr_t>(top) & std::uintptr_t{15});
}

// Low fd numbers held on /dev/null for handing fds to a child (see
// reserve_spawn_slots() in process.hpp). Guarded by a mutex only because spawn()
// is a static function any thread may call; the daemon has one thread.
struct SpawnSlots {
  std::mutex mu;
  bool usable = false;
  int placeholder = -1;
  int fds[kSpawnSlots] = {-1, -1, -1, -1};
  unsigned limit = 0;  // one past the highest slot
};

SpawnSlots& spawn_slots() {
  static SpawnSlots* s = new SpawnSlots;  // never destroyed: spawns may run during exit
  return *s;
}

// Holds the slots for one clone: the child's fds are dup3'ed onto them, and put
// back on /dev/null when the lease ends, so the daemon keeps no copy of a pipe end.
class SlotLease {
 public:
  SlotLease(ChildPlan& plan, std::vector<std::pair<int, int>>& extra) : slots_(spawn_slots()), lock_(slots_.mu) {
    if (!slots_.usable) return;
    std::size_t need = extra.size();
    for (int src : plan.stdio_src) need += src >= 0 ? 1 : 0;
    if (need > kSpawnSlots) return;
    auto place = [&](int& src) {
      if (::dup3(src, slots_.fds[used_], O_CLOEXEC) < 0) return false;
      src = slots_.fds[used_++];
      return true;
    };
    for (int& src : plan.stdio_src)
      if (src >= 0 && !place(src)) {
        reset();
        return;
      }
    for (auto& e : extra)
      if (!place(e.first)) {
        reset();
        return;
      }
    plan.unshare_below = slots_.limit;
    active_ = true;
  }
  SlotLease(const SlotLease&) = delete;
  SlotLease& operator=(const SlotLease&) = delete;
  ~SlotLease() { reset(); }

  bool active() const noexcept { return active_; }
  // The kernel has no CLOSE_RANGE_UNSHARE (before 5.9): spawn the old way from now on.
  void unsupported() { slots_.usable = false; }

 private:
  void reset() {
    for (std::size_t i = 0; i < used_; ++i)
      if (::dup3(slots_.placeholder, slots_.fds[i], O_CLOEXEC) < 0) {
        // Cannot happen short of a bug; never leave a pipe end behind.
        ::close(slots_.fds[i]);
        slots_.usable = false;
      }
    used_ = 0;
  }
  SpawnSlots& slots_;
  std::lock_guard<std::mutex> lock_;
  std::size_t used_ = 0;
  bool active_ = false;
};

Result<std::pair<Fd, Fd>> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Result<std::pair<Fd, Fd>>::failure(errno);
  return std::pair<Fd, Fd>(Fd(fds[0]), Fd(fds[1]));
}

// si_code/si_status are macros in <signal.h>, hence the siginfo_t parameter.
ExitStatus status_from(const siginfo_t& info) {
  ExitStatus s;
  s.signaled = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED;
  s.code = info.si_status;
  return s;
}

// IORING_OP_WAITID (kernel >= 6.7): waits and reaps in one operation. liburing
// 2.3 has no prep helper, so the SQE is filled as the kernel's io_waitid_prep reads it.
class WaitidOp final : public IoOp {
 public:
  explicit WaitidOp(int pidfd) : pidfd_(pidfd) {}
  siginfo_t info{};

 private:
  void prep(io_uring_sqe* s) override {
    io_uring_prep_rw(kOpWaitid, s, pidfd_, nullptr, P_PIDFD, 0);
    s->file_index = WEXITED;
    s->addr2 = reinterpret_cast<std::uint64_t>(&info);
  }
  int pidfd_;
};

// All signals blocked around clone (as posix_spawn does): no handler may run in
// the child while it shares our memory and stack-adjacent state.
// clone(2), not clone3: glibc's clone runs child_main on the given stack, which
// CLONE_VM needs; raw clone3 would return into this frame on a foreign stack.
// CLONE_PIDFD gives the same pidfd clone3 would. SIGCHLD as the exit signal
// keeps the child waitable by plain waitid (no handler is installed for it).
pid_t clone_child(ChildPlan& plan, bool share_files, int* pidfd, int* err) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const int flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD | (share_files ? CLONE_FILES : 0);
  const pid_t pid = ::clone(child_main, child_stack_top(), flags, &plan, pidfd);
  *err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return pid;
}

}  // namespace

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

std::string ExitStatus::describe() const {
  return signaled ? "killed by " + signal_name(code) : "exited with " + std::to_string(code);
}

bool reserve_spawn_slots() {
  // Valgrind announces itself through the preload of its core (no header needed).
  if (const char* preload = std::getenv("LD_PRELOAD"); preload && std::strstr(preload, "vgpreload_core")) return false;
  SpawnSlots& s = spawn_slots();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.usable) return true;
  if (s.placeholder >= 0) return false;  // reserved before, then found unsupported
  Fd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null) return false;
  Fd slots[kSpawnSlots];
  for (Fd& slot : slots) {
    slot.reset(::fcntl(null.get(), F_DUPFD_CLOEXEC, 0));
    if (!slot) return false;
  }
  s.placeholder = null.release();
  s.limit = 0;
  for (std::size_t i = 0; i < kSpawnSlots; ++i) {
    s.fds[i] = slots[i].release();
    s.limit = std::max(s.limit, static_cast<unsigned>(s.fds[i]) + 1);
  }
  s.usable = true;
  return true;
}

Result<Process> Process::spawn(const SpawnOptions& opts, std::string* detail) {
  auto fail = [&](int err, const std::string& what) {
    if (detail) *detail = what + ": " + std::strerror(err);
    return Result<Process>::failure(err);
  };
  if (opts.argv.empty() || opts.argv[0].empty()) return fail(EINVAL, "exec");
  const std::string path = find_in_path(opts.argv[0], opts.env);
  if (path.empty()) return fail(ENOENT, "exec " + opts.argv[0]);

  std::vector<char*> argv, envp;
  for (const auto& a : opts.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const std::vector<std::string> env_entries = environment_entries(opts.env);
  for (const auto& e : env_entries) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  Process proc;
  Fd child_ends[3];
  Fd dev_null;
  const SpawnOptions::Stdio modes[3] = {opts.stdin_mode, opts.stdout_mode, opts.stderr_mode};
  Fd* parent_ends[3] = {&proc.stdin_, &proc.stdout_, &proc.stderr_};
  ChildPlan plan;
  for (int i = 0; i < 3; ++i) {
    switch (modes[i]) {
      case SpawnOptions::Stdio::inherit:
        break;
      case SpawnOptions::Stdio::null:
        if (!dev_null) dev_null.reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
        if (!dev_null) return fail(errno, "open /dev/null");
        plan.stdio_src[i] = dev_null.get();
        break;
      case SpawnOptions::Stdio::pipe: {
        auto p = make_pipe();
        if (!p) return fail(p.error(), "pipe");
        // The daemon's end is non-blocking so the ring can poll it instead of
        // parking a kernel worker thread in a blocking read; the child's end stays
        // blocking, as programs expect of stdout.
        Fd& ours = i == 0 ? p->second : p->first;
        Fd& theirs = i == 0 ? p->first : p->second;
        ::fcntl(ours.get(), F_SETFL, O_NONBLOCK);
        *parent_ends[i] = std::move(ours);
        child_ends[i] = std::move(theirs);
        plan.stdio_src[i] = child_ends[i].get();
        break;
      }
    }
  }
  plan.path = path.c_str();
  plan.argv = argv.data();
  plan.envp = envp.data();
  plan.working_dir = opts.working_dir.empty() ? nullptr : opts.working_dir.c_str();
  plan.extra_count = opts.extra_fds.size();
  plan.rlimits = opts.rlimits.data();
  plan.rlimit_count = opts.rlimits.size();
  if (opts.gid) {
    plan.set_gid = true;
    plan.gid = *opts.gid;
    plan.groups = opts.groups.data();
    plan.group_count = opts.groups.size();
  }
  if (opts.uid) {
    plan.set_ids = true;
    plan.uid = *opts.uid;
  }

  // The fds handed over go onto the reserved low slots when there are enough, and the
  // child then shares our table instead of getting a full copy it would close again.
  // A kernel without CLOSE_RANGE_UNSHARE fails that first step: once, then never tried.
  const ChildPlan prepared = plan;
  std::vector<std::pair<int, int>> extra;
  int pidfd = -1;
  pid_t pid = -1;
  int clone_errno = 0;
  for (const bool use_slots : {true, false}) {
    plan = prepared;
    extra = opts.extra_fds;
    plan.extra = extra.data();
    std::optional<SlotLease> lease;
    if (use_slots) lease.emplace(plan, extra);
    const bool shared = lease && lease->active();
    if (!shared) {  // a lease that failed half-way may have moved some sources
      plan = prepared;
      extra = opts.extra_fds;
      plan.extra = extra.data();
    }
    pid = clone_child(plan, shared, &pidfd, &clone_errno);
    if (!shared || pid < 0 || plan.err != EINVAL || !plan.failed_step ||
        std::strcmp(plan.failed_step, "close_range") != 0)
      break;
    siginfo_t info{};
    ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED);
    ::close(pidfd);
    pidfd = -1;
    lease->unsupported();
  }
  if (pid < 0) return fail(clone_errno, "clone");
  proc.pid_ = pid;
  proc.pidfd_.reset(pidfd);

  if (plan.err != 0) {
    // The child has already exited (_exit(127)); reap it now so no zombie is left.
    siginfo_t info{};
    ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED);
    proc.reaped_ = true;
    std::string step = plan.failed_step ? plan.failed_step : "spawn";
    if (step == "exec") step += " " + path;
    else if (step == "chdir") step += " " + opts.working_dir;
    return fail(plan.err, step);
  }
  return proc;
}

Result<Process> Process::attach(pid_t pid, Fd pidfd) {
  if (!pidfd) {
    long fd = ::syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) return Result<Process>::failure(errno);
    pidfd.reset(static_cast<int>(fd));
  }
  Process p;
  p.pid_ = pid;
  p.pidfd_ = std::move(pidfd);
  // WNOWAIT peeks without reaping: 0 means the kernel lets us wait for it (our
  // child, exited or not), ECHILD that it is someone else's (init's, after a crash).
  siginfo_t info{};
  p.child_ = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(p.pidfd_.get()), &info,
                      WEXITED | WNOHANG | WNOWAIT) == 0;
  return p;
}

Process::~Process() {
  if (!pidfd_ || reaped_ || !child_) return;
  // Last resort (the owner did not wait): kill and reap synchronously. SIGKILL
  // makes the wait short.
  (void)signal_group(SIGKILL);
  (void)signal(SIGKILL);
  siginfo_t info{};
  ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info, WEXITED);
}

std::optional<ExitStatus> Process::try_reap() {
  if (status_) return status_;
  if (!child_) return std::nullopt;
  siginfo_t info{};
  if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info,
               WEXITED | WNOHANG) != 0)
    return std::nullopt;
  if (info.si_pid == 0) return std::nullopt;  // still running
  reaped_ = true;
  status_ = status_from(info);
  return status_;
}

Task<Result<ExitStatus>> Process::wait(std::stop_token stop) {
  if (status_) co_return *status_;
  if (child_ && reactor().features().waitid_op) {
    WaitidOp op(pidfd_.get());
    Result<int> r = co_await op.stop_on(stop);
    if (!r) co_return Result<ExitStatus>::failure(r.error());
    reaped_ = true;
    status_ = status_from(op.info);
    co_return *status_;
  }
  for (;;) {
    if (auto s = try_reap()) co_return *s;
    // A pidfd polls readable once the process has exited; then waitid reaps it.
    Result<int> r = co_await poll(pidfd_.get(), POLLIN).stop_on(stop);
    if (!r) co_return Result<ExitStatus>::failure(r.error());
    if (!child_) {
      reaped_ = true;  // someone else's child: gone, status unknowable
      co_return Result<ExitStatus>::failure(ECHILD);
    }
  }
}

Result<void> Process::signal(int sig) const {
  if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) != 0)
    return Result<void>::failure(errno);
  return {};
}

Result<void> Process::signal_group(int sig) const {
  // The group id is the leader's pid (setsid). While the leader is unreaped its
  // pid cannot be reused, and after that the number stays reserved while any
  // member of the group lives; so this never hits a stranger.
  if (::kill(-pid_, sig) != 0) return Result<void>::failure(errno);
  return {};
}

}  // namespace runtime
