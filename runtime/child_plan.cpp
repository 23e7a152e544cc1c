#include "runtime/child_plan.hpp"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>
#include <type_traits>

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

namespace runtime::child {

namespace {

constexpr std::size_t kChildStackSize = 64 * 1024;

// System calls without errno: a child that shares our memory but not our wait
// (CLONE_VM without CLONE_VFORK) would otherwise write errno in the TLS block of
// the daemon's running thread. Results are -errno on failure, as the kernel gives.
// Never instrumented: a sanitizer's bookkeeping (fake stacks, shadow writes) would be
// done in memory the daemon is using at the same time.
#define CHILD_CODE __attribute__((always_inline, no_sanitize("address", "undefined"))) inline
#if defined(__x86_64__)
CHILD_CODE long sys(long nr, long a = 0, long b = 0, long c = 0, long d = 0) {
  long ret;
  register long r10 asm("r10") = d;
  asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
CHILD_CODE long sys(long nr, long a = 0, long b = 0, long c = 0, long d = 0) {
  register long x8 asm("x8") = nr;
  register long x0 asm("x0") = a;
  register long x1 asm("x1") = b;
  register long x2 asm("x2") = c;
  register long x3 asm("x3") = d;
  asm volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
  return x0;
}
#else
CHILD_CODE long sys(long nr, long a = 0, long b = 0, long c = 0, long d = 0) {
  const long r = ::syscall(nr, a, b, c, d);
  return r < 0 ? -errno : r;
}
#endif

template <typename T>
CHILD_CODE long arg(T v) {
  if constexpr (std::is_pointer_v<T>) return reinterpret_cast<long>(v);
  else return static_cast<long>(v);
}

[[noreturn]] CHILD_CODE void fail(Plan* plan, int report_fd, const char* step, long ret) {
  plan->err = static_cast<int>(-ret);
  plan->failed_step = step;
  if (report_fd >= 0) {
    const Report r{static_cast<int>(-ret), step};
    // A pipe write this small is atomic; if it fails the parent sees end of file
    // and then the exit status 127.
    sys(SYS_write, report_fd, arg(&r), sizeof r);
  }
  for (;;) sys(SYS_exit_group, 127);
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

// The directory an fd names, for messages only.
std::string fd_path(int fd) {
  char buf[4096];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
  if (n > 0) return std::string(buf, static_cast<std::size_t>(n));
  std::string named("fd ");
  named += std::to_string(fd);
  return named;
}

Result<std::pair<Fd, Fd>> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Result<std::pair<Fd, Fd>>::failure(errno);
  return std::pair<Fd, Fd>(Fd(fds[0]), Fd(fds[1]));
}

}  // namespace

__attribute__((no_sanitize("address", "undefined"))) int main(void* p) {
  auto* plan = static_cast<Plan*>(p);
  long r = 0;
  // Moved above the targets below: the plan may be shared with the daemon, so the
  // number it moves to is kept here.
  int report_fd = plan->report_fd;

  // Into the service's cgroup first, while every fd is still where the parent
  // left it (close_range below would drop the cgroup.procs fd), and before any
  // step that could fail: a half-started child is the cgroup's too. The kernel
  // charges the move to this process alone: CLONE_VM shares memory, not the
  // thread group, so the daemon stays where it is.
  if (plan->cgroup_procs >= 0 && (r = sys(SYS_write, plan->cgroup_procs, arg("0"), 1)) < 0)
    fail(plan, report_fd, "cgroup", r);

  // Before any other fd operation: the table is still the daemon's own. Copying
  // only its low slots keeps a spawn O(1) in the number of fds the daemon holds.
  if (plan->unshare_below > 0 &&
      (r = sys(SYS_close_range, plan->unshare_below, ~0U, CLOSE_RANGE_UNSHARE)) != 0)
    fail(plan, report_fd, "close_range", r);

  // Dispositions set to "ignore" survive exec (SIGPIPE, or SIGHUP under nohup);
  // a service must start with the defaults. Handlers are reset by exec itself.
  // All zero is SIG_DFL with no flags in the kernel's struct on every layout.
  const unsigned long dfl[4] = {0, 0, 0, 0};
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sys(SYS_rt_sigaction, sig, arg(dfl), 0, 8);  // EINVAL for NSIG > kernel's: harmless
  }
  // New session: the service leads its own process group, so the stop signal can
  // reach everything it forks, and our terminal's signals never reach it.
  if ((r = sys(SYS_setsid)) < 0) fail(plan, report_fd, "setsid", r);

