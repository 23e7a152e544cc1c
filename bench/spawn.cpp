// Benchmark 3: spawn and reap /bin/true, K children in flight, through
// runtime::Process (clone(CLONE_VM|CLONE_VFORK|CLONE_PIDFD) + wait through the
// ring) against posix_spawn + waitpid on one thread with the same K in flight.
// Both give the child /dev/null as stdio and an empty environment.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "bench.hpp"
#include "runtime/channel.hpp"
#include "runtime/fd.hpp"
#include "runtime/process.hpp"
#include "runtime/reactor.hpp"

namespace bench {

namespace {

constexpr const char* kTrue = "/bin/true";

// Time spent inside the spawn call itself (the parent is paused until exec),
// summed over a run: the split between "start" and "wait for exit + reap".
struct Phases {
  double spawn_s = 0;
  std::uint64_t children = 0;
  double per_child_us() const { return children ? spawn_s / static_cast<double>(children) * 1e6 : 0; }
};

struct Shared {
  std::uint64_t remaining;
  Clock::time_point deadline;
  std::uint64_t done = 0;
  std::string error;
  Phases phases;
  runtime::SpawnOptions opts;
  runtime::Channel<int> finished;
  explicit Shared(std::uint64_t n, double cap, int k)
      : remaining(n),
        deadline(Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(cap))),
        finished(static_cast<std::size_t>(k)) {
    opts.argv = {kTrue};
    opts.stdin_mode = opts.stdout_mode = opts.stderr_mode = runtime::SpawnOptions::Stdio::null;
  }
};

// Errors are recorded, not thrown: the root must still collect every spawner.
runtime::Task<void> spawner(Shared& s) {
  while (s.error.empty() && s.remaining > 0 && Clock::now() < s.deadline) {
    --s.remaining;
    std::string detail;
    const auto t0 = Clock::now();
    auto proc = runtime::Process::spawn(s.opts, &detail);
    s.phases.spawn_s += seconds_since(t0);
    ++s.phases.children;
    if (!proc) {
      s.error = "Process::spawn: " + detail;
      break;
    }
    auto status = co_await proc->wait();
    if (!status || !status->success()) {
      s.error = "wait: " + (status ? status->describe() : status.message());
      break;
    }
    ++s.done;
  }
  s.finished.try_send(0);
}

runtime::Task<double> spawn_root(std::uint64_t n, double cap, int k, Phases* phases) {
  Shared s(n, cap, k);
  const auto t0 = Clock::now();
  for (int i = 0; i < k; ++i) runtime::spawn(spawner(s), "spawner");
  for (int i = 0; i < k; ++i) (void)co_await s.finished.recv();
  const double rate = static_cast<double>(s.done) / seconds_since(t0);
  if (!s.error.empty()) throw std::runtime_error(s.error);
  *phases = s.phases;
  co_return rate;
}

double dockless_spawn(std::uint64_t n, double cap, int k, bool waitid_op, Phases* phases) {
  runtime::Reactor::Options o;
  o.allow_waitid_op = waitid_op;
  runtime::Reactor r(o);
  return r.run(spawn_root(n, cap, k, phases));
}

double posix_spawn_loop(std::uint64_t n, double cap, int k, Phases* phases) {
  runtime::Fd dev_null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!dev_null) fail("open /dev/null");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  for (int fd = 0; fd < 3; ++fd) posix_spawn_file_actions_adddup2(&fa, dev_null.get(), fd);
  char* argv[] = {const_cast<char*>(kTrue), nullptr};
  char* envp[] = {nullptr};
  Phases ph;
  const auto t0 = Clock::now();
  std::uint64_t started = 0, done = 0;
  int in_flight = 0;
  std::string error;
  auto start_one = [&] {
    pid_t pid;
    const auto s0 = Clock::now();
    int rc = posix_spawn(&pid, kTrue, &fa, nullptr, argv, envp);
    ph.spawn_s += seconds_since(s0);
    ++ph.children;
    if (rc != 0) {
      error = std::string("posix_spawn: ") + std::strerror(rc);
      return;
    }
    ++started;
    ++in_flight;
  };
  while (error.empty() && in_flight < k && started < n) start_one();
  while (in_flight > 0) {
    int status = 0;
    // Only our children exist in this process at this point, so "any child" is ours.
    pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      error = std::string("waitpid: ") + std::strerror(errno);
      break;
    }
    --in_flight;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) error = "child failed";
    ++done;
    if (error.empty() && started < n && seconds_since(t0) < cap) start_one();
  }
  const double rate = static_cast<double>(done) / seconds_since(t0);
  posix_spawn_file_actions_destroy(&fa);
  if (!error.empty()) throw std::runtime_error(error);
  *phases = ph;
  return rate;
}

std::string phase_note(int k, const Phases& d, const Phases& b) {
  char buf[200];
  std::snprintf(buf, sizeof buf,
                "spawn K=%d: time inside the spawn call per child: Process::spawn %.0f us, "
                "posix_spawn %.0f us (last run)",
                k, d.per_child_us(), b.per_child_us());
  return buf;
}

}  // namespace

std::vector<Row> run_spawn(const Config& cfg) {
  const std::uint64_t n = cfg.quick ? 1000 : 4000;
  const double cap = cfg.quick ? 0.4 : 1.2;
  bool waitid_op;
  {
    runtime::Reactor probe;
    waitid_op = probe.features().waitid_op;
  }
  std::vector<Row> rows;
  for (int k : {1, 8}) {
    Phases dp, bp;
    Row row = compare(
        "spawn+reap /bin/true /s, K=" + std::to_string(k), Unit::rate, cfg,
        [&] { return dockless_spawn(n, cap, k, true, &dp); }, "posix_spawn+waitpid",
        [&] { return posix_spawn_loop(n, cap, k, &bp); }, Goal::ratio(1.0));
    row.note = phase_note(k, dp, bp);
    rows.push_back(std::move(row));
  }
  // Kernels before 6.7 (Raspberry Pi OS 6.1) take the pidfd-poll + waitid path.
  if (waitid_op) {
    Phases dp, bp;
    rows.push_back(compare(
        "spawn+reap K=8, pidfd-poll path /s", Unit::rate, cfg,
        [&] { return dockless_spawn(n, cap, 8, false, &dp); }, "posix_spawn+waitpid",
        [&] { return posix_spawn_loop(n, cap, 8, &bp); }, Goal::ratio(1.0)));
  }
  return rows;
}

}  // namespace bench
