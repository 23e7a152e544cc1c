// GCC 12 at -O3 reports HealthReport::healthy as maybe-uninitialized inside
// std::variant's move of Message (a known false positive: every member has an
// initializer). The warning is located in the headers, so the pragma comes before
// them; this file only, GCC only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "actors/service_actor.hpp"


#include <netinet/in.h>
#include <sys/socket.h>

#include <fcntl.h>

#include <cstring>


#include "actors/event_log.hpp"
#include "actors/log_actor.hpp"
#include "actors/log_store.hpp"
#include "actors/service_env.hpp"
#include "actors/state_store.hpp"
#include "runtime/ops_rw.hpp"
#include "runtime/ops_wait.hpp"

namespace actors {

using runtime::Task;

std::string_view to_string(Health h) {
  switch (h) {
    case Health::none: return "none";
    case Health::unknown: return "unknown";
    case Health::healthy: return "healthy";
    case Health::unhealthy: return "unhealthy";
  }
  return "?";
}

namespace {
bool settled(State s) { return s == State::stopped || s == State::exited || s == State::failed; }

}  // namespace

ServiceActor::ServiceActor(config::ServiceSpec spec, ServiceContext ctx)
    : spec_(std::move(spec)), ctx_(std::move(ctx)), machine_(Policy::from(spec_)) {
  status_.name = spec_.name;
  status_.health = spec_.health ? Health::unknown : Health::none;
}

void ServiceActor::publish() {
  status_.state = machine_.state();
  status_.restarts = machine_.restarts();
  if (ctx_.publish) ctx_.publish(status_);
}

void ServiceActor::record(std::string kind, nlohmann::json details) {
  if (ctx_.events) ctx_.events->append(spec_.name, std::move(kind), std::move(details));
}

Task<void> ServiceActor::run() {
  publish();
  while (true) {
    runtime::Result<Message> msg = co_await mailbox_.recv();
    if (!msg) break;
    co_await handle(*msg);
    publish();
    if (shutting_down_ && (detached_ || settled(machine_.state()))) break;
  }
  mailbox_.close();
  cancel_timer();
  timers_.request_stop();
  co_await timers_.join();
  co_await drain_incarnation();
  publish();
}

Task<void> ServiceActor::handle(Message& m) {
  if (handed_over_) {
    // Between the hand-over and the exec nothing may change what the blob says.
    if (auto* c = std::get_if<Command>(&m); c && c->kind == Command::Kind::resume) co_await resume_after_handover();
    co_return;
  }
  if (auto* c = std::get_if<Command>(&m)) {
    switch (c->kind) {
      case Command::Kind::adopt:
        if (c->adopt) co_await do_adopt(*c->adopt);
        break;
      case Command::Kind::handover:
        if (c->handover) co_await hand_over(*c->handover);
        break;
      case Command::Kind::resume: break;
      case Command::Kind::start: co_await feed({EventKind::start}); break;
      case Command::Kind::stop: co_await feed({EventKind::stop}); break;
      case Command::Kind::restart: co_await feed({EventKind::restart}); break;
      case Command::Kind::shutdown:
        shutting_down_ = true;
        co_await feed({EventKind::stop});
        break;
      case Command::Kind::detach:
        shutting_down_ = true;
        if (execution_ && running_ && execution_->can_detach()) {
          cancel_timer();
          record("detached", execution_->describe());
          execution_->detach();
          detached_ = true;
        } else {
          co_await feed({EventKind::stop});
        }
        break;
      case Command::Kind::signal:
        if (execution_ && running_) {
          auto r = execution_->signal(c->signal);
          record("signal", {{"signal", runtime::signal_name(c->signal)},
                            {"ok", r.ok()}, {"error", r.ok() ? "" : r.message()}});
        }
        break;
      case Command::Kind::stdin:
        if (stdin_queue_ && !stdin_queue_->try_send(std::move(c->data)))
          record("stdin_dropped", {{"reason", "stdin queue full: the service is not reading"}});
        break;
      case Command::Kind::update_spec:
        if (c->spec) {
          spec_ = std::move(*c->spec);
          machine_.set_policy(Policy::from(spec_));
          if (!running_)
            status_.health = spec_.health ? Health::unknown : Health::none;
        }
        break;
    }
  } else if (auto* ex = std::get_if<ProcessExited>(&m)) {
    if (ex->generation == status_.generation) on_exit(*ex), co_await feed({EventKind::exited, ex->known && ex->status.success()});
  } else if (auto* t = std::get_if<TimerFired>(&m)) {
    if (t->timer_id == timer_id_ && timer_stop_) {
      timer_stop_.reset();
      co_await feed({t->kind});
    }
  } else if (auto* r = std::get_if<ReadySignal>(&m)) {
    if (r->generation == status_.generation) co_await on_ready(*r);
  } else if (auto* h = std::get_if<HealthChanged>(&m)) {
    if (h->generation == status_.generation) {
      on_health(*h);
      if (!h->report.healthy && spec_.health && spec_.health->restart_on_unhealthy &&
          machine_.state() == State::running) {
        record("restart_unhealthy", {{"reason", h->report.reason}});
        co_await feed({EventKind::unhealthy});
      }
    }
  }
}

// Runs the machine and performs what it asks for. A spawn failure feeds back into
// the machine (it decides between backoff and failed), so this may recurse once.
Task<void> ServiceActor::feed(ServiceEvent e) {
  e.now = Clock::now();
  const State before = machine_.state();
  Step step = machine_.handle(e);
  if (step.ignored) co_return;
  for (Action a : step.actions) {
    switch (a) {
      case Action::cancel_timer: cancel_timer(); break;
      case Action::send_stop_signal: do_stop_signal(); break;
      case Action::kill:
        do_kill(e.kind == EventKind::ready_timeout ? "ready_timeout expired" : "stop_timeout expired");
        break;
      case Action::arm_ready_timer:
        record("awaiting_ready", {{"ready", spec_.ready == config::ReadyMode::notify ? "notify" : "fd"},
                                  {"timeout_ms", step.delay.count()}});
        arm_timer(step.delay, EventKind::ready_timeout);
        break;
      case Action::arm_backoff:
        status_.next_restart_in = step.delay;
        record("backoff", {{"delay_ms", step.delay.count()}, {"restarts", machine_.restarts()}});
        arm_timer(step.delay, EventKind::backoff_elapsed);
        break;
      case Action::spawn: co_await do_spawn(); break;
    }
  }
  if (step.crash_loop)
    record("failed", {{"reason", "crash loop: restart limit reached"},
                      {"restart_limit", spec_.restart_limit},
                      {"restart_window_ms", spec_.restart_window.count()}});
  else if (step.next == State::stopped && before != State::stopped)
    record("stopped", {});
}

std::string ServiceActor::substitute(std::string text) const {
  return substitute_service_refs(std::move(text), status_.ports.empty() ? 0 : status_.ports.front(),
                                 ctx_.port_of);
}

std::optional<LaunchRequest> ServiceActor::build_launch(std::string* error) {
  auto ports = resolve_ports(spec_, error);
  if (!ports) return std::nullopt;
  status_.ports = *ports;
  LaunchRequest r;
  r.spec = &spec_;
  for (const auto& arg : spec_.command) r.argv.push_back(substitute(arg));
  for (const auto& [k, v] : spec_.env) r.env[k] = substitute(v);
  if (!status_.ports.empty()) r.env["PORT"] = std::to_string(status_.ports.front());
  // Substituted like the service's own values, as before executors existed.
  for (const auto& [k, v] : inheritable_environment(ctx_.base_env)) r.base_env[k] = substitute(v);
  r.capture_output = ctx_.logs != nullptr;
  r.supervisor_id = ctx_.supervisor_id;
  return r;
}

Task<void> ServiceActor::do_spawn() {
  // The previous incarnation's children (log capture still draining a pipe that a
  // grandchild held, the health checker) finish before the next one starts.
  co_await drain_incarnation();
  std::string error;
  executor_ = make_executor(spec_);
  status_.executor = executor_->kind();
  std::optional<LaunchRequest> req = build_launch(&error);
  std::optional<ReadinessChannel> readiness;
  if (req) {
    auto channel = ReadinessChannel::open(spec_, &error);
    if (channel) readiness = std::move(*channel);
    else req.reset();
  }
  if (req && readiness) req->adjust_spawn = [&readiness](runtime::SpawnOptions& o) { readiness->apply(o); };
  std::unique_ptr<Execution> launched;
  if (req) launched = co_await executor_->launch(std::move(*req), &error);
  if (!launched) {
    status_.last_error = error;
    record("spawn_failed", {{"error", error}});
    co_await feed({EventKind::spawn_failed});
    co_return;
  }
  begin_incarnation(std::move(launched));
  start_watchers(readiness ? &readiness : nullptr, execution_->take_stdout(), execution_->take_stderr(),
                 execution_->take_stdin());
  // Only a native instance's pipes are worth storing: a container is found again by
  // its label and its output re-read by a new `logs --follow`.
  if (ctx_.pipes_changed && execution_->handover_pidfd() >= 0)
    ctx_.pipes_changed(out_copy_.get(), err_copy_.get(), in_copy_.get());
  nlohmann::json details = execution_->describe();
  if (!status_.ports.empty()) details["ports"] = status_.ports;
  // Adopted: a workload that outlived the previous daemon, taken over, not restarted.
  record(execution_->adopted() ? "attached" : "started", std::move(details));
  co_await feed({EventKind::spawned});
}

void ServiceActor::begin_incarnation(std::unique_ptr<Execution> ex) {
  execution_ = std::move(ex);
  running_ = true;
  ++status_.generation;
  status_.pid = execution_->pid() > 0 ? std::optional<pid_t>(execution_->pid()) : std::nullopt;
  status_.pid_start_ticks = execution_->pid_start_ticks();
  status_.started_at = std::chrono::system_clock::now();
  status_.last_error.clear();
  status_.next_restart_in = {};
  status_.health = spec_.health ? Health::unknown : Health::none;
  status_.health_reason.clear();
  status_.notify_status.clear();
}

namespace {
runtime::Fd dup_fd(const runtime::Fd& fd) {
  return fd ? runtime::Fd(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3)) : runtime::Fd();
}
}  // namespace

