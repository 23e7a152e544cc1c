#include "actors/adopt.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "actors/state_store.hpp"

namespace actors {

// Declared here, defined with the native executor (one Execution class for spawned
// and adopted instances).
std::unique_ptr<Execution> make_process_execution(runtime::Process p, std::vector<std::string> command,
                                                  std::string adopted_from, std::optional<runtime::Cgroup> cgroup);

runtime::Fd reopen_pipe(pid_t pid, int fd, bool for_writing) {
  const std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISFIFO(st.st_mode)) return {};
  // O_NONBLOCK: opening a pipe's write side blocks until a reader exists otherwise,
  // and capture needs a non-blocking read end anyway.
  return runtime::Fd(::open(path.c_str(), (for_writing ? O_WRONLY : O_RDONLY) | O_NONBLOCK | O_CLOEXEC));
}

void recover_pipes(AdoptInfo& info, bool with_stdin) {
  info.out = reopen_pipe(info.pid, 1, false);
  info.err = reopen_pipe(info.pid, 2, false);
  if (with_stdin) info.in = reopen_pipe(info.pid, 0, true);
  std::string got;
  if (info.out) got += "stdout";
  if (info.err) got += got.empty() ? "stderr" : " stderr";
  info.output = got.empty() ? "lost (no pipe to reopen)" : got + " reopened through /proc";
}

std::unique_ptr<Execution> adopt_execution(AdoptInfo& info, std::string* error, const runtime::CgroupTree* cgroups) {
  // The start time is checked before and after the pidfd exists: before, so a pid
  // recycled since the snapshot is never opened; after, because only a pidfd pins
  // the process (the pid could be recycled between the check and pidfd_open).
  if (info.start_ticks == 0 || process_start_ticks(info.pid) != info.start_ticks) {
    *error = "pid " + std::to_string(info.pid) + " is gone or is another process now";
    return nullptr;
  }
  runtime::Result<runtime::Process> p = runtime::Process::attach(info.pid, std::move(info.pidfd));
  if (!p) {
    *error = "pidfd_open " + std::to_string(info.pid) + ": " + p.message();
    return nullptr;
  }
  if (process_start_ticks(info.pid) != info.start_ticks) {
    *error = "pid " + std::to_string(info.pid) + " exited while being adopted";
    return nullptr;
  }
  p->stdout_pipe() = std::move(info.out);
  p->stderr_pipe() = std::move(info.err);
  p->stdin_pipe() = std::move(info.in);
  // Its cgroup, found again where the instance sits (it may be a predecessor's
  // svc.NAME under the same BASE): a stop still takes everything in it.
  std::optional<runtime::Cgroup> cgroup;
  if (cgroups) cgroup = cgroups->service_of(info.pid);
  return make_process_execution(std::move(p).value(), info.command, info.origin, std::move(cgroup));
}

}  // namespace actors
