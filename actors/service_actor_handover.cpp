// Who holds the workload (CustodyMachine's actions) and taking one over: the
// daemon exiting (shutdown), the upgrade's hand-over and the resume after a
// failed exec, and adopting an instance a previous daemon or image left running.
#include "actors/service_actor.hpp"

#include <algorithm>

#include "actors/service_env.hpp"

namespace actors {

using runtime::Task;

Workload ServiceActor::workload() const {
  return {alive(), alive() && execution_->handover_pidfd() >= 0, alive() && execution_->can_detach()};
}

// `rec` is the hand-over's record (CustodyEvent::handover only).
Task<void> ServiceActor::feed_custody(CustodyEvent e, HandoverRecord* rec) {
  const CustodyStep step = custody_.handle(e, workload());
  for (CustodyAction a : step.actions) {
    switch (a) {
      case CustodyAction::stop:
        // The daemon exiting leaves an attached process running, control or not.
        if (spec_->attach) co_await release_attached();
        co_await feed({EventKind::stop});
        break;
      case CustodyAction::cancel_timer: cancel_timer(); break;
      case CustodyAction::suspend_watching:
        if (rec) co_await suspend_watching(*rec);
        break;
      case CustodyAction::detach_for_handover: co_await detach_for_handover(); break;
      case CustodyAction::fill_record:
        if (rec) fill_record(*rec);
        break;
      case CustodyAction::resume_watching: resume_watching(); break;
      case CustodyAction::relaunch: co_await do_spawn(); break;  // the executor's launch adopts the container
      case CustodyAction::rearm_backoff: rearm_backoff(); break;
    }
  }
}

// The upgrade, native: stop watching, leave the instance alone. The exit waiter
// ends through suspend_wait(); capture drains what is in the pipes and stops, so
// what a service writes from now on waits in the pipe for the next image's capture.
Task<void> ServiceActor::suspend_watching(HandoverRecord& rec) {
  execution_->suspend_wait();
  if (incarnation_) {
    incarnation_->request_stop();
    co_await incarnation_->join();
    incarnation_.reset();
  }
  stdin_queue_.reset();
  // TRICKY: the exit may have won the race with suspend_wait(): then it is reaped
  // and its ProcessExited is in the mailbox (ignored until resume), and nothing is
  // handed over.
  if (execution_->handover_pidfd() >= 0) {
    rec.pid = execution_->pid();
    rec.start_ticks = execution_->pid_start_ticks();
    rec.pidfd = execution_->handover_pidfd();
    rec.out = out_copy_.get();
    rec.err = err_copy_.get();
    rec.in = in_copy_.get();
  }
}

// The upgrade, a container: left running, and the next image's launch adopts it as
// after a crash.
Task<void> ServiceActor::detach_for_handover() {
  record(EventType::detached, execution_->describe());
  execution_->detach();
  co_await drain_incarnation();
}

void ServiceActor::fill_record(HandoverRecord& rec) {
  rec.executor = status_.executor;
  rec.state = std::string(to_string(machine_.state()));
  rec.restarts = machine_.restarts();
  rec.ports = status_.ports;
  rec.sockets = sockets_.handover();
  if (status_.started_at)
    rec.started_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              status_.started_at->time_since_epoch()).count();
  rec.done = true;
}

// The hand-over cancelled a pending backoff (it must not spawn an instance the
// record does not name); after a failed exec the wait starts over.
void ServiceActor::rearm_backoff() {
  if (machine_.state() == State::backoff)
    arm_timer(std::max(status_.next_restart_in, std::chrono::milliseconds(1)), EventKind::backoff_elapsed);
}

// Takes over an instance that outlived the previous daemon (crash) or image
// (upgrade). Only a fresh actor adopts; when the instance turns out to be gone the
// service starts as it would have without it.
Task<void> ServiceActor::do_adopt(AdoptInfo& info) {
  if (machine_.state() != State::stopped || execution_ || retired_) co_return;
  // Attached: only remembered; the start that follows reads the pid_file and refuses
  // that pid if it is another process now.
  if (spec_->attach) {
    attach_known_pid_ = info.pid;
    attach_known_ticks_ = info.start_ticks;
    co_return;
  }
  executor_ = make_executor(*spec_, ctx_.cgroups);
  status_.executor = executor_->kind();
  // The listening sockets the previous image held (the instance has copies): kept, so
  // a restart after the upgrade binds nothing and no client meets a closed port. Taken
  // before the instance, so that even a start in its place uses them.
  if (!info.sockets.empty()) {
    sockets_.adopt(spec_->sockets, std::move(info.sockets));
    sockets_stored_ = sockets_.version();  // the previous image stored them (under systemd)
  }
  std::string error;
  std::unique_ptr<Execution> ex = adopt_execution(info, &error, ctx_.cgroups);
  if (!ex) {
    record(EventType::adopt_failed, {{"pid", info.pid}, {"from", info.origin}, {"error", error}});
    if (spec_->autostart) co_await feed({EventKind::start});
    co_return;
  }
  if (!info.ports.empty()) status_.ports = info.ports;
  else if (auto ports = resolve_ports(*spec_, &error)) status_.ports = *ports;
  begin_incarnation(std::move(ex));
  using namespace std::chrono;
  const auto now = system_clock::now();
  if (info.started_unix_ms > 0) {
    const auto started = system_clock::time_point(milliseconds(info.started_unix_ms));
    if (started <= now) status_.started_at = started;
  }
  start_watchers(nullptr, execution_->take_stdout(), execution_->take_stderr(), execution_->take_stdin());
  if (ctx_.pipes_changed) ctx_.pipes_changed(out_copy_.get(), err_copy_.get(), in_copy_.get());
  nlohmann::json details = execution_->describe();
  if (!status_.ports.empty()) details["ports"] = status_.ports;
  details["output"] = info.output;
  details["restarts"] = info.restarts;
  record(EventType::attached, std::move(details));
  ServiceEvent ev{EventKind::adopted};
  ev.restarts = info.restarts;
  ev.uptime = duration_cast<milliseconds>(now - *status_.started_at);
  co_await feed(ev);
}

}  // namespace actors

namespace actors {

Task<void> ServiceActor::release_attached() {
  if (!alive()) co_return;
  record(EventType::detached, execution_->describe());
  execution_->detach();
  co_await drain_incarnation();
  status_.pid.reset();
  status_.pid_start_ticks = 0;
  // What a stop then feeds finds nothing to signal and no exit to wait for.
  co_await feed({EventKind::stop});
  if (machine_.state() == State::stopping) co_await feed({EventKind::exited, false});
}

// `dockless attach NAME PID`: the pid now, in place of whatever is attached (left running).
Task<void> ServiceActor::attach_to(pid_t pid) {
  if (alive() && execution_->pid() == pid) co_return;
  if (alive()) co_await release_attached();
  attach_pid_ = pid;
  co_await feed({EventKind::start});
  attach_pid_ = 0;
}

}  // namespace actors
