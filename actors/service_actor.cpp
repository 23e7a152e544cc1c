// The ServiceActor's mailbox and the lifecycle's actions (spawn, stop, kill,
// timers, exits); see service_actor.hpp for the other two files.
//
// GCC 12 at -O3 reports HealthReport::healthy as maybe-uninitialized inside
// std::variant's move of Message (a known false positive: every member has an
// initializer). The warning is located in the headers, so the pragma comes before
// them; this file and service_actor_watchers.cpp only, GCC only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "actors/service_actor.hpp"

#include "actors/event_log.hpp"
#include "actors/service_env.hpp"
#include "actors/service_limits.hpp"
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

ServiceActor::ServiceActor(SpecPtr spec, ServiceContext ctx)
    : spec_(std::move(spec)), ctx_(std::move(ctx)), machine_(Policy::from(*spec_)) {
  status_.name = spec_->name;
  status_.health = spec_->health ? Health::unknown : Health::none;
}

void ServiceActor::publish() {
  status_.state = machine_.state();
  status_.restarts = machine_.restarts();
  if (ctx_.publish) ctx_.publish(status_);
}

void ServiceActor::record(EventType type, nlohmann::json details) {
  if (ctx_.events) ctx_.events->append(spec_->name, type, std::move(details));
}

void ServiceActor::apply_limits_in_place() {
  std::string error;
  const bool ok = enforce_limits(*spec_, ctx_.cgroups, execution_->cgroup_fd(), runtime::UnsetLimits::reset, &error);
  nlohmann::json limits = nlohmann::json::object();
  for (const auto& f : runtime::limit_files(limit_values(*spec_)))
    if (f.text) limits[std::string(f.key)] = *f.text;
  // A refusal leaves the instance running under its old limits; its next start
  // fails the same way (spawn_failed), so the limit is never quietly not in force.
  record(EventType::limits_applied, {{"ok", ok}, {"error", error}, {"limits", std::move(limits)}});
}

// Tells the fd store (under systemd) when the bound set moved: a crash of the daemon
// then leaves the sockets to its successor.
void ServiceActor::store_sockets() {
  if (sockets_.version() == sockets_stored_) return;
  sockets_stored_ = sockets_.version();
  if (ctx_.sockets_changed) ctx_.sockets_changed(sockets_.fds());
}

Task<void> ServiceActor::run() {
  // What the fd store kept from a daemon that crashed: in the store already.
  if (ctx_.stored_sockets) {
    sockets_.adopt_stored(spec_->sockets, std::move(*ctx_.stored_sockets));
    ctx_.stored_sockets.reset();
    sockets_stored_ = sockets_.version();
  }
  publish();
  while (true) {
    runtime::Result<Message> msg = co_await mailbox_.recv();
    if (!msg) break;
    co_await handle(*msg);
    if (settled(machine_.state())) co_await feed_custody(CustodyEvent::settled);
    rearm_if_idle();
    publish();
    if (custody_.state() == Custody::released) break;
  }
  mailbox_.close();
  activation_wanted_ = false;
  co_await disarm_activation();
  co_await settle_overlap("the service is going away");
  cancel_timer();
  timers_.request_stop();
  co_await timers_.join();
  co_await drain_incarnation();
  sockets_.close();
  store_sockets();
  publish();
}