// The incarnation's children: readiness watch, exit waiter, log capture, stdin
// writer, health checks. Also what a failed upgrade restarts.
void ServiceActor::start_watchers(std::optional<ReadinessChannel>* readiness, runtime::Fd out, runtime::Fd err,
                                  runtime::Fd in) {
  incarnation_ = std::make_unique<runtime::Scope>();
  if (readiness && *readiness) {
    (*readiness)->spawned();
    const std::uint64_t gen = status_.generation;
    incarnation_->spawn(ReadinessChannel::watch(std::move(**readiness), execution_->pid(), incarnation_->token(),
                                                [this, gen](ReadinessReport r) { post(ReadySignal{gen, std::move(r)}); }),
                        spec_.name + "/ready");
  }
  incarnation_->spawn(wait_for_exit(status_.generation), spec_.name + "/wait");
  start_log_capture(std::move(out), std::move(err));
  start_stdin_writer(std::move(in));
  if (spec_.health) {
    const std::uint64_t gen = status_.generation;
    incarnation_->spawn(
        run_health_checks(executor_->health_check(*spec_.health), status_.ports.empty() ? 0 : status_.ports.front(),
                          incarnation_->token(),
                          [this, gen](const HealthReport& r) { post(HealthChanged{gen, r}); }),
        spec_.name + "/health");
  }
}

