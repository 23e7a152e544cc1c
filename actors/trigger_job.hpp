#pragma once
// One-shot jobs of webhook triggers (action = { run = [...], timeout = "5m" }): a child in its
// own process group, its stdout/stderr spliced into a LogStore exactly like a service's, killed
// with its whole group at the deadline. Everything is awaited on the ring; nothing blocks.
#include <chrono>
#include <stop_token>
#include <string>
#include <vector>

#include "actors/log_store.hpp"
#include "runtime/process.hpp"
#include "runtime/task.hpp"

namespace actors {

struct JobOutcome {
  bool spawned = false;
  std::string spawn_error;           // when !spawned
  runtime::ExitStatus status;        // when spawned
  bool timed_out = false;            // killed (SIGKILL to the group) at the deadline
  bool stopped = false;              // killed because the daemon is shutting down
  std::chrono::milliseconds duration{0};
  pid_t pid = -1;
};

// Runs opts.argv with opts.env (the complete environment) as opts' identity until it exits,
// `timeout` passes, or `stop` is requested; returns once the child is reaped and its output
// captured. Output goes through pipes to `logs`, written by the daemon: the job's user needs
// no access to the trigger's directory.
// A non-empty `input` is written to the job's stdin (a pipe, closed after it); otherwise stdin
// is /dev/null. `input` must outlive the call.
runtime::Task<JobOutcome> run_job(runtime::SpawnOptions opts, std::chrono::milliseconds timeout, LogStore& logs,
                                  std::stop_token stop, const std::string& input = {});

}  // namespace actors
