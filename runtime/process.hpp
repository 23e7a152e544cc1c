#pragma once
// Child processes: spawned with a pidfd, waited for through the ring, reaped with
// waitid(P_PIDFD). There is no SIGCHLD handler anywhere: a pidfd names exactly one
// process, so a recycled pid can never be waited for or signalled by mistake.
#include <sys/resource.h>
#include <sys/types.h>

#include <optional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "runtime/fd.hpp"
#include "runtime/environment.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace runtime {

struct SpawnOptions {
  enum class Stdio { null, pipe, inherit };
  // argv[0] without a '/' is looked up in PATH (from `env`, else the daemon's).
  std::vector<std::string> argv;
  Environment env;               // the complete environment
  std::string working_dir;       // empty: the daemon's
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::vector<gid_t> groups;  // supplementary groups, set when gid is set
  std::vector<std::pair<int, rlimit>> rlimits;
  Stdio stdin_mode = Stdio::null;
  Stdio stdout_mode = Stdio::pipe;
  Stdio stderr_mode = Stdio::pipe;
  // Extra fds handed to the child: {fd in the daemon, number in the child}, e.g.
  // a readiness pipe as fd 3. Everything else above 2 is closed.
  std::vector<std::pair<int, int>> extra_fds;
  // LISTEN_PID=<the child's own pid> in its environment (socket activation,
  // sd_listen_fds(3)): only the child knows its pid before exec, so it writes it into
  // a slot prepare() reserved. Any LISTEN_PID in `env` is replaced.
  bool listen_pid = false;
  // A cgroup v2 directory (runtime/cgroup.hpp) the child joins before anything
  // else, so that even a child that fails half-way never runs outside it. -1: the
  // daemon's own cgroup. Failing to join is a spawn failure ("cgroup /sys/...: ...").
  int cgroup_fd = -1;
};

struct ExitStatus {
  bool signaled = false;
  int code = 0;  // exit code, or the signal number when signaled
  bool success() const noexcept { return !signaled && code == 0; }
  std::string describe() const;  // "exited with 3", "killed by SIGKILL"
};

class Process {
 public:
  // Starts the child. The call returns once the child has called execve (the
  // daemon is paused for that short while, as with posix_spawn). A failure before
  // or at exec comes back as its errno, with `detail` naming the step:
  // "exec /usr/bin/nope: No such file or directory".
  static Result<Process> spawn(const SpawnOptions& opts, std::string* detail = nullptr);

  // The same start without pausing the daemon: the child shares our memory (on a
  // stack of its own, raw system calls only) but not our wait, and the loop runs
  // on while it gets scheduled and execs; a failed step comes back as spawn()
  // reports it, read from a close-on-exec pipe through the ring. `opts` and
  // `detail` must outlive the await. ECANCELED on stop (the child is killed and
  // reaped). Under valgrind it is spawn().
  static Task<Result<Process>> start(const SpawnOptions& opts, std::string* detail = nullptr,
                                     std::stop_token stop = {});

  // Adopts a running process by pid (after a daemon restart), or by a pidfd that
  // was handed over across an exec of the daemon (`pidfd` valid). Its exit is seen
  // through the pidfd; whether its status can be read depends on whether it is
  // still our child (true across an exec in the same pid, false after a crash,
  // when init inherited it): probed with waitid(WNOWAIT), never assumed.
  static Result<Process> attach(pid_t pid, Fd pidfd = {});

  Process(Process&& o) noexcept = default;
  Process& operator=(Process&& o) noexcept = default;
  // An unreaped child of ours is killed and reaped here (blocking briefly): the
  // owner should have waited, but no zombie may outlive its owner.
  ~Process();

  pid_t pid() const noexcept { return pid_; }
  int pidfd() const noexcept { return pidfd_.get(); }
  bool reaped() const noexcept { return reaped_; }
  bool is_child() const noexcept { return child_; }

  // Pipe ends owned by this object (parent side, non-blocking, close-on-exec).
  Fd& stdin_pipe() noexcept { return stdin_; }
  Fd& stdout_pipe() noexcept { return stdout_; }
  Fd& stderr_pipe() noexcept { return stderr_; }

  // Resolves when the process has exited and (if ours) been reaped. For an
  // attached non-child the status is unknown: ECHILD. ECANCELED on stop.
  Task<Result<ExitStatus>> wait(std::stop_token stop = {});
  // Non-blocking reap; nullopt while still running.
  std::optional<ExitStatus> try_reap();

  // To the process itself through its pidfd (ESRCH once it is gone).
  Result<void> signal(int sig) const;
  // To its whole process group (the child leads a new session): a service that
  // forked helpers loses them too.
  Result<void> signal_group(int sig) const;

 private:
  Process() = default;
  pid_t pid_ = -1;
  Fd pidfd_;
  Fd stdin_, stdout_, stderr_;
  bool child_ = true;
  bool reaped_ = false;
  std::optional<ExitStatus> status_;
};

// Reserves a few low fd numbers (held on /dev/null, close-on-exec) through which
// Process::spawn hands stdio and one extra fd to the child. The child then shares
// the caller's fd table (CLONE_FILES) until its first step, close_range with
// CLOSE_RANGE_UNSHARE, takes a private copy of the numbers below the slots only:
// a spawn costs the same whether the daemon holds ten fds or ten thousand, instead
// of the kernel copying every fd into the child and the child closing them all.
// Call it early, while the lowest free numbers are low. Without it, for a spawn
// handing over more fds, or on a kernel before 5.9, the whole table is copied.
// Under valgrind it reserves nothing and returns false: valgrind's clone emulation
// knows only the fork, vfork and thread shapes and aborts on CLONE_VM|CLONE_FILES.
bool reserve_spawn_slots();

// "SIGTERM" for 15; "signal 99" when unknown.
std::string signal_name(int sig);

}  // namespace runtime
