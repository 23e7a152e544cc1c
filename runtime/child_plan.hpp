#pragma once
// Internal to runtime/process.cpp (spawn and start): what a spawn
// prepares in the daemon and what the child runs between clone and execve.
#include <sys/resource.h>
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "runtime/fd.hpp"
#include "runtime/process.hpp"
#include "runtime/result.hpp"

namespace runtime::child {

// Everything the child needs, prepared by the parent: between clone and exec the
// child may share our memory (CLONE_VM) and must not allocate.
struct Plan {
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
  // Non-null: the digits of an environment entry "LISTEN_PID=...", which the child
  // fills with its own pid (room for kPidDigits and a NUL).
  char* listen_pid = nullptr;
  // >= 0: the child writes "0" (itself) to this cgroup.procs fd, its first step.
  int cgroup_procs = -1;
  // > 0: the child shares our fd table (CLONE_FILES) and first takes a private copy
  // of fds [0, unshare_below) only; everything it is given sits in that range.
  unsigned unshare_below = 0;
  // >= 0 (Process::start): the parent does not wait for the child (no CLONE_VFORK),
  // so a failed step is reported as a Report written here; exec closes it
  // (close-on-exec), so end of file on the other end means the exec happened.
  int report_fd = -1;
  // Written by the child when a step fails; read by the parent after clone returns
  // when the child shares our memory (CLONE_VFORK: it has exec'd or exited by then).
  int err = 0;
  const char* failed_step = nullptr;
};

inline constexpr std::size_t kPidDigits = 20;
// Fds handed over besides stdio (SpawnOptions::extra_fds), at most.
inline constexpr std::size_t kMaxExtraFds = 48;

// What a started child writes on report_fd. `step` points at a string literal of
// this program, which the child shares with us (CLONE_VM).
struct Report {
  int err = 0;
  const char* step = nullptr;
};

// Runs in the child, on stack_top()'s stack (spawn) or a stack of its own (start).
// Only system calls.
int main(void* p);

// spawn()'s child stack, reused: with CLONE_VFORK the child has exec'd or exited
// before the next clone. start() gives each child its own (it does not wait).
char* stack_top();

// The parent side, prepared before clone: the resolved path, argv/envp arrays, the
// pipes. Not movable once prepare() filled it (the plan points into it).
struct Prepared {
  std::string path;
  std::vector<char*> argv, envp;
  std::vector<std::string> env_entries;
  Fd parent_ends[3];  // stdin, stdout, stderr pipes (daemon side), when piped
  Fd child_ends[3];
  Fd dev_null;
  Fd cgroup_procs;  // SpawnOptions::cgroup_fd's cgroup.procs, opened for the child
  Plan plan;
  Prepared() = default;
  Prepared(const Prepared&) = delete;
  Prepared& operator=(const Prepared&) = delete;
};

// Fills `p` from `opts` (plan.extra is left to the caller). A failure comes back as
// its errno, with `detail` set the way Process::spawn reports it.
Result<void> prepare(const SpawnOptions& opts, Prepared& p, std::string* detail);

// "exec /usr/bin/nope: No such file or directory" for a step that failed in the child.
std::string describe_failure(const char* step, int err, const std::string& path, const SpawnOptions& opts);

}  // namespace runtime::child