Task<void> ServiceActor::handle(Message& m) {
  auto* c = std::get_if<Command>(&m);
  if (c) {
    switch (c->kind) {
      case Command::Kind::shutdown:
        activation_wanted_ = false;
        co_await disarm_activation();
        co_await settle_overlap("the daemon is stopping");
        co_await feed_custody(CustodyEvent::shutdown);
        co_return;
      case Command::Kind::handover:
        // A lazy service's sockets are not handed over while it waits (docs/config.md).
        co_await disarm_activation();
        // Only the service's instance is handed over; an overlap's other one is not.
        co_await settle_overlap("an upgrade began");
        if (c->handover) co_await feed_custody(CustodyEvent::handover, c->handover.get());
        co_return;
      case Command::Kind::resume: co_await feed_custody(CustodyEvent::resume); co_return;
      default: break;
    }
  }
  // Between the hand-over and the exec nothing may change what the record says.
  if (!custody_.supervising()) co_return;
  if (co_await overlap_message(m)) co_return;
  if (c) {
    switch (c->kind) {
      case Command::Kind::adopt:
        if (c->adopt) co_await do_adopt(*c->adopt);
        break;
      case Command::Kind::start:
        // start_on = "connection": a start (the boot's or an operator's) arms the watch.
        if (starts_on_connection() && settled(machine_.state())) arm_activation();
        else co_await feed({EventKind::start});
        break;
      case Command::Kind::stop:
        // Read-only: a stop that reaches it (a dependency's ordered stop) only lets go.
        if (spec_->attach && !spec_->attach->control) co_await release_attached();
        activation_wanted_ = false;
        co_await disarm_activation();
        co_await drop_candidate("stopped before the new instance was ready", true);
        co_await feed({EventKind::stop});
        break;
      case Command::Kind::restart:
        // Nothing to launch: the API refuses it. One that gets here anyway (a reload that
        // changed the spec, a trigger) lets the process go, untouched, and attaches again
        // from the pid_file as the spec now says.
        if (spec_->attach) {
          co_await release_attached();
          co_await feed({EventKind::start});
          break;
        }
        // A lazy service that waits restarts as waiting (bound again to what the spec says now).
        if (activation_) co_await disarm_activation();
        if (starts_on_connection() && settled(machine_.state())) {
          arm_activation();
        } else if (candidate_) {
          // An overlap in progress is this restart already.
        } else if (can_overlap()) {
          co_await begin_overlap();
        } else {
          if (spec_->restart_mode == config::RestartMode::overlap && machine_.state() == State::running)
            record(EventType::overlap_failed,
                   {{"reason", "the sockets changed (a reload): restarted stop-first"}, {"pid", nullptr}});
          co_await feed({EventKind::restart});
        }
        break;
      case Command::Kind::signal:
        if (alive()) {
          auto r = execution_->signal(c->signal);
          record(EventType::signal, {{"signal", runtime::signal_name(c->signal)},
                                     {"ok", r.ok()}, {"error", r.ok() ? "" : r.message()}});
        }
        break;
      case Command::Kind::attach:
        if (spec_->attach) co_await attach_to(c->signal);
        break;
      case Command::Kind::stdin:
        if (stdin_queue_ && !stdin_queue_->try_send(std::move(c->data)))
          record(EventType::stdin_dropped, {{"reason", "stdin queue full: the service is not reading"}});
        break;
      case Command::Kind::update_limits:
        if (c->spec) {
          spec_ = std::move(c->spec);
          if (alive()) apply_limits_in_place();
        }
        break;
      case Command::Kind::update_spec:
        if (c->spec) {
          spec_ = std::move(c->spec);
          machine_.set_policy(Policy::from(*spec_));
          if (!alive())
            status_.health = spec_->health ? Health::unknown : Health::none;
        }
        break;
      case Command::Kind::shutdown:
      case Command::Kind::handover:
      case Command::Kind::resume: break;  // custody events, above
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
  } else if (auto* a = std::get_if<ConnectionArrived>(&m)) {
    co_await on_connection(*a);
  } else if (auto* h = std::get_if<HealthChanged>(&m)) {
    if (h->generation == status_.generation) {
      on_health(*h);
      if (!h->report.healthy && spec_->health && spec_->health->restart_on_unhealthy &&
          machine_.state() == State::running) {
        record(EventType::restart_unhealthy, {{"reason", h->report.reason}});
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
        do_kill(e.kind == EventKind::ready_timeout ? KillReason::ready_timeout : KillReason::stop_timeout);
        break;
      case Action::arm_ready_timer:
        record(EventType::awaiting_ready, {{"ready", spec_->ready == config::ReadyMode::notify ? "notify" : "fd"},
                                           {"timeout_ms", step.delay.count()}});
        arm_timer(step.delay, EventKind::ready_timeout);
        break;
      case Action::arm_backoff:
        status_.next_restart_in = step.delay;
        // Attached: the backoff is the pid_file poll, not a restart worth an event each.
        if (!spec_->attach)
          record(EventType::backoff, {{"delay_ms", step.delay.count()}, {"restarts", machine_.restarts()}});
        arm_timer(step.delay, EventKind::backoff_elapsed);
        break;
      case Action::spawn: co_await do_spawn(); break;
    }
  }
  if (step.crash_loop)
    record(EventType::failed, {{"reason", "crash loop: restart limit reached"},
                               {"restart_limit", spec_->restart_limit},
                               {"restart_window_ms", spec_->restart_window.count()}});
  else if (step.next == State::stopped && before != State::stopped)
    record(EventType::stopped, {});
}

std::uint16_t ServiceActor::primary_port() const {
  return status_.ports.empty() ? spec_->first_tcp_socket_port() : status_.ports.front();
}

std::string ServiceActor::substitute(std::string text) const {
  return substitute_service_refs(std::move(text), primary_port(), ctx_.port_of);
}

std::optional<LaunchRequest> ServiceActor::build_launch(std::string* error) {
  if (spec_->attach) {
    // The ports an attached process listens on: in use by it, not checked free.
    status_.ports.clear();
    for (const config::Port& p : spec_->ports) status_.ports.push_back(p.number);
  } else {
    auto ports = resolve_ports(*spec_, error);
    if (!ports) return std::nullopt;
    status_.ports = *ports;
  }
  LaunchRequest r;
  r.spec = spec_.get();
  for (const auto& arg : spec_->command) r.argv.push_back(substitute(arg));
  for (const auto& [k, v] : spec_->env) r.env[k] = substitute(v);
  if (primary_port() != 0) r.env["PORT"] = std::to_string(primary_port());
  r.base_env = ctx_.base_env;
  r.capture_output = ctx_.logs != nullptr;
  r.supervisor_id = ctx_.supervisor_id;
  r.attach_pid = attach_pid_;
  r.known_pid = attach_known_pid_;
  r.known_ticks = attach_known_ticks_;
  return r;
}

Task<void> ServiceActor::do_spawn() {
  // The previous incarnation's children (log capture still draining a pipe that a
  // grandchild held, the health checker) finish before the next one starts.
  co_await drain_incarnation();
  std::string error;
  executor_ = make_executor(*spec_, ctx_.cgroups);
  status_.executor = executor_->kind();
  std::optional<LaunchRequest> req = build_launch(&error);
  std::optional<ReadinessChannel> readiness;
  if (req) {
    auto channel = ReadinessChannel::open(*spec_, &error);
    if (channel) readiness = std::move(*channel);
    else req.reset();
  }
  // Bound once and kept: a restart or crash of the service leaves them open, so
  // clients queue in the backlog. A spec whose sockets changed (reload) rebinds.
  if (req && !(spec_->sockets.empty() && sockets_.empty()) && !sockets_.ensure(spec_->sockets, &error)) req.reset();
  if (req && !sockets_.empty()) req->sockets = &sockets_;
  store_sockets();
  if (req && readiness) req->adjust_spawn = [&readiness](runtime::SpawnOptions& o) { readiness->apply(o); };
  std::unique_ptr<Execution> launched;
  if (req) launched = co_await executor_->launch(std::move(*req), &error);
  if (!launched) {
    // Attached: the pid_file poll says why once, not every second.
    if (!spec_->attach || error != status_.last_error) record(EventType::spawn_failed, {{"error", error}});
    status_.last_error = error;
    co_await feed({EventKind::spawn_failed});
    co_return;
  }
  begin_incarnation(std::move(launched));
  if (spec_->attach) {
    attach_pid_ = 0;
    attach_known_pid_ = execution_->pid();
    attach_known_ticks_ = execution_->pid_start_ticks();
  }
  start_watchers(readiness ? &readiness : nullptr, execution_->take_stdout(), execution_->take_stderr(),
                 execution_->take_stdin());
  // Only a native instance's pipes are worth storing: a container is found again by
  // its label and its output re-read by a new `logs --follow`.
  if (ctx_.pipes_changed && execution_->handover_pidfd() >= 0)
    ctx_.pipes_changed(out_copy_.get(), err_copy_.get(), in_copy_.get());
  nlohmann::json details = execution_->describe();
  if (!status_.ports.empty()) details["ports"] = status_.ports;
  if (!sockets_.empty()) details["sockets"] = sockets_.describe();
  // Adopted: a workload that outlived the previous daemon, taken over, not restarted.
  record(execution_->adopted() ? EventType::attached : EventType::started, std::move(details));
  co_await feed({EventKind::spawned});
}

void ServiceActor::begin_incarnation(std::unique_ptr<Execution> ex) {
  execution_ = std::move(ex);
  ++status_.generation;
  status_.pid = execution_->pid() > 0 ? std::optional<pid_t>(execution_->pid()) : std::nullopt;
  status_.pid_start_ticks = execution_->pid_start_ticks();
  status_.cgroup = execution_->cgroup();
  status_.started_at = std::chrono::system_clock::now();
  status_.last_error.clear();
  status_.next_restart_in = {};
  status_.health = spec_->health ? Health::unknown : Health::none;
  status_.health_reason.clear();
  status_.notify_status.clear();
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
  if (execution_) {
    // Before "exited": why it died comes first in the journal.
    if (std::optional<runtime::OomCounters> last = execution_->final_oom_counters()) note_oom(*last);
    execution_->exited();
    retired_ = std::move(execution_);
  }
  status_.pid.reset();
  status_.pid_start_ticks = 0;
  status_.cgroup.clear();
  nlohmann::json details = exit_details(ex);
  if (spec_->attach)
    details["reason"] = "attached: Dockless is not its parent, so its exit status cannot be read";
  record(EventType::exited, std::move(details));
}

nlohmann::json exit_details(const ProcessExited& ex) {
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
  return d;
}

void ServiceActor::on_health(const HealthChanged& h) {
  const Health now = h.report.healthy ? Health::healthy : Health::unhealthy;
  status_.health_reason = h.report.reason;
  if (now == status_.health) return;
  status_.health = now;
  record(EventType::health, {{"health", to_string(now)}, {"reason", h.report.reason}});
}

Task<void> ServiceActor::on_ready(const ReadySignal& r) {
  if (r.report.status) status_.notify_status = *r.report.status;
  if (!r.report.ready || machine_.state() != State::starting) co_return;
  record(EventType::ready, {{"status", status_.notify_status}});
  co_await feed({EventKind::ready});
}

void ServiceActor::do_stop_signal() {
  if (!alive()) return;
  record(EventType::stopping, {{"signal", runtime::signal_name(spec_->stop_signal)},
                               {"timeout_ms", spec_->stop_timeout.count()}});
  execution_->stop(spec_->stop_signal, spec_->stop_timeout);
  arm_timer(spec_->stop_timeout, EventKind::stop_timeout);
}

void ServiceActor::do_kill(KillReason reason) {
  if (!alive()) return;
  const bool ready_timeout = reason == KillReason::ready_timeout;
  record(EventType::killed, {{"reason", ready_timeout ? "ready_timeout expired" : "stop_timeout expired"},
                             {"timeout_ms", (ready_timeout ? spec_->ready_timeout : spec_->stop_timeout).count()}});
  execution_->kill();
}

void ServiceActor::arm_timer(std::chrono::milliseconds delay, EventKind kind) {
  cancel_timer();
  timer_stop_.emplace();
  const std::uint64_t id = ++timer_id_;
  // restart_delay = "0s": the mailbox is the timer. It keeps the order a timer
  // gives (a command already queued goes first; cancel_timer() still voids it)
  // without a timeout's round trip through the ring and a coroutine per restart,
  // which a zero-delay crash loop would pay on every exit. (A full mailbox falls
  // back to the timer.)
  if (delay <= std::chrono::milliseconds::zero() && post(TimerFired{id, kind})) return;
  auto body = [](ServiceActor* self, std::chrono::milliseconds d, EventKind k, std::uint64_t tid,
                 std::stop_token st) -> Task<void> {
    runtime::Result<int> r = co_await runtime::sleep_for(d).stop_on(st);
    if (r.ok()) self->post(TimerFired{tid, k});
  };
  timers_.spawn(body(this, delay, kind, id, timer_stop_->get_token()), spec_->name + "/timer");
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
  if (retired_) {
    co_await retired_->close();
    retired_.reset();
  }
  if (execution_) {
    co_await execution_->close();
    execution_.reset();
  }
}

}  // namespace actors