// Takes over an instance that outlived the previous daemon (crash) or image
// (upgrade). Only a fresh actor adopts; when the instance turns out to be gone the
// service starts as it would have without it.
Task<void> ServiceActor::do_adopt(AdoptInfo& info) {
  if (machine_.state() != State::stopped || execution_) co_return;
  executor_ = make_executor(spec_);
  status_.executor = executor_->kind();
  std::string error;
  std::unique_ptr<Execution> ex = adopt_execution(info, &error);
  if (!ex) {
    record("adopt_failed", {{"pid", info.pid}, {"from", info.origin}, {"error", error}});
    if (spec_.autostart) co_await feed({EventKind::start});
    co_return;
  }
  if (!info.ports.empty()) status_.ports = info.ports;
  else if (auto ports = resolve_ports(spec_, &error)) status_.ports = *ports;
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
  record("attached", std::move(details));
  ServiceEvent ev{EventKind::adopted};
  ev.restarts = info.restarts;
  ev.uptime = duration_cast<milliseconds>(now - *status_.started_at);
  co_await feed(ev);
}

// The upgrade: stop watching, leave the instance alone. The exit waiter ends
// through suspend_wait(); capture drains what is in the pipes and stops, so what a
// service writes from now on waits in the pipe for the next image's capture.
Task<void> ServiceActor::hand_over(HandoverRecord& rec) {
  cancel_timer();  // a backoff timer must not spawn an instance the blob does not name
  rec.executor = status_.executor;
  if (execution_ && running_ && execution_->handover_pidfd() >= 0) {
    execution_->suspend_wait();
    if (incarnation_) {
      incarnation_->request_stop();
      co_await incarnation_->join();
      incarnation_.reset();
    }
    stdin_queue_.reset();
    // The exit may have won the race with suspend_wait(): then it is reaped and its
    // ProcessExited is in the mailbox, and nothing is handed over.
    if (execution_->handover_pidfd() >= 0) {
      rec.pid = execution_->pid();
      rec.start_ticks = execution_->pid_start_ticks();
      rec.pidfd = execution_->handover_pidfd();
      rec.out = out_copy_.get();
      rec.err = err_copy_.get();
      rec.in = in_copy_.get();
    }
  } else if (execution_ && running_ && execution_->can_detach()) {
    // A container: the next image's launch adopts it as after a restart.
    record("detached", execution_->describe());
    execution_->detach();
    co_await drain_incarnation();
    running_ = false;
    detached_for_handover_ = true;
  }
  rec.state = std::string(to_string(machine_.state()));
  rec.restarts = machine_.restarts();
  rec.ports = status_.ports;
  if (status_.started_at)
    rec.started_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              status_.started_at->time_since_epoch()).count();
  handed_over_ = true;
  rec.done = true;
}

