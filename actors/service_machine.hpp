#pragma once
// The supervision policy of one service as a pure state machine: (state, event)
// in, next state and a list of actions out. The policy is a table of constexpr rows
// in service_machine.cpp (s6 style), one row per (state, event) pair, more where a
// named guard picks between them; handle() only looks rows up. No I/O here, so every
// row has a unit test (tests/actors/service_machine_test.cpp keeps its own rows);
// the ServiceActor performs the actions.
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace actors {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

enum class State : std::uint8_t { stopped, starting, running, stopping, exited, backoff, failed };
inline constexpr std::array kAllStates = {State::stopped, State::starting, State::running,
                                          State::stopping, State::exited, State::backoff,
                                          State::failed};

enum class EventKind : std::uint8_t {
  start,           // operator or boot wants it running
  stop,            // operator wants it stopped
  restart,         // stop if running, then start
  spawned,         // exec succeeded
  spawn_failed,    // exec (or a step before it) failed
  exited,          // the process is gone and reaped
  backoff_elapsed, // restart delay is over
  stop_timeout,    // stop_timeout passed after the stop signal
  unhealthy,       // health check says so and restart_on_unhealthy is set
  ready,           // ready = notify / fd:N: the service said READY
  ready_timeout,   // ready_timeout passed in starting without it
  adopted,         // a still-running instance was taken over (daemon crash or upgrade)
};
inline constexpr std::array kAllEvents = {
    EventKind::start,   EventKind::stop,    EventKind::restart,
    EventKind::spawned, EventKind::spawn_failed, EventKind::exited,
    EventKind::backoff_elapsed, EventKind::stop_timeout, EventKind::unhealthy,
    EventKind::ready,   EventKind::ready_timeout, EventKind::adopted};

std::string_view to_string(State s);
std::string_view to_string(EventKind e);

struct ServiceEvent {
  EventKind kind;
  bool exit_success = false;  // exited: clean exit (code 0)
  Clock::time_point now{};
  // adopted: what the previous daemon knew, so the restart count and the backoff
  // reset (uptime) continue instead of starting over.
  int restarts = 0;
  Millis uptime{0};
};

enum class Action : std::uint8_t {
  spawn,            // start the process
  send_stop_signal, // stop_signal to the process group, and arm the stop timer
  kill,             // SIGKILL to the process group
  arm_backoff,      // timer for `delay`, then backoff_elapsed
  cancel_timer,     // forget a pending backoff/stop/ready timer
  arm_ready_timer,  // timer for `delay`, then ready_timeout
};

struct Step {
  State next;
  std::vector<Action> actions;
  Millis delay{0};          // arm_backoff, arm_ready_timer
  bool counted_restart = false;  // this step schedules an automatic restart
  bool crash_loop = false;       // parked in failed by the restart limit
  bool ignored = false;          // the event means nothing in this state
};

struct Policy {
  config::RestartPolicy restart = config::RestartPolicy::on_failure;
  Millis delay{100};
  Millis delay_max{30'000};
  Millis reset_after{60'000};
  int limit = 5;  // 0 = unlimited
  Millis window{10'000};
  // ready = notify / fd:N: `spawned` is not enough, the service must say so.
  bool await_ready = false;
  Millis ready_timeout{60'000};
  static Policy from(const config::ServiceSpec& spec);
};

class ServiceMachine {
 public:
  // What a row may require besides its (state, event): the rows of one pair are
  // tried in order, the first whose guard holds applies, and the last has `none`.
  enum class Guard : std::uint8_t {
    none,
    awaits_ready,     // ready = notify / fd:N: `spawned` is not enough
    restart_pending,  // a start or restart arrived while stopping
    crash_loop,       // the restart policy says restart, but `limit` restarts are inside `window`
    policy_restarts,  // the restart policy says restart after this exit
    crashed,          // the exit is a failure (spawn_failed, a signal, a non-zero code)
  };
  // The machine's own bookkeeping a row does (the actor never sees it).
  enum class Effect : std::uint8_t {
    none,
    take_over_record,  // adopted: restarts and uptime continue from the previous daemon
    clear_record,      // a manual start after a crash loop starts with a clean record
    mark_started,      // uptime (for the backoff reset) counts from here
    want_restart,      // the stop in progress is on the way to a start
    drop_restart,      // ... no longer (a stop, or the exit that ends it)
    count_restart,     // an automatic restart: the crash-loop window, the count, the next delay
    park,              // the crash-loop limit parks the service in failed
  };

  explicit ServiceMachine(Policy p) : policy_(p) {}

  Step handle(const ServiceEvent& e);

  State state() const noexcept { return state_; }
  int restarts() const noexcept { return restarts_; }
  Millis current_delay() const noexcept { return delay_; }
  void set_policy(Policy p) { policy_ = p; }
  // For tests that start from a given row.
  void force_state(State s) { state_ = s; }

 private:
  bool holds(Guard g, const ServiceEvent& e) const;
  void apply(Effect f, const ServiceEvent& e, Step& step);
  bool restart_wanted(const ServiceEvent& e) const;
  bool crash_loop_limit_reached(const ServiceEvent& e) const;

  Policy policy_;
  State state_ = State::stopped;
  bool restart_pending_ = false;  // a stop is in progress on the way to a start
  int restarts_ = 0;              // automatic restarts since the daemon started it
  Millis delay_{0};               // the delay the last backoff used
  Clock::time_point started_at_{};
  // Inside `window`, for the crash-loop limit. A vector: empty until the first restart,
  // where a deque allocates ~600 bytes up front in every idle service (issue #12).
  std::vector<Clock::time_point> recent_restarts_;
};

}  // namespace actors
