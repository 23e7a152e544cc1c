#include "actors/service_machine.hpp"

#include "actors/service_machine_table.hpp"

#include <algorithm>
#include <cstddef>

namespace actors {

std::string_view to_string(State s) {
  switch (s) {
    case State::stopped: return "stopped";
    case State::starting: return "starting";
    case State::running: return "running";
    case State::stopping: return "stopping";
    case State::exited: return "exited";
    case State::backoff: return "backoff";
    case State::failed: return "failed";
  }
  return "?";
}

std::string_view to_string(EventKind e) {
  switch (e) {
    case EventKind::start: return "start";
    case EventKind::stop: return "stop";
    case EventKind::restart: return "restart";
    case EventKind::spawned: return "spawned";
    case EventKind::spawn_failed: return "spawn_failed";
    case EventKind::exited: return "exited";
    case EventKind::backoff_elapsed: return "backoff_elapsed";
    case EventKind::stop_timeout: return "stop_timeout";
    case EventKind::unhealthy: return "unhealthy";
    case EventKind::ready: return "ready";
    case EventKind::ready_timeout: return "ready_timeout";
    case EventKind::adopted: return "adopted";
  }
  return "?";
}

Policy Policy::from(const config::ServiceSpec& spec) {
  Policy p;
  p.restart = spec.restart;
  p.delay = spec.restart_delay;
  p.delay_max = spec.restart_delay_max;
  p.reset_after = spec.restart_reset_after;
  p.limit = spec.restart_limit;
  p.window = spec.restart_window;
  p.await_ready = spec.ready != config::ReadyMode::exec;
  p.ready_timeout = spec.ready_timeout;
  return p;
}

namespace {

using S = State;
using E = EventKind;
using A = Action;
using G = ServiceMachine::Guard;
using F = ServiceMachine::Effect;

// No row needs more than two actions.
using Actions = table::Actions<Action, 2>;
constexpr Actions nothing{};
constexpr Actions act(A a) { return {{a, a}, 1}; }
constexpr Actions act(A a, A b) { return {{a, b}, 2}; }

struct Row {
  State from;
  EventKind event;
  ServiceMachine::Guard guard;
  State next;
  Actions actions;
  ServiceMachine::Effect effect;
  bool ignored;
  constexpr bool inert() const { return next == from && actions.size == 0 && effect == F::none; }
};

// An unconditional row, a guarded one, and "the event means nothing here".
constexpr Row on(S from, E ev, S next, Actions a = nothing, F f = F::none) {
  return {from, ev, G::none, next, a, f, false};
}
constexpr Row when(S from, E ev, G g, S next, Actions a = nothing, F f = F::none) {
  return {from, ev, g, next, a, f, false};
}
constexpr Row ignore(S from, E ev) { return {from, ev, G::none, from, nothing, F::none, true}; }

// The policy. One block per state, one line per event in kAllEvents order; where
// a guard decides, the pair has several lines, tried top to bottom. Stale timer
// and exit events from an earlier incarnation land on "ignore" rows by construction.
constexpr Row kRows[] = {
    // stopped: only a start (or taking over a running instance) leaves it.
    on(S::stopped, E::start, S::starting, act(A::spawn)),
    on(S::stopped, E::stop, S::stopped),
    on(S::stopped, E::restart, S::starting, act(A::spawn)),
    ignore(S::stopped, E::spawned),
    ignore(S::stopped, E::spawn_failed),
    ignore(S::stopped, E::exited),
    ignore(S::stopped, E::backoff_elapsed),
    ignore(S::stopped, E::stop_timeout),
    ignore(S::stopped, E::unhealthy),
    ignore(S::stopped, E::ready),
    ignore(S::stopped, E::ready_timeout),
    // Only a fresh actor takes over an instance: it is already running, so nothing is
    // spawned, and readiness was settled by the previous daemon.
    on(S::stopped, E::adopted, S::running, nothing, F::take_over_record),

    // starting: spawned, waiting for exec (or for READY).
    ignore(S::starting, E::start),
    on(S::starting, E::stop, S::stopping, act(A::send_stop_signal)),
    on(S::starting, E::restart, S::stopping, act(A::send_stop_signal), F::want_restart),
    when(S::starting, E::spawned, G::awaits_ready, S::starting, act(A::arm_ready_timer), F::mark_started),
    on(S::starting, E::spawned, S::running, nothing, F::mark_started),
    when(S::starting, E::spawn_failed, G::crash_loop, S::failed, nothing, F::park),
    when(S::starting, E::spawn_failed, G::policy_restarts, S::backoff, act(A::arm_backoff), F::count_restart),
    on(S::starting, E::spawn_failed, S::failed, nothing, F::drop_restart),
    when(S::starting, E::exited, G::crash_loop, S::failed, nothing, F::park),
    when(S::starting, E::exited, G::policy_restarts, S::backoff, act(A::arm_backoff), F::count_restart),
    when(S::starting, E::exited, G::crashed, S::failed, nothing, F::drop_restart),
    on(S::starting, E::exited, S::exited, nothing, F::drop_restart),
    ignore(S::starting, E::backoff_elapsed),
    ignore(S::starting, E::stop_timeout),
    ignore(S::starting, E::unhealthy),
    on(S::starting, E::ready, S::running, act(A::cancel_timer)),
    // Killed at once: the exit that follows is a failed start (a signal), so the
    // restart policy and the crash-loop limit decide what comes next.
    on(S::starting, E::ready_timeout, S::starting, act(A::kill)),
    ignore(S::starting, E::adopted),

    // running
    ignore(S::running, E::start),
    on(S::running, E::stop, S::stopping, act(A::send_stop_signal)),
    on(S::running, E::restart, S::stopping, act(A::send_stop_signal), F::want_restart),
    ignore(S::running, E::spawned),
    ignore(S::running, E::spawn_failed),
    when(S::running, E::exited, G::crash_loop, S::failed, nothing, F::park),
    when(S::running, E::exited, G::policy_restarts, S::backoff, act(A::arm_backoff), F::count_restart),
    when(S::running, E::exited, G::crashed, S::failed, nothing, F::drop_restart),
    on(S::running, E::exited, S::exited, nothing, F::drop_restart),
    ignore(S::running, E::backoff_elapsed),
    ignore(S::running, E::stop_timeout),
    on(S::running, E::unhealthy, S::stopping, act(A::send_stop_signal), F::want_restart),
    ignore(S::running, E::ready),
    ignore(S::running, E::ready_timeout),
    ignore(S::running, E::adopted),

    // stopping: the stop signal is out. A start or restart meanwhile is remembered;
    // the exit we asked for is never counted as a crash, never backed off.
    on(S::stopping, E::start, S::stopping, nothing, F::want_restart),
    on(S::stopping, E::stop, S::stopping, nothing, F::drop_restart),
    on(S::stopping, E::restart, S::stopping, nothing, F::want_restart),
    ignore(S::stopping, E::spawned),
    ignore(S::stopping, E::spawn_failed),
    when(S::stopping, E::exited, G::restart_pending, S::starting, act(A::cancel_timer, A::spawn), F::drop_restart),
    on(S::stopping, E::exited, S::stopped, act(A::cancel_timer), F::drop_restart),
    ignore(S::stopping, E::backoff_elapsed),
    on(S::stopping, E::stop_timeout, S::stopping, act(A::kill)),
    ignore(S::stopping, E::unhealthy),
    ignore(S::stopping, E::ready),
    ignore(S::stopping, E::ready_timeout),
    ignore(S::stopping, E::adopted),

    // exited: a clean exit the policy does not restart.
    on(S::exited, E::start, S::starting, act(A::spawn)),
    on(S::exited, E::stop, S::stopped),
    on(S::exited, E::restart, S::starting, act(A::spawn)),
    ignore(S::exited, E::spawned),
    ignore(S::exited, E::spawn_failed),
    ignore(S::exited, E::exited),
    ignore(S::exited, E::backoff_elapsed),
    ignore(S::exited, E::stop_timeout),
    ignore(S::exited, E::unhealthy),
    ignore(S::exited, E::ready),
    ignore(S::exited, E::ready_timeout),
    ignore(S::exited, E::adopted),

    // backoff: waiting out the restart delay.
    on(S::backoff, E::start, S::starting, act(A::cancel_timer, A::spawn)),
    on(S::backoff, E::stop, S::stopped, act(A::cancel_timer)),
    on(S::backoff, E::restart, S::starting, act(A::cancel_timer, A::spawn)),
    ignore(S::backoff, E::spawned),
    ignore(S::backoff, E::spawn_failed),
    ignore(S::backoff, E::exited),
    on(S::backoff, E::backoff_elapsed, S::starting, act(A::spawn)),
    ignore(S::backoff, E::stop_timeout),
    ignore(S::backoff, E::unhealthy),
    ignore(S::backoff, E::ready),
    ignore(S::backoff, E::ready_timeout),
    ignore(S::backoff, E::adopted),

    // failed: a crash the policy does not restart, or the crash-loop limit. A manual
    // start begins with a clean record.
    on(S::failed, E::start, S::starting, act(A::spawn), F::clear_record),
    on(S::failed, E::stop, S::stopped),
    on(S::failed, E::restart, S::starting, act(A::spawn), F::clear_record),
    ignore(S::failed, E::spawned),
    ignore(S::failed, E::spawn_failed),
    ignore(S::failed, E::exited),
    ignore(S::failed, E::backoff_elapsed),
    ignore(S::failed, E::stop_timeout),
    ignore(S::failed, E::unhealthy),
    ignore(S::failed, E::ready),
    ignore(S::failed, E::ready_timeout),
    ignore(S::failed, E::adopted),
};

constexpr std::size_t kStates = kAllStates.size();
constexpr std::size_t kEvents = kAllEvents.size();
static_assert(kStates == static_cast<std::size_t>(State::failed) + 1);
static_assert(kEvents == static_cast<std::size_t>(EventKind::adopted) + 1);
static_assert(table::well_formed<kStates, kEvents>(kRows),
              "every (state, event) pair has its rows together, the last one unguarded");
constexpr auto kFirstRow = table::first_rows<kStates, kEvents>(kRows);

}  // namespace

Step ServiceMachine::handle(const ServiceEvent& e) {
  const Row& row = table::lookup<kEvents>(kRows, kFirstRow, state_, e.kind, [&](Guard g) { return holds(g, e); });
  Step step{row.next, row.actions.to_vector()};
  step.ignored = row.ignored;
  apply(row.effect, e, step);
  for (Action a : step.actions) {
    if (a == Action::arm_backoff) step.delay = std::min(delay_, policy_.delay_max);
    if (a == Action::arm_ready_timer) step.delay = policy_.ready_timeout;
  }
  state_ = step.next;
  return step;
}

bool ServiceMachine::holds(Guard g, const ServiceEvent& e) const {
  switch (g) {
    case Guard::none: return true;
    case Guard::awaits_ready: return policy_.await_ready;
    case Guard::restart_pending: return restart_pending_;
    case Guard::crash_loop: return restart_wanted(e) && crash_loop_limit_reached(e);
    case Guard::policy_restarts: return restart_wanted(e);
    case Guard::crashed: return e.kind == EventKind::spawn_failed || !e.exit_success;
  }
  return false;
}

bool ServiceMachine::restart_wanted(const ServiceEvent& e) const {
  const bool crashed = holds(Guard::crashed, e);
  return policy_.restart == config::RestartPolicy::always ||
         (policy_.restart == config::RestartPolicy::on_failure && crashed);
}

// More than `limit` automatic restarts inside `window`. The record is in time order,
// so what fell out of the window is a prefix (count_restart drops it).
bool ServiceMachine::crash_loop_limit_reached(const ServiceEvent& e) const {
  if (policy_.limit <= 0) return false;
  auto in_window = std::find_if(recent_restarts_.begin(), recent_restarts_.end(),
                                [&](Clock::time_point t) { return e.now - t <= policy_.window; });
  return recent_restarts_.end() - in_window >= policy_.limit;
}

void ServiceMachine::apply(Effect f, const ServiceEvent& e, Step& step) {
  switch (f) {
    case Effect::none: return;
    case Effect::take_over_record:
      restarts_ = e.restarts;
      started_at_ = e.now - e.uptime;
      return;
    case Effect::clear_record:
      recent_restarts_.clear();
      delay_ = Millis{0};
      return;
    case Effect::mark_started: started_at_ = e.now; return;
    case Effect::want_restart: restart_pending_ = true; return;
    case Effect::drop_restart: restart_pending_ = false; return;
    case Effect::park:
      restart_pending_ = false;
      step.crash_loop = true;
      return;
    case Effect::count_restart: {
      restart_pending_ = false;
      recent_restarts_.erase(recent_restarts_.begin(),
                             std::find_if(recent_restarts_.begin(), recent_restarts_.end(),
                                          [&](Clock::time_point t) { return e.now - t <= policy_.window; }));
      recent_restarts_.push_back(e.now);
      ++restarts_;
      // Exponential backoff, reset once the last run stayed up for reset_after.
      const bool stable = started_at_ != Clock::time_point{} && e.now - started_at_ >= policy_.reset_after;
      if (delay_ == Millis{0} || stable) delay_ = policy_.delay;
      else delay_ = std::min(policy_.delay_max, std::max(delay_ * 2, Millis{1}));
      step.counted_restart = true;
      return;
    }
  }
}

}  // namespace actors