// The exec failed: this image goes on supervising what it handed over.
Task<void> ServiceActor::resume_after_handover() {
  if (!handed_over_) co_return;
  handed_over_ = false;
  if (detached_for_handover_) {
    detached_for_handover_ = false;
    co_await do_spawn();  // the executor's launch adopts the running container
  } else if (execution_ && running_ && !incarnation_) {
    start_watchers(nullptr, dup_fd(out_copy_), dup_fd(err_copy_), dup_fd(in_copy_));
  }
  if (machine_.state() == State::backoff) arm_timer(std::max(status_.next_restart_in, std::chrono::milliseconds(1)),
                                                    EventKind::backoff_elapsed);
}

// stdout and stderr are spliced into the service's LogStore by two child actors
// of this incarnation. They end on EOF, i.e. when the service and everything it
// forked have closed the pipe (the group is killed when the leader exits).
void ServiceActor::start_log_capture(runtime::Fd out, runtime::Fd err) {
  out_copy_ = dup_fd(out);
  err_copy_ = dup_fd(err);
  if (!ctx_.logs) return;
  auto body = [](ServiceActor* self, LogStore* store, Stream s, runtime::Fd fd,
                 std::stop_token st) -> Task<void> {
    CaptureResult r = co_await capture(*store, s, std::move(fd), st, [self](const DropEpisode& d) {
      nlohmann::json details = {{"stream", stream_name(d.stream)}, {"error", std::strerror(d.error)}};
      if (d.resumed) details["dropped_bytes"] = d.dropped;
      self->record(d.resumed ? "log_resumed" : "log_dropped", std::move(details));
    });
    if (r.error != 0)
      self->record("log_capture_failed", {{"stream", stream_name(s)}, {"error", std::strerror(r.error)}});
  };
  if (out)
    incarnation_->spawn(body(this, ctx_.logs, Stream::out, std::move(out), incarnation_->token()),
                        spec_.name + "/stdout");
  if (err)
    incarnation_->spawn(body(this, ctx_.logs, Stream::err, std::move(err), incarnation_->token()),
                        spec_.name + "/stderr");
}

// The pipe is non-blocking (the service must never be able to block the daemon),
// so a full pipe means waiting for POLLOUT through the ring, then writing again.
void ServiceActor::start_stdin_writer(runtime::Fd in) {
  stdin_queue_.reset();
  in_copy_ = dup_fd(in);
  if (!in) return;
  stdin_queue_ = std::make_unique<runtime::Channel<std::string>>(256);
  auto body = [](runtime::Channel<std::string>* queue, runtime::Fd fd, std::stop_token st) -> Task<void> {
    while (true) {
      runtime::Result<std::string> chunk = co_await queue->recv(st);
      if (!chunk) co_return;
      std::string_view rest = *chunk;
      while (!rest.empty()) {
        runtime::Result<int> w = co_await runtime::write(fd.get(), std::as_bytes(std::span(rest.data(), rest.size())));
        if (w.ok()) {
          rest.remove_prefix(static_cast<std::size_t>(w.value()));
        } else if (w.error() == EAGAIN) {
          if (!co_await runtime::poll(fd.get(), POLLOUT).stop_on(st)) co_return;
        } else {
          co_return;  // EPIPE: the service closed its stdin
        }
      }
    }
  };
  incarnation_->spawn(body(stdin_queue_.get(), std::move(in), incarnation_->token()),
                      spec_.name + "/stdin");
}

