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

#include "runtime/child_plan.hpp"
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
// Enough for stdio and one extra fd (a readiness pipe); a spawn handing over more
// copies the whole table as before.
constexpr std::size_t kSpawnSlots = 4;

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
  SlotLease(child::Plan& plan, std::vector<std::pair<int, int>>& extra) : slots_(spawn_slots()), lock_(slots_.mu) {
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
pid_t clone_child(child::Plan& plan, bool share_files, int* pidfd, int* err) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const int flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD | (share_files ? CLONE_FILES : 0);
  const pid_t pid = ::clone(child::main, child::stack_top(), flags, &plan, pidfd);
  *err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return pid;
}

// Shares our memory (no page tables copied, no copy-on-write faults after) but not
// our wait: clone returns as soon as the child exists, and the loop runs on while
// it is scheduled and execs. Its stack and everything its plan points at must
// stay untouched until then (start() keeps them in its frame until the report
// pipe closes), and it must not write errno, which would land in our thread's
// TLS: child::main makes raw system calls only. Signals blocked as above.
pid_t clone_sharing_memory(child::Plan& plan, char* stack_top, int* pidfd, int* err) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = ::clone(child::main, stack_top, CLONE_VM | CLONE_PIDFD | SIGCHLD, &plan, pidfd);
  *err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return pid;
}

bool under_valgrind() {
  // Valgrind announces itself through the preload of its core (no header needed).
  const char* preload = std::getenv("LD_PRELOAD");
  return preload && std::strstr(preload, "vgpreload_core");
}

constexpr std::size_t kStartStackSize = 32 * 1024;
#if defined(__x86_64__) || defined(__aarch64__)
constexpr bool kRawSyscalls = true;  // child_plan.cpp has them for these only
#else
constexpr bool kRawSyscalls = false;
#endif

}  // namespace

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

std::string ExitStatus::describe() const {
  return signaled ? "killed by " + signal_name(code) : "exited with " + std::to_string(code);
}

bool reserve_spawn_slots() {
  if (under_valgrind()) return false;
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
  child::Prepared prep;
  if (auto ok = child::prepare(opts, prep, detail); !ok) return Result<Process>::failure(ok.error());
  child::Plan& plan = prep.plan;
  Process proc;
  proc.stdin_ = std::move(prep.parent_ends[0]);
  proc.stdout_ = std::move(prep.parent_ends[1]);
  proc.stderr_ = std::move(prep.parent_ends[2]);

  // The fds handed over go onto the reserved low slots when there are enough, and the
  // child then shares our table instead of getting a full copy it would close again.
  // A kernel without CLOSE_RANGE_UNSHARE fails that first step: once, then never tried.
  const child::Plan prepared = plan;
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
    if (detail) *detail = child::describe_failure(plan.failed_step, plan.err, prep.path, opts);
    return Result<Process>::failure(plan.err);
  }
  return proc;
}

Task<Result<Process>> Process::start(const SpawnOptions& opts, std::string* detail, std::stop_token stop) {
  // Valgrind emulates clone only in the fork, vfork and thread shapes.
  if (!kRawSyscalls || under_valgrind()) co_return spawn(opts, detail);
  child::Prepared prep;
  if (auto ok = child::prepare(opts, prep, detail); !ok) co_return Result<Process>::failure(ok.error());
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    const int err = errno;
    if (detail) *detail = std::string("pipe: ") + std::strerror(err);
    co_return Result<Process>::failure(err);
  }
  Fd report_in(report[0]);
  Fd report_out(report[1]);
  child::Plan& plan = prep.plan;
  plan.extra = opts.extra_fds.data();  // `opts` outlives the await (process.hpp)
  plan.report_fd = report_out.get();
  int pidfd = -1;
  int clone_errno = 0;
  // Freed (with `prep`) only after the report pipe has closed, i.e. after the child
  // has left our memory by exec or exit.
  const std::unique_ptr<char[]> stack(new char[kStartStackSize]);
  char* top = stack.get() + kStartStackSize;
  top -= reinterpret_cast<std::uintptr_t>(top) & std::uintptr_t{15};
  const pid_t pid = clone_sharing_memory(plan, top, &pidfd, &clone_errno);
  // The child has its own fd table (a copy): our copies of what it was handed go
  // now, the report pipe's write end first, so its end of file means "exec'd or died".
  report_out.reset();
  for (Fd& end : prep.child_ends) end.reset();
  prep.dev_null.reset();
  prep.cgroup_procs.reset();
  if (pid < 0) {
    if (detail) *detail = std::string("clone: ") + std::strerror(clone_errno);
    co_return Result<Process>::failure(clone_errno);
  }
  Process proc;
  proc.pid_ = pid;
  proc.pidfd_.reset(pidfd);
  proc.stdin_ = std::move(prep.parent_ends[0]);
  proc.stdout_ = std::move(prep.parent_ends[1]);
  proc.stderr_ = std::move(prep.parent_ends[2]);

  // The loop runs on while the child gets scheduled, prepares and execs.
  ::fcntl(report_in.get(), F_SETFL, O_NONBLOCK);
  child::Report r;
  std::size_t got = 0;
  while (got < sizeof r) {
    const ssize_t n = ::read(report_in.get(), reinterpret_cast<char*>(&r) + got, sizeof r - got);
    if (n > 0) {
      got += static_cast<std::size_t>(n);
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      break;
    } else if (errno == EAGAIN) {
      // Cancelled: `proc` going out of scope kills and reaps the child before
      // the stack and plan are freed.
      Result<int> ready = co_await poll(report_in.get(), POLLIN).stop_on(stop);
      if (!ready) co_return Result<Process>::failure(ready.error());
    }
  }
  if (got < sizeof r) co_return proc;  // end of file: exec'd (or killed before it)

  // The child _exits right after its report: reap it through the ring.
  (void)co_await proc.wait(stop);
  if (detail) *detail = child::describe_failure(r.step, r.err, prep.path, opts);
  co_return Result<Process>::failure(r.err);
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
