#include "actors/service_machine.hpp"

#include <algorithm>

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
Step go(State next, std::vector<Action> actions = {}) { return Step{next, std::move(actions)}; }
Step ignore(State same) {
  Step s{same, {}};
  s.ignored = true;
  return s;
}
}  // namespace

// The table. Each case is one row family; every (state, event) pair lands in
// exactly one return, and the default of each state is "ignored" — stale timer
// and exit events from an earlier incarnation are harmless by construction.
Step ServiceMachine::handle(const ServiceEvent& e) {
  Step step = ignore(state_);
  switch (state_) {
    case State::stopped:
      // Only a fresh actor (stopped) takes over an instance: it is already running,
      // so nothing is spawned, and readiness was settled by the previous daemon.
      if (e.kind == EventKind::adopted) {
        restarts_ = e.restarts;
        started_at_ = e.now - e.uptime;
        step = go(State::running);
        break;
      }
      [[fallthrough]];
    case State::exited:
      if (e.kind == EventKind::start || e.kind == EventKind::restart) step = go(State::starting, {Action::spawn});
      else if (e.kind == EventKind::stop) step = go(State::stopped);
      break;
    case State::failed:
      // A manual start after a crash loop starts with a clean record.
      if (e.kind == EventKind::start || e.kind == EventKind::restart) {
        recent_restarts_.clear();
        delay_ = Millis{0};
        step = go(State::starting, {Action::spawn});
      } else if (e.kind == EventKind::stop) {
        step = go(State::stopped);
      }
      break;
    case State::starting:
      if (e.kind == EventKind::spawned) {
        started_at_ = e.now;
        if (policy_.await_ready) {
          step = go(State::starting, {Action::arm_ready_timer});
          step.delay = policy_.ready_timeout;
        } else {
          step = go(State::running);
        }
      } else if (e.kind == EventKind::ready) {
        step = go(State::running, {Action::cancel_timer});
      } else if (e.kind == EventKind::ready_timeout) {
        // Killed at once: the exit that follows is a failed start (a signal), so the
        // restart policy and the crash-loop limit decide what comes next.
        step = go(State::starting, {Action::kill});
      } else if (e.kind == EventKind::spawn_failed) {
        step = on_exit(e, true);
      } else if (e.kind == EventKind::exited) {
        step = on_exit(e, !e.exit_success);
      } else if (e.kind == EventKind::stop) {
        step = go(State::stopping, {Action::send_stop_signal});
      } else if (e.kind == EventKind::restart) {
        restart_pending_ = true;
        step = go(State::stopping, {Action::send_stop_signal});
      }
      break;
    case State::running:
      if (e.kind == EventKind::exited) {
        step = on_exit(e, !e.exit_success);
      } else if (e.kind == EventKind::stop) {
        step = go(State::stopping, {Action::send_stop_signal});
      } else if (e.kind == EventKind::restart || e.kind == EventKind::unhealthy) {
        restart_pending_ = true;
        step = go(State::stopping, {Action::send_stop_signal});
      }
      break;
    case State::stopping:
      if (e.kind == EventKind::exited) {
        // The exit we asked for: never counted as a crash, never backed off.
        if (restart_pending_) step = go(State::starting, {Action::cancel_timer, Action::spawn});
        else step = go(State::stopped, {Action::cancel_timer});
        restart_pending_ = false;
      } else if (e.kind == EventKind::stop_timeout) {
        step = go(State::stopping, {Action::kill});
      } else if (e.kind == EventKind::start || e.kind == EventKind::restart) {
        restart_pending_ = true;
        step = go(State::stopping);
      } else if (e.kind == EventKind::stop) {
        restart_pending_ = false;
        step = go(State::stopping);
      }
      break;
    case State::backoff:
      if (e.kind == EventKind::backoff_elapsed) {
        step = go(State::starting, {Action::spawn});
      } else if (e.kind == EventKind::start || e.kind == EventKind::restart) {
        step = go(State::starting, {Action::cancel_timer, Action::spawn});
      } else if (e.kind == EventKind::stop) {
        step = go(State::stopped, {Action::cancel_timer});
      }
      break;
  }
  state_ = step.next;
  return step;
}

Step ServiceMachine::on_exit(const ServiceEvent& e, bool crashed) {
  restart_pending_ = false;
  const bool restart = policy_.restart == config::RestartPolicy::always ||
                       (policy_.restart == config::RestartPolicy::on_failure && crashed);
  if (!restart) return go(crashed ? State::failed : State::exited);
  return schedule_restart(e);
}

Step ServiceMachine::schedule_restart(const ServiceEvent& e) {
  // Crash-loop limit: more than `limit` automatic restarts inside `window`.
  while (!recent_restarts_.empty() && e.now - recent_restarts_.front() > policy_.window)
    recent_restarts_.pop_front();
  if (policy_.limit > 0 && static_cast<int>(recent_restarts_.size()) >= policy_.limit) {
    Step s = go(State::failed);
    s.crash_loop = true;
    return s;
  }
  recent_restarts_.push_back(e.now);
  ++restarts_;
  // Exponential backoff, reset once the last run stayed up for reset_after.
  const bool stable = started_at_ != Clock::time_point{} && e.now - started_at_ >= policy_.reset_after;
  if (delay_ == Millis{0} || stable) delay_ = policy_.delay;
  else delay_ = std::min(policy_.delay_max, std::max(delay_ * 2, Millis{1}));
  if (stable) delay_ = policy_.delay;
  Step s = go(State::backoff, {Action::arm_backoff});
  s.delay = std::min(delay_, policy_.delay_max);
  s.counted_restart = true;
  return s;
}

}  // namespace actors

namespace actors {
// The test table in tests/actors/service_machine_test.cpp has one row per pair;
// these keep the enums and their lists (and so that table's size) in step.
static_assert(kAllStates.size() == static_cast<std::size_t>(State::failed) + 1);
static_assert(kAllEvents.size() == static_cast<std::size_t>(EventKind::adopted) + 1);
}  // namespace actors