Task<void> ServiceActor::wait_for_exit(std::uint64_t generation) {
  // Not stop_on(incarnation token): the exit waiter must see the exit, and the
  // incarnation is only drained after the exit has been handled.
  runtime::Result<runtime::ExitStatus> st = co_await execution_->wait();
  if (!st && st.error() == ECANCELED) co_return;  // detached: the workload runs on
  ProcessExited ex{generation, st.ok() ? *st : runtime::ExitStatus{}, st.ok()};
  post(ex);
}

void ServiceActor::on_exit(const ProcessExited& ex) {
  status_.last_exit = ex.known ? std::optional(ex.status) : std::nullopt;
  status_.last_exit_unknown = !ex.known;
  if (ctx_.pipes_changed && status_.executor == "process" && (out_copy_ || err_copy_ || in_copy_))
    ctx_.pipes_changed(-1, -1, -1);
  out_copy_.reset();
  err_copy_.reset();
  in_copy_.reset();
  // What the workload left behind goes with it (its process group, its container).
  if (execution_) execution_->exited();
  running_ = false;
  status_.pid.reset();
  status_.pid_start_ticks = 0;
  nlohmann::json d;
  if (ex.known) {
    d["signaled"] = ex.status.signaled;
    d[ex.status.signaled ? "signal" : "code"] =
        ex.status.signaled ? nlohmann::json(runtime::signal_name(ex.status.code)) : nlohmann::json(ex.status.code);
    d["description"] = ex.status.describe();
  } else {
    // Only an instance adopted after a daemon crash: init, not us, reaped it.
    d["description"] = "exit status unknown";
    d["exit_status"] = "unknown";
    d["reason"] = "adopted after a daemon restart: not the daemon's child, so its status cannot be read";
  }
  record("exited", std::move(d));
}

void ServiceActor::on_health(const HealthChanged& h) {
  const Health now = h.report.healthy ? Health::healthy : Health::unhealthy;
  status_.health_reason = h.report.reason;
  if (now == status_.health) return;
  status_.health = now;
  record("health", {{"health", to_string(now)}, {"reason", h.report.reason}});
}

Task<void> ServiceActor::on_ready(const ReadySignal& r) {
  if (r.report.status) status_.notify_status = *r.report.status;
  if (!r.report.ready || machine_.state() != State::starting) co_return;
  record("ready", {{"status", status_.notify_status}});
  co_await feed({EventKind::ready});
}

void ServiceActor::do_stop_signal() {
  if (!execution_ || !running_) return;
  record("stopping", {{"signal", runtime::signal_name(spec_.stop_signal)},
                      {"timeout_ms", spec_.stop_timeout.count()}});
  execution_->stop(spec_.stop_signal, spec_.stop_timeout);
  arm_timer(spec_.stop_timeout, EventKind::stop_timeout);
}

void ServiceActor::do_kill(const char* reason) {
  if (!execution_ || !running_) return;
  const bool ready_timeout = std::strcmp(reason, "ready_timeout expired") == 0;
  record("killed", {{"reason", reason},
                    {"timeout_ms", (ready_timeout ? spec_.ready_timeout : spec_.stop_timeout).count()}});
  execution_->kill();
}

void ServiceActor::arm_timer(std::chrono::milliseconds delay, EventKind kind) {
  cancel_timer();
  timer_stop_.emplace();
  const std::uint64_t id = ++timer_id_;
  auto body = [](ServiceActor* self, std::chrono::milliseconds d, EventKind k, std::uint64_t tid,
                 std::stop_token st) -> Task<void> {
    runtime::Result<int> r = co_await runtime::sleep_for(d).stop_on(st);
    if (r.ok()) self->post(TimerFired{tid, k});
  };
  timers_.spawn(body(this, delay, kind, id, timer_stop_->get_token()), spec_.name + "/timer");
}

void ServiceActor::cancel_timer() {
  if (timer_stop_) timer_stop_->request_stop();
  timer_stop_.reset();
}

Task<void> ServiceActor::drain_incarnation() {
  if (incarnation_) {
    incarnation_->request_stop();
    co_await incarnation_->join();
    incarnation_.reset();
  }
  stdin_queue_.reset();
  if (execution_) {
    co_await execution_->close();
    execution_.reset();
  }
}

}  // namespace actors
