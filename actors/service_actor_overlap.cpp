// restart_mode = "overlap": an operator's restart of a running socket-activated service
// with ready = "notify" starts the new instance beside the old one, on the same sockets
// and in a cgroup of its own (BASE/svc.NAME@N); the old one keeps serving until the new
// one sends READY=1, then gets its stop signal. Both accept from the same listening
// sockets meanwhile, so no connection waits for a slow start. A new instance that exits,
// or says nothing within ready_timeout, is killed and recorded (overlap_failed); the old
// one goes on as if nothing happened. Both instances' output goes to the service's log
// (their captures take turns on each stream).
//
// The state machine does not see any of this: for it the service stays `running`.
//
// GCC 12 at -O3: see service_actor.cpp for the maybe-uninitialized false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <fcntl.h>

#include "actors/event_log.hpp"
#include "actors/service_actor.hpp"
#include "runtime/ops_wait.hpp"

namespace actors {

using runtime::Task;

namespace {

runtime::Fd dup_fd(const runtime::Fd& fd) {
  return fd ? runtime::Fd(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3)) : runtime::Fd();
}

// Posts OverlapTimeout once `delay` passed, unless the instance's scope stopped first.
Task<void> overlap_timer(ServiceActor* self, std::chrono::milliseconds delay, std::uint64_t generation,
                         bool replaced, std::stop_token stop) {
  runtime::Result<int> r = co_await runtime::sleep_for(delay).stop_on(std::move(stop));
  if (r.ok()) self->post(OverlapTimeout{generation, replaced});
}

}  // namespace

bool ServiceActor::can_overlap() const {
  return spec_->restart_mode == config::RestartMode::overlap && machine_.state() == State::running && alive() &&
         status_.executor == "process" && !candidate_ && sockets_.holds(spec_->sockets);
}

Task<void> ServiceActor::begin_overlap() {
  // A restart again before the last replaced instance is gone: it had its stop signal.
  if (replaced_) co_await finish_replaced(nullptr);
  std::string error;
  std::optional<LaunchRequest> req = build_launch(&error);
  std::optional<ReadinessChannel> readiness;
  if (req) {
    auto channel = ReadinessChannel::open(*spec_, &error);
    if (channel) readiness = std::move(*channel);
    else req.reset();
  }
  const std::uint64_t n = ++overlaps_;
  std::unique_ptr<Execution> launched;
  if (req) {
    req->sockets = &sockets_;
    req->cgroup_name = spec_->name + "@" + std::to_string(n);
    if (readiness) req->adjust_spawn = [&readiness](runtime::SpawnOptions& o) { readiness->apply(o); };
    launched = co_await executor_->launch(std::move(*req), &error);
  }
  if (!launched) {
    record(EventType::overlap_failed, {{"reason", "the new instance did not start: " + error}, {"pid", nullptr}});
    co_return;
  }
  auto c = std::make_unique<Overlapping>();
  c->generation = status_.generation + (n << 32);
  c->exec = std::move(launched);
  c->scope = std::make_unique<runtime::Scope>();
  const pid_t pid = c->exec->pid();
  const std::uint64_t gen = c->generation;
  if (readiness) {
    readiness->spawned();
    c->scope->spawn(ReadinessChannel::watch(std::move(*readiness), pid, c->scope->token(),
                                            [this, gen](ReadinessReport r) { post(ReadySignal{gen, std::move(r)}); }),
                    spec_->name + "/ready");
  }
  c->scope->spawn(wait_for_exit_of(this, c->exec.get(), gen), spec_->name + "/wait");
  runtime::Fd out = c->exec->take_stdout();
  runtime::Fd err = c->exec->take_stderr();
  c->out_copy = dup_fd(out);
  c->err_copy = dup_fd(err);
  c->in = c->exec->take_stdin();
  spawn_capture(*c->scope, std::move(out), std::move(err));
  c->scope->spawn(overlap_timer(this, spec_->ready_timeout, gen, false, c->scope->token()),
                  spec_->name + "/ready-timer");
  nlohmann::json details = c->exec->describe();
  details["replacing"] = status_.pid ? nlohmann::json(*status_.pid) : nlohmann::json(nullptr);
  details["sockets"] = sockets_.describe();
  details["ready_timeout_ms"] = spec_->ready_timeout.count();
  status_.next_pid = pid;
  candidate_ = std::move(c);
  record(EventType::overlap_started, std::move(details));
}