  // sd_listen_fds() checks LISTEN_PID against getpid(): our pid, known only here.
  // Written into the parent's buffer, which it leaves alone until we exec or fail.
  if (plan->listen_pid) {
    long pid = sys(SYS_getpid);
    char digits[kPidDigits];
    std::size_t n = 0;
    do {
      digits[n++] = static_cast<char>('0' + pid % 10);
      pid /= 10;
    } while (pid > 0 && n < kPidDigits);
    for (std::size_t i = 0; i < n; ++i) plan->listen_pid[i] = digits[n - 1 - i];
    plan->listen_pid[n] = '\0';
  }

  // Move every fd we hand over above the target range first, so that placing one
  // cannot clobber another that happens to sit on a target number.
  int highest_target = 2;
  for (std::size_t i = 0; i < plan->extra_count; ++i)
    if (plan->extra[i].second > highest_target) highest_target = plan->extra[i].second;
  // The report pipe too, and it is the one fd above the targets that stays open.
  if (report_fd >= 0 && report_fd <= highest_target) {
    if ((r = sys(SYS_fcntl, report_fd, F_DUPFD_CLOEXEC, highest_target + 1)) < 0) fail(plan, report_fd, "dup", r);
    report_fd = static_cast<int>(r);
  }
  int moved_std[3];
  for (int i = 0; i < 3; ++i) {
    moved_std[i] = -1;
    if (plan->stdio_src[i] < 0) continue;
    if ((r = sys(SYS_fcntl, plan->stdio_src[i], F_DUPFD_CLOEXEC, highest_target + 1)) < 0) fail(plan, report_fd, "dup", r);
    moved_std[i] = static_cast<int>(r);
  }
  int moved_extra[kMaxExtraFds];
  if (plan->extra_count > kMaxExtraFds) fail(plan, report_fd, "extra fds", -EMFILE);
  for (std::size_t i = 0; i < plan->extra_count; ++i) {
    if ((r = sys(SYS_fcntl, plan->extra[i].first, F_DUPFD_CLOEXEC, highest_target + 1)) < 0) fail(plan, report_fd, "dup", r);
    moved_extra[i] = static_cast<int>(r);
  }
  // dup3 clears close-on-exec on the target, which is exactly the set we keep
  // (the moved fds never sit on a target, so dup3's EINVAL for equal fds cannot occur).
  for (int i = 0; i < 3; ++i)
    if (moved_std[i] >= 0 && (r = sys(SYS_dup3, moved_std[i], i, 0)) < 0) fail(plan, report_fd, "dup2", r);
  for (std::size_t i = 0; i < plan->extra_count; ++i)
    if ((r = sys(SYS_dup3, moved_extra[i], plan->extra[i].second, 0)) < 0) fail(plan, report_fd, "dup2", r);
  // Whitelist: 0-2 and the extra targets stay, every other fd goes. The rest of
  // ours are close-on-exec already, but fds the daemon inherited may not be.
  for (int fd = 3; fd <= highest_target; ++fd) {
    bool keep = false;
    for (std::size_t i = 0; i < plan->extra_count; ++i) keep |= plan->extra[i].second == fd;
    if (!keep) sys(SYS_close, fd);
  }
  if (report_fd >= 0) {
    const auto report = static_cast<unsigned>(report_fd);
    if (report > static_cast<unsigned>(highest_target) + 1) sys(SYS_close_range, highest_target + 1, report - 1, 0);
    sys(SYS_close_range, report + 1, ~0U, 0);
  } else {
    sys(SYS_close_range, highest_target + 1, ~0U, 0);
  }

  for (std::size_t i = 0; i < plan->rlimit_count; ++i)
    if ((r = sys(SYS_prlimit64, 0, plan->rlimits[i].first, arg(&plan->rlimits[i].second), 0)) < 0)
      fail(plan, report_fd, "setrlimit", r);
  // Groups before gid before uid: once the uid changes we may no longer change groups.
  // Raw calls set the credentials of this process alone, as the child needs.
  if (plan->set_gid) {
    if ((r = sys(SYS_setgroups, static_cast<long>(plan->group_count), arg(plan->groups))) < 0)
      fail(plan, report_fd, "setgroups", r);
    if ((r = sys(SYS_setgid, plan->gid)) < 0) fail(plan, report_fd, "setgid", r);
  }
  if (plan->set_ids && (r = sys(SYS_setuid, plan->uid)) < 0) fail(plan, report_fd, "setuid", r);
  if (plan->working_dir && (r = sys(SYS_chdir, arg(plan->working_dir))) < 0) fail(plan, report_fd, "chdir", r);

