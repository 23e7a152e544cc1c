// The executor of an attached service (`attach = { pid_file = ... }`): the process is
// someone else's. launch() does not start anything; it finds the process the pid_file
// (or the operator) names, checks it is that process and not a recycled pid, and pins
// it with a pidfd. Its exit is seen through the pidfd; its status cannot be: only a
// parent can wait for a child's status, and Dockless is not its parent (ECHILD, the
// "exit status unknown" of the exited event).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>

#include "actors/executor.hpp"
#include "actors/state_store.hpp"

namespace actors {

namespace {

// /proc/PID/stat's state (field 3): 'Z' is a process that has exited and waits for
// its parent's wait; '\0' when it is gone.
char process_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return '\0';
  const std::size_t close = line.rfind(')');  // the command may hold spaces and parentheses
  return close == std::string::npos || close + 2 >= line.size() ? '\0' : line[close + 2];
}

// When the process started, in seconds since the epoch: btime (/proc/stat) plus its
// start ticks. Second-grained (btime is), which the caller allows for.
std::optional<double> started_at(std::uint64_t ticks) {
  std::ifstream in("/proc/stat");
  std::string key;
  long long btime = -1;
  while (in >> key) {
    if (key == "btime") {
      in >> btime;
      break;
    }
    in.ignore(1 << 16, '\n');
  }
  const long hz = ::sysconf(_SC_CLK_TCK);
  if (btime < 0 || hz <= 0) return std::nullopt;
  return static_cast<double>(btime) + static_cast<double>(ticks) / static_cast<double>(hz);
}

// The pid a pid file names: its first word, a positive number. Also the file's
// modification time, for the recycled-pid check.
std::optional<pid_t> read_pid_file(const std::string& path, double* mtime, std::string* error) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    *error = "pid_file " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  *mtime = static_cast<double>(st.st_mtim.tv_sec) + static_cast<double>(st.st_mtim.tv_nsec) / 1e9;
  std::ifstream in(path);
  long long pid = 0;
  if (!(in >> pid) || pid <= 1 || pid > INT32_MAX) {
    *error = "pid_file " + path + ": no pid in it";
    return std::nullopt;
  }
  return static_cast<pid_t>(pid);
}

class AttachedExecution final : public Execution {
 public:
  AttachedExecution(runtime::Process p, std::uint64_t ticks, const config::Attach& a, std::string from)
      : process_(std::move(p)), ticks_(ticks), attach_(a), from_(std::move(from)) {}

  pid_t pid() const override { return process_.pid(); }
  std::uint64_t pid_start_ticks() const override { return ticks_; }
  nlohmann::json describe() const override {
    return {{"pid", process_.pid()}, {"attached", true}, {"control", attach_.control},
            {"pid_file", attach_.pid_file}, {"from", from_}, {"exit_status", "unknown"}};
  }
  bool adopted() const override { return true; }  // recorded as "attached", not "started"
  // Not ours to capture: its output goes where its owner sent it.
  runtime::Fd take_stdout() override { return {}; }
  runtime::Fd take_stderr() override { return {}; }

  runtime::Task<runtime::Result<runtime::ExitStatus>> wait() override {
    wait_stop_ = std::stop_source();
    return process_.wait(wait_stop_.get_token());
  }
  // Only with attach.control (the API refuses otherwise, and the actor detaches
  // instead of stopping): the signal goes to the process, never to a group that is not
  // ours to take down.
  void stop(int sig, std::chrono::milliseconds) override {
    if (attach_.control && !process_.reaped()) (void)process_.signal(sig);
  }
  void kill() override { stop(SIGKILL, {}); }
  runtime::Result<void> signal(int sig) override {
    if (!attach_.control) return runtime::Result<void>::failure(EPERM);
    if (process_.reaped()) return runtime::Result<void>::failure(ESRCH);
    return process_.signal(sig);
  }
  void exited() override {}
  // Detached (the daemon exits, an upgrade, a read-only stop): it runs on; the next
  // launch finds it again through the pid_file.
  bool can_detach() const override { return true; }
  void detach() override { wait_stop_.request_stop(); }
  runtime::Task<void> close() override { co_return; }

 private:
  runtime::Process process_;
  std::uint64_t ticks_;
  config::Attach attach_;
  std::string from_;
  std::stop_source wait_stop_;
};

class AttachExecutor final : public Executor {
 public:
  std::string_view kind() const override { return "attach"; }

  runtime::Task<std::unique_ptr<Execution>> launch(LaunchRequest req, std::string* error) override {
    std::optional<Found> found = find(req, error);
    if (!found) co_return nullptr;
    co_return std::make_unique<AttachedExecution>(std::move(found->process), found->ticks, *req.spec->attach,
                                                  std::move(found->from));
  }

 private:
  struct Found {
    runtime::Process process;
    std::uint64_t ticks;
    std::string from;
  };

  static std::optional<Found> find(const LaunchRequest& req, std::string* error) {
    const config::Attach& a = *req.spec->attach;
    double mtime = 0;
    pid_t pid = req.attach_pid;
    const std::string from = pid ? "operator" : "pid_file";
    if (!pid) {
      auto named = read_pid_file(a.pid_file, &mtime, error);
      if (!named) return std::nullopt;
      pid = *named;
    }
    const std::string which = "pid " + std::to_string(pid) + (req.attach_pid ? "" : " (pid_file " + a.pid_file + ")");
    if (pid == ::getpid()) {
      *error = which + " is the daemon itself";
      return std::nullopt;
    }
    const std::uint64_t ticks = process_start_ticks(pid);
    if (ticks == 0 || process_state(pid) == 'Z') {
      *error = which + " is not running";
      return std::nullopt;
    }
    // A recycled pid is never attached: the pid of the process attached before (or
    // recorded in state.json) with another start time is someone else now ...
    if (pid == req.known_pid && req.known_ticks != 0 && ticks != req.known_ticks) {
      *error = which + " was recycled: it is not the process attached before (start time differs)";
      return std::nullopt;
    }
    // ... and so is a process that started after its pid file was last written: the
    // file is older than the process, so it was written for an earlier one. Two seconds
    // of slack for btime's whole seconds and the owner's write after its fork.
    if (!req.attach_pid) {
      auto started = started_at(ticks);
      if (started && *started > mtime + 2.0) {
        *error = which + " started after the pid_file was written: a stale file naming a recycled pid";
        return std::nullopt;
      }
    }
    runtime::Result<runtime::Process> p = runtime::Process::attach(pid);
    if (!p) {
      *error = "pidfd_open " + std::to_string(pid) + ": " + p.message();
      return std::nullopt;
    }
    // Only the pidfd pins the process: checked again once it is held, so the pid
    // cannot have been recycled between the first look and pidfd_open.
    if (process_start_ticks(pid) != ticks) {
      *error = which + " exited while being attached";
      return std::nullopt;
    }
    return Found{std::move(p).value(), ticks, from};
  }
};

}  // namespace

std::unique_ptr<Executor> make_attach_executor() { return std::make_unique<AttachExecutor>(); }

}  // namespace actors