Task<bool> ServiceActor::overlap_message(Message& m) {
  if (!candidate_ && !replaced_) co_return false;
  const auto is_candidate = [this](std::uint64_t g) { return candidate_ && g == candidate_->generation; };
  const auto is_replaced = [this](std::uint64_t g) { return replaced_ && g == replaced_->generation; };
  if (auto* ex = std::get_if<ProcessExited>(&m)) {
    if (is_candidate(ex->generation)) {
      // A named string, not a temporary in the co_await's full expression: GCC 12 destroys
      // a conditional's temporary there twice (free(): invalid pointer).
      std::string why;
      if (!candidate_->failing)
        why = "the new instance exited before READY=1 (" + exit_details(*ex)["description"].get<std::string>() + ")";
      co_await drop_candidate(why, false);
      co_return true;
    }
    if (is_replaced(ex->generation)) {
      co_await finish_replaced(ex);
      co_return true;
    }
    // The old one died first: the machine restarts it its usual way (stop-first).
    if (candidate_ && ex->generation == status_.generation)
      co_await drop_candidate("the running instance exited during the overlap", true);
    co_return false;
  }
  if (auto* r = std::get_if<ReadySignal>(&m)) {
    if (!is_candidate(r->generation)) co_return is_replaced(r->generation);
    if (r->report.status) candidate_->notify_status = *r->report.status;
    if (r->report.ready && !candidate_->failing) co_await promote_candidate();
    co_return true;
  }
  if (auto* t = std::get_if<OverlapTimeout>(&m)) {
    if (!t->replaced && is_candidate(t->generation) && !candidate_->failing) {
      candidate_->failing = true;
      record(EventType::overlap_failed, {{"reason", "no READY=1 within ready_timeout"},
                                         {"timeout_ms", spec_->ready_timeout.count()},
                                         {"pid", candidate_->exec->pid()}});
      candidate_->exec->kill();  // its exit ends it (drop_candidate)
    } else if (t->replaced && is_replaced(t->generation)) {
      record(EventType::killed, {{"reason", "stop_timeout expired"},
                                 {"timeout_ms", spec_->stop_timeout.count()},
                                 {"pid", replaced_->exec->pid()},
                                 {"replaced", true}});
      replaced_->exec->kill();
    }
    co_return true;
  }
  if (auto* h = std::get_if<HealthChanged>(&m)) co_return is_candidate(h->generation) || is_replaced(h->generation);
  co_return false;
}

// READY=1 from the new instance: the old one, with everything of its incarnation, is
// the replaced one now (stop signal, stop_timeout), and the new one is the service's.
Task<void> ServiceActor::promote_candidate() {
  std::unique_ptr<Overlapping> c = std::move(candidate_);
  auto r = std::make_unique<Overlapping>();
  r->generation = status_.generation;
  r->exec = std::move(execution_);
  r->scope = incarnation_ ? std::move(incarnation_) : std::make_unique<runtime::Scope>();
  r->stdin_queue = std::move(stdin_queue_);
  const pid_t old_pid = r->exec->pid();
  r->exec->stop(spec_->stop_signal, spec_->stop_timeout);
  r->scope->spawn(overlap_timer(this, spec_->stop_timeout, r->generation, true, r->scope->token()),
                  spec_->name + "/stop-timer");
  replaced_ = std::move(r);
  record(EventType::stopping, {{"signal", runtime::signal_name(spec_->stop_signal)},
                               {"timeout_ms", spec_->stop_timeout.count()},
                               {"pid", old_pid},
                               {"replaced_by", c->exec->pid()}});

  status_.generation = c->generation - 1;  // begin_incarnation() counts it up to the new one's
  begin_incarnation(std::move(c->exec));
  incarnation_ = std::move(c->scope);
  out_copy_ = std::move(c->out_copy);
  err_copy_ = std::move(c->err_copy);
  start_stdin_writer(std::move(c->in));
  start_oom_watch();
  start_health();
  status_.notify_status = c->notify_status;
  status_.next_pid.reset();
  if (ctx_.pipes_changed) ctx_.pipes_changed(out_copy_.get(), err_copy_.get(), in_copy_.get());
  record(EventType::ready, {{"status", status_.notify_status}});
  record(EventType::replaced, {{"pid", execution_->pid()}, {"replaced_pid", old_pid}});
  co_return;
}

Task<void> ServiceActor::drop_candidate(std::string_view reason, bool kill) {
  std::unique_ptr<Overlapping> c = std::move(candidate_);
  if (!c) co_return;
  status_.next_pid.reset();
  if (!reason.empty()) record(EventType::overlap_failed, {{"reason", std::string(reason)}, {"pid", c->exec->pid()}});
  // Its exit seen: what it left goes (which also ends its capture at EOF). Killed: the
  // exit waiter in its scope sees the end, then the same.
  if (kill) c->exec->kill();
  else c->exec->exited();
  c->scope->request_stop();
  co_await c->scope->join();
  if (kill) c->exec->exited();
  co_await c->exec->close();
}

Task<void> ServiceActor::finish_replaced(const ProcessExited* ex) {
  std::unique_ptr<Overlapping> r = std::move(replaced_);
  if (!r) co_return;
  if (ex) {
    nlohmann::json d = exit_details(*ex);
    d["pid"] = r->exec->pid();
    d["replaced"] = true;
    record(EventType::exited, std::move(d));
    r->exec->exited();
  } else {
    r->exec->kill();
  }
  r->scope->request_stop();
  co_await r->scope->join();
  if (!ex) r->exec->exited();
  r->stdin_queue.reset();  // after the join: its writer is gone
  co_await r->exec->close();
}

Task<void> ServiceActor::settle_overlap(std::string_view reason) {
  co_await drop_candidate(reason, true);
  co_await finish_replaced(nullptr);
}

}  // namespace actors