  const unsigned long none = 0;
  sys(SYS_rt_sigprocmask, SIG_SETMASK, arg(&none), 0, 8);
  r = sys(SYS_execve, arg(plan->path), arg(plan->argv), arg(plan->envp));
  fail(plan, report_fd, "exec", r);
}

char* stack_top() {
  static std::unique_ptr<char[]> stack(new char[kChildStackSize]);
  // Stacks grow down on every architecture we target; keep 16-byte alignment.
  // Rounded down by pointer arithmetic, so the result keeps `stack`'s provenance.
  char* top = stack.get() + kChildStackSize;
  return top - (reinterpret_cast<std::uintptr_t>(top) & std::uintptr_t{15});
}

Result<void> prepare(const SpawnOptions& opts, Prepared& p, std::string* detail) {
  auto fail_with = [&](int err, const std::string& what) {
    if (detail) *detail = what + ": " + std::strerror(err);
    return Result<void>::failure(err);
  };
  if (opts.argv.empty() || opts.argv[0].empty()) return fail_with(EINVAL, "exec");
  p.path = find_in_path(opts.argv[0], opts.env);
  if (p.path.empty()) return fail_with(ENOENT, "exec " + opts.argv[0]);

  for (const auto& a : opts.argv) p.argv.push_back(const_cast<char*>(a.c_str()));
  p.argv.push_back(nullptr);
  if (opts.listen_pid) {
    Environment env = opts.env;
    env.erase("LISTEN_PID");
    p.env_entries = environment_entries(env);
    // Last, so no later push_back moves it: the child writes into its buffer.
    p.env_entries.push_back("LISTEN_PID=" + std::string(kPidDigits + 1, '\0'));
  } else {
    p.env_entries = environment_entries(opts.env);
  }
  for (const auto& e : p.env_entries) p.envp.push_back(const_cast<char*>(e.c_str()));
  p.envp.push_back(nullptr);

  Plan& plan = p.plan;
  const SpawnOptions::Stdio modes[3] = {opts.stdin_mode, opts.stdout_mode, opts.stderr_mode};
  for (int i = 0; i < 3; ++i) {
    switch (modes[i]) {
      case SpawnOptions::Stdio::inherit:
        break;
      case SpawnOptions::Stdio::null:
        if (!p.dev_null) p.dev_null.reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
        if (!p.dev_null) return fail_with(errno, "open /dev/null");
        plan.stdio_src[i] = p.dev_null.get();
        break;
      case SpawnOptions::Stdio::pipe: {
        auto pipe = make_pipe();
        if (!pipe) return fail_with(pipe.error(), "pipe");
        // The daemon's end is non-blocking so the ring can poll it instead of
        // parking a kernel worker thread in a blocking read; the child's end stays
        // blocking, as programs expect of stdout.
        Fd& ours = i == 0 ? pipe->second : pipe->first;
        Fd& theirs = i == 0 ? pipe->first : pipe->second;
        ::fcntl(ours.get(), F_SETFL, O_NONBLOCK);
        p.parent_ends[i] = std::move(ours);
        p.child_ends[i] = std::move(theirs);
        plan.stdio_src[i] = p.child_ends[i].get();
        break;
      }
    }
  }
  if (opts.cgroup_fd >= 0) {
    // Opened here, not in the child: an open is a path walk the child would do
    // on our memory; a write of one byte is all it has to do.
    p.cgroup_procs.reset(::openat(opts.cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC));
    if (!p.cgroup_procs) return fail_with(errno, "cgroup " + fd_path(opts.cgroup_fd));
    plan.cgroup_procs = p.cgroup_procs.get();
  }
  plan.path = p.path.c_str();
  plan.argv = p.argv.data();
  plan.envp = p.envp.data();
  plan.working_dir = opts.working_dir.empty() ? nullptr : opts.working_dir.c_str();
  plan.extra_count = opts.extra_fds.size();
  if (opts.listen_pid) plan.listen_pid = p.env_entries.back().data() + std::string_view("LISTEN_PID=").size();
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
  return {};
}

std::string describe_failure(const char* step, int err, const std::string& path, const SpawnOptions& opts) {
  std::string what = step ? step : "spawn";
  if (what == "exec") what += " " + path;
  else if (what == "chdir") what += " " + opts.working_dir;
  else if (what == "cgroup") what.append(" ").append(fd_path(opts.cgroup_fd));
  return what + ": " + std::strerror(err);
}

}  // namespace runtime::child
