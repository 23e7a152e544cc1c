#include "actors/trigger_job.hpp"

#include <poll.h>
#include <signal.h>

#include <optional>
#include <stop_token>

#include "actors/log_actor.hpp"
#include "runtime/ops_rw.hpp"
#include "runtime/ops_wait.hpp"
#include "runtime/scope.hpp"

namespace actors {
namespace {

using runtime::Task;

// Fires `deadline` when the timeout passes, unless `cancel` comes first.
Task<void> deadline_timer(std::chrono::milliseconds timeout, std::stop_source* deadline, std::stop_token cancel) {
  runtime::Result<int> r = co_await runtime::sleep_for(timeout).stop_on(std::move(cancel));
  if (r.ok() || r.error() == ETIME) deadline->request_stop();
}

constexpr std::chrono::milliseconds kCaptureGrace{2000};

Task<void> stop_after(std::chrono::milliseconds delay, runtime::Scope* scope, std::stop_token cancel) {
  runtime::Result<int> r = co_await runtime::sleep_for(delay).stop_on(std::move(cancel));
  if (r.ok() || r.error() == ETIME) scope->request_stop();
}

Task<void> capture_stream(LogStore* store, Stream s, runtime::Fd fd, std::stop_token stop) {
  (void)co_await capture(*store, s, std::move(fd), std::move(stop));
}

// The pipe is non-blocking: a job that does not read its stdin waits on POLLOUT through the
// ring, never blocks the daemon. EPIPE (the job closed stdin) ends the write quietly.
Task<void> feed_stdin(runtime::Fd fd, const std::string* input, std::stop_token stop) {
  std::string_view rest = *input;
  while (!rest.empty()) {
    runtime::Result<int> w = co_await runtime::write(fd.get(), std::as_bytes(std::span(rest.data(), rest.size())));
    if (w.ok()) {
      rest.remove_prefix(static_cast<std::size_t>(w.value()));
    } else if (w.error() == EAGAIN) {
      if (!co_await runtime::poll(fd.get(), POLLOUT).stop_on(stop)) co_return;
    } else {
      co_return;
    }
  }
}

}  // namespace

Task<JobOutcome> run_job(runtime::SpawnOptions opts, std::chrono::milliseconds timeout, LogStore& logs,
                         std::stop_token stop, const std::string& input) {
  JobOutcome out;
  if (!input.empty()) opts.stdin_mode = runtime::SpawnOptions::Stdio::pipe;
  std::string detail;
  const auto started = std::chrono::steady_clock::now();
  runtime::Result<runtime::Process> proc = runtime::Process::spawn(opts, &detail);
  if (!proc) {
    out.spawn_error = detail.empty() ? proc.message() : detail;
    co_return out;
  }
  out.spawned = true;
  out.pid = proc->pid();

  // Capture runs until EOF (every holder of the pipes is gone), so it is joined after the
  // group is dead; its stop token only serves the daemon's shutdown.
  runtime::Scope children;
  children.spawn(capture_stream(&logs, Stream::out, std::move(proc->stdout_pipe()), children.token()), "job/stdout");
  children.spawn(capture_stream(&logs, Stream::err, std::move(proc->stderr_pipe()), children.token()), "job/stderr");
  if (!input.empty()) children.spawn(feed_stdin(std::move(proc->stdin_pipe()), &input, children.token()), "job/stdin");

  // wait() ends on exit, or when the deadline or the daemon's stop fires.
  std::stop_source wake;
  std::stop_source timer_cancel;
  std::stop_source deadline;
  runtime::Scope timer;
  timer.spawn(deadline_timer(timeout, &deadline, timer_cancel.get_token()), "job/deadline");
  std::stop_callback on_deadline(deadline.get_token(), [&] { wake.request_stop(); });
  std::stop_callback on_stop(stop, [&] { wake.request_stop(); });

  runtime::Result<runtime::ExitStatus> st = co_await proc->wait(wake.get_token());
  if (!st) {
    out.timed_out = deadline.stop_requested();
    out.stopped = !out.timed_out;
    (void)proc->signal_group(SIGKILL);
    (void)proc->signal(SIGKILL);
    st = co_await proc->wait();
  } else {
    // The leader is gone; helpers it left in the group must not outlive the job.
    (void)proc->signal_group(SIGKILL);
  }
  timer_cancel.request_stop();
  co_await timer.join();
  if (st) out.status = *st;
  if (out.stopped) children.request_stop();
  // A helper that left the group (setsid) may still hold the pipes: capture gets a grace
  // period to drain, then stops, so the trigger is never stuck "running".
  std::stop_source grace_cancel;
  runtime::Scope grace;
  grace.spawn(stop_after(kCaptureGrace, &children, grace_cancel.get_token()), "job/grace");
  co_await children.join();
  grace_cancel.request_stop();
  co_await grace.join();
  out.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  co_return out;
}

}  // namespace actors
