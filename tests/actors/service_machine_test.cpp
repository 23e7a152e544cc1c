// One test per (state, event) row of the supervision table, plus the policy
// arithmetic (backoff growth and reset, crash-loop limit).
#include <gtest/gtest.h>

#include "actors/service_machine.hpp"

using namespace actors;
using namespace std::chrono_literals;
using A = Action;
using E = EventKind;
using S = State;

namespace {

struct Row {
  S from;
  E event;
  bool success;  // exit_success for exited
  S to;
  std::vector<A> actions;
  bool ignored;
};

// Policy: on-failure, 100ms first delay, limit 5 in 10s.
const Row kTable[] = {
    // stopped
    {S::stopped, E::start, false, S::starting, {A::spawn}, false},
    {S::stopped, E::stop, false, S::stopped, {}, false},
    {S::stopped, E::restart, false, S::starting, {A::spawn}, false},
    {S::stopped, E::spawned, false, S::stopped, {}, true},
    {S::stopped, E::spawn_failed, false, S::stopped, {}, true},
    {S::stopped, E::exited, false, S::stopped, {}, true},
    {S::stopped, E::backoff_elapsed, false, S::stopped, {}, true},
    {S::stopped, E::stop_timeout, false, S::stopped, {}, true},
    {S::stopped, E::unhealthy, false, S::stopped, {}, true},
    {S::stopped, E::ready, false, S::stopped, {}, true},
    {S::stopped, E::adopted, false, S::running, {}, false},
    {S::stopped, E::ready_timeout, false, S::stopped, {}, true},
    // starting
    {S::starting, E::start, false, S::starting, {}, true},
    {S::starting, E::stop, false, S::stopping, {A::send_stop_signal}, false},
    {S::starting, E::restart, false, S::stopping, {A::send_stop_signal}, false},
    {S::starting, E::spawned, false, S::running, {}, false},
    {S::starting, E::spawn_failed, false, S::backoff, {A::arm_backoff}, false},
    {S::starting, E::exited, false, S::backoff, {A::arm_backoff}, false},
    {S::starting, E::backoff_elapsed, false, S::starting, {}, true},
    {S::starting, E::stop_timeout, false, S::starting, {}, true},
    {S::starting, E::unhealthy, false, S::starting, {}, true},
    {S::starting, E::ready, false, S::running, {A::cancel_timer}, false},
    {S::starting, E::adopted, false, S::starting, {}, true},
    {S::starting, E::ready_timeout, false, S::starting, {A::kill}, false},
    // running
    {S::running, E::start, false, S::running, {}, true},
    {S::running, E::stop, false, S::stopping, {A::send_stop_signal}, false},
    {S::running, E::restart, false, S::stopping, {A::send_stop_signal}, false},
    {S::running, E::spawned, false, S::running, {}, true},
    {S::running, E::spawn_failed, false, S::running, {}, true},
    {S::running, E::exited, false, S::backoff, {A::arm_backoff}, false},
    {S::running, E::backoff_elapsed, false, S::running, {}, true},
    {S::running, E::stop_timeout, false, S::running, {}, true},
    {S::running, E::unhealthy, false, S::stopping, {A::send_stop_signal}, false},
    {S::running, E::ready, false, S::running, {}, true},
    {S::running, E::adopted, false, S::running, {}, true},
    {S::running, E::ready_timeout, false, S::running, {}, true},
    // stopping
    {S::stopping, E::start, false, S::stopping, {}, false},
    {S::stopping, E::stop, false, S::stopping, {}, false},
    {S::stopping, E::restart, false, S::stopping, {}, false},
    {S::stopping, E::spawned, false, S::stopping, {}, true},
    {S::stopping, E::spawn_failed, false, S::stopping, {}, true},
    {S::stopping, E::exited, false, S::stopped, {A::cancel_timer}, false},
    {S::stopping, E::backoff_elapsed, false, S::stopping, {}, true},
    {S::stopping, E::stop_timeout, false, S::stopping, {A::kill}, false},
    {S::stopping, E::unhealthy, false, S::stopping, {}, true},
    {S::stopping, E::ready, false, S::stopping, {}, true},
    {S::stopping, E::adopted, false, S::stopping, {}, true},
    {S::stopping, E::ready_timeout, false, S::stopping, {}, true},
    // exited
    {S::exited, E::start, false, S::starting, {A::spawn}, false},
    {S::exited, E::stop, false, S::stopped, {}, false},
    {S::exited, E::restart, false, S::starting, {A::spawn}, false},
    {S::exited, E::spawned, false, S::exited, {}, true},
    {S::exited, E::spawn_failed, false, S::exited, {}, true},
    {S::exited, E::exited, false, S::exited, {}, true},
    {S::exited, E::backoff_elapsed, false, S::exited, {}, true},
    {S::exited, E::stop_timeout, false, S::exited, {}, true},
    {S::exited, E::unhealthy, false, S::exited, {}, true},
    {S::exited, E::ready, false, S::exited, {}, true},
    {S::exited, E::adopted, false, S::exited, {}, true},
    {S::exited, E::ready_timeout, false, S::exited, {}, true},
    // backoff
    {S::backoff, E::start, false, S::starting, {A::cancel_timer, A::spawn}, false},
    {S::backoff, E::stop, false, S::stopped, {A::cancel_timer}, false},
    {S::backoff, E::restart, false, S::starting, {A::cancel_timer, A::spawn}, false},
    {S::backoff, E::spawned, false, S::backoff, {}, true},
    {S::backoff, E::spawn_failed, false, S::backoff, {}, true},
    {S::backoff, E::exited, false, S::backoff, {}, true},
    {S::backoff, E::backoff_elapsed, false, S::starting, {A::spawn}, false},
    {S::backoff, E::stop_timeout, false, S::backoff, {}, true},
    {S::backoff, E::unhealthy, false, S::backoff, {}, true},
    {S::backoff, E::ready, false, S::backoff, {}, true},
    {S::backoff, E::adopted, false, S::backoff, {}, true},
    {S::backoff, E::ready_timeout, false, S::backoff, {}, true},
    // failed
    {S::failed, E::start, false, S::starting, {A::spawn}, false},
    {S::failed, E::stop, false, S::stopped, {}, false},
    {S::failed, E::restart, false, S::starting, {A::spawn}, false},
    {S::failed, E::spawned, false, S::failed, {}, true},
    {S::failed, E::spawn_failed, false, S::failed, {}, true},
    {S::failed, E::exited, false, S::failed, {}, true},
    {S::failed, E::backoff_elapsed, false, S::failed, {}, true},
    {S::failed, E::stop_timeout, false, S::failed, {}, true},
    {S::failed, E::unhealthy, false, S::failed, {}, true},
    {S::failed, E::ready, false, S::failed, {}, true},
    {S::failed, E::adopted, false, S::failed, {}, true},
    {S::failed, E::ready_timeout, false, S::failed, {}, true},
};
static_assert(std::size(kTable) == kAllStates.size() * kAllEvents.size(),
              "one row per (state, event) pair");

class Table : public testing::TestWithParam<Row> {};

TEST_P(Table, Row) {
  const Row& row = GetParam();
  ServiceMachine m(Policy{});
  m.force_state(row.from);
  Step s = m.handle(ServiceEvent{row.event, row.success, Clock::now()});
  EXPECT_EQ(s.next, row.to) << to_string(row.from) << " x " << to_string(row.event);
  EXPECT_EQ(m.state(), row.to);
  EXPECT_EQ(s.actions, row.actions) << to_string(row.from) << " x " << to_string(row.event);
  EXPECT_EQ(s.ignored, row.ignored);
}

std::string row_name(const testing::TestParamInfo<Row>& info) {
  return std::string(to_string(info.param.from)) + "_" + std::string(to_string(info.param.event));
}

INSTANTIATE_TEST_SUITE_P(AllPairs, Table, testing::ValuesIn(kTable), row_name);

// The rows that differ when the service must say READY (ready = "notify" / "fd:N").
const Row kAwaitReadyTable[] = {
    {S::starting, E::spawned, false, S::starting, {A::arm_ready_timer}, false},
    {S::starting, E::ready, false, S::running, {A::cancel_timer}, false},
    {S::starting, E::ready_timeout, false, S::starting, {A::kill}, false},
    {S::starting, E::exited, false, S::backoff, {A::arm_backoff}, false},
    {S::running, E::ready, false, S::running, {}, true},
};

Policy await_ready_policy() {
  Policy p;
  p.await_ready = true;
  p.ready_timeout = 5s;
  return p;
}

class AwaitReadyTable : public testing::TestWithParam<Row> {};

TEST_P(AwaitReadyTable, Row) {
  const Row& row = GetParam();
  ServiceMachine m(await_ready_policy());
  m.force_state(row.from);
  Step s = m.handle(ServiceEvent{row.event, row.success, Clock::now()});
  EXPECT_EQ(s.next, row.to) << to_string(row.from) << " x " << to_string(row.event);
  EXPECT_EQ(s.actions, row.actions) << to_string(row.from) << " x " << to_string(row.event);
  EXPECT_EQ(s.ignored, row.ignored);
  if (row.event == E::spawned) {
    EXPECT_EQ(s.delay, 5s);
  }
}

INSTANTIATE_TEST_SUITE_P(AwaitReady, AwaitReadyTable, testing::ValuesIn(kAwaitReadyTable), row_name);

TEST(Policy, ReadyTimeoutKillsAndTheExitIsAFailedStart) {
  Policy p = await_ready_policy();
  p.restart = config::RestartPolicy::no;
  ServiceMachine m(p);
  const auto t = Clock::now();
  m.handle({E::start, false, t});
  EXPECT_EQ(m.handle({E::spawned, false, t}).next, S::starting);
  EXPECT_EQ(m.handle({E::ready_timeout, false, t + 5s}).actions, std::vector<A>{A::kill});
  EXPECT_EQ(m.handle({E::exited, false, t + 5s}).next, S::failed);
}

TEST(Policy, ReadyTimeoutRestartsPerPolicyUntilTheCrashLoopLimit) {
  Policy p = await_ready_policy();
  p.limit = 2;
  ServiceMachine m(p);
  auto t = Clock::now();
  m.handle({E::start, false, t});
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(m.handle({E::spawned, false, t}).next, S::starting);
    m.handle({E::ready_timeout, false, t});
    Step s = m.handle({E::exited, false, t});
    if (i < 2) {
      ASSERT_EQ(s.next, S::backoff) << i;
      m.handle({E::backoff_elapsed, false, t});
    } else {
      EXPECT_EQ(s.next, S::failed);
      EXPECT_TRUE(s.crash_loop);
    }
    t += 1ms;
  }
}

// A taken-over instance keeps the previous daemon's restart count, and its uptime
// counts toward the backoff reset: a stable service adopted after a crash that then
// dies gets the first delay, not a doubled one.
TEST(Policy, AdoptedKeepsRestartsAndUptime) {
  Policy p;
  p.delay = 100ms;
  p.reset_after = 60s;
  ServiceMachine m(p);
  const auto t = Clock::now();
  ServiceEvent adopt{E::adopted, false, t};
  adopt.restarts = 3;
  adopt.uptime = 120s;
  Step s = m.handle(adopt);
  EXPECT_EQ(s.next, S::running);
  EXPECT_TRUE(s.actions.empty());
  EXPECT_EQ(m.restarts(), 3);
  // An adopted instance's exit status may be unknown: fed as a failed exit.
  Step died = m.handle({E::exited, false, t + 1s});
  EXPECT_EQ(died.next, S::backoff);
  EXPECT_EQ(died.delay, 100ms);
  EXPECT_EQ(m.restarts(), 4);
}

// Only a fresh actor adopts: an adopted event for a service the daemon already
// runs (a duplicate from a stale record) must not reset its record.
TEST(Policy, AdoptedIsIgnoredOnceRunning) {
  ServiceMachine m(Policy{});
  const auto t = Clock::now();
  m.handle({E::start, false, t});
  m.handle({E::spawned, false, t});
  ServiceEvent adopt{E::adopted, false, t};
  adopt.restarts = 9;
  EXPECT_TRUE(m.handle(adopt).ignored);
  EXPECT_EQ(m.restarts(), 0);
}

TEST(Table, EveryPairIsCovered) {
  for (S st : kAllStates)
    for (E ev : kAllEvents) {
      int n = 0;
      for (const Row& r : kTable) n += r.from == st && r.event == ev;
      EXPECT_EQ(n, 1) << to_string(st) << " x " << to_string(ev);
    }
}

// Starts the machine and brings it to running at time t.
void run_at(ServiceMachine& m, Clock::time_point t) {
  if (m.state() == S::backoff) m.handle({E::backoff_elapsed, false, t});
  else m.handle({E::start, false, t});
  ASSERT_EQ(m.state(), S::starting);
  m.handle({E::spawned, false, t});
  ASSERT_EQ(m.state(), S::running);
}

TEST(Policy, CleanExitWithOnFailureEndsInExited) {
  ServiceMachine m(Policy{});
  const auto t = Clock::now();
  run_at(m, t);
  Step s = m.handle({E::exited, true, t + 1s});
  EXPECT_EQ(s.next, S::exited);
  EXPECT_TRUE(s.actions.empty());
}

TEST(Policy, CrashWithRestartNoEndsInFailed) {
  Policy p;
  p.restart = config::RestartPolicy::no;
  ServiceMachine m(p);
  const auto t = Clock::now();
  run_at(m, t);
  EXPECT_EQ(m.handle({E::exited, false, t}).next, S::failed);
}

TEST(Policy, AlwaysRestartsAfterCleanExit) {
  Policy p;
  p.restart = config::RestartPolicy::always;
  ServiceMachine m(p);
  const auto t = Clock::now();
  run_at(m, t);
  EXPECT_EQ(m.handle({E::exited, true, t}).next, S::backoff);
}

TEST(Policy, BackoffDoublesUpToTheCapAndResetsAfterStableUptime) {
  Policy p;
  p.limit = 0;  // unlimited: only the delays matter here
  p.delay = 100ms;
  p.delay_max = 700ms;
  p.reset_after = 60s;
  ServiceMachine m(p);
  auto t = Clock::now();
  std::vector<Millis> delays;
  run_at(m, t);
  for (int i = 0; i < 5; ++i) {
    Step s = m.handle({E::exited, false, t += 10ms});
    delays.push_back(s.delay);
    run_at(m, t);
  }
  EXPECT_EQ(delays, (std::vector<Millis>{100ms, 200ms, 400ms, 700ms, 700ms}));
  // It stayed up longer than reset_after: the next delay is the first one again.
  Step s = m.handle({E::exited, false, t + 61s});
  EXPECT_EQ(s.delay, 100ms);
}

TEST(Policy, CrashLoopParksInFailedAfterTheLimitWithinTheWindow) {
  Policy p;
  p.limit = 3;
  p.window = 10s;
  ServiceMachine m(p);
  auto t = Clock::now();
  run_at(m, t);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(m.handle({E::exited, false, t += 100ms}).next, S::backoff);
    run_at(m, t);
  }
  Step s = m.handle({E::exited, false, t += 100ms});
  EXPECT_EQ(s.next, S::failed);
  EXPECT_TRUE(s.crash_loop);
  EXPECT_EQ(m.restarts(), 3);
  // A manual start clears the record.
  run_at(m, t);
  EXPECT_EQ(m.handle({E::exited, false, t += 100ms}).next, S::backoff);
}

TEST(Policy, RestartsOutsideTheWindowDoNotCount) {
  Policy p;
  p.limit = 2;
  p.window = 1s;
  ServiceMachine m(p);
  auto t = Clock::now();
  run_at(m, t);
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(m.handle({E::exited, false, t += 2s}).next, S::backoff) << i;
    run_at(m, t);
  }
}

TEST(Policy, RestartThroughStoppingRespawnsWithoutBackoff) {
  ServiceMachine m(Policy{});
  const auto t = Clock::now();
  run_at(m, t);
  EXPECT_EQ(m.handle({E::restart, false, t}).next, S::stopping);
  Step s = m.handle({E::exited, false, t});
  EXPECT_EQ(s.next, S::starting);
  EXPECT_EQ(s.actions, (std::vector<A>{A::cancel_timer, A::spawn}));
  EXPECT_EQ(m.restarts(), 0);  // asked for, not a crash
}

TEST(Policy, StopDuringStoppingCancelsAPendingRestart) {
  ServiceMachine m(Policy{});
  const auto t = Clock::now();
  run_at(m, t);
  m.handle({E::restart, false, t});
  m.handle({E::stop, false, t});
  EXPECT_EQ(m.handle({E::exited, false, t}).next, S::stopped);
}

// The pairs whose row a guard picks (the restart policy, the exit's success), with
// every policy: the rows the on-failure table above cannot reach.
struct PolicyRow {
  config::RestartPolicy restart;
  S from;
  E event;
  bool success;
  S to;
  std::vector<A> actions;
};

using RP = config::RestartPolicy;
const PolicyRow kPolicyTable[] = {
    {RP::no, S::running, E::exited, true, S::exited, {}},
    {RP::no, S::running, E::exited, false, S::failed, {}},
    {RP::on_failure, S::running, E::exited, true, S::exited, {}},
    {RP::on_failure, S::running, E::exited, false, S::backoff, {A::arm_backoff}},
    {RP::always, S::running, E::exited, true, S::backoff, {A::arm_backoff}},
    {RP::always, S::running, E::exited, false, S::backoff, {A::arm_backoff}},
    {RP::no, S::starting, E::exited, true, S::exited, {}},
    {RP::no, S::starting, E::exited, false, S::failed, {}},
    {RP::on_failure, S::starting, E::exited, true, S::exited, {}},
    {RP::always, S::starting, E::exited, true, S::backoff, {A::arm_backoff}},
    {RP::no, S::starting, E::spawn_failed, false, S::failed, {}},
    {RP::on_failure, S::starting, E::spawn_failed, true, S::backoff, {A::arm_backoff}},
    {RP::always, S::starting, E::spawn_failed, false, S::backoff, {A::arm_backoff}},
    // An exit the operator asked for is never a crash, whatever the policy.
    {RP::always, S::stopping, E::exited, false, S::stopped, {A::cancel_timer}},
    {RP::no, S::stopping, E::exited, false, S::stopped, {A::cancel_timer}},
};

class PolicyTable : public testing::TestWithParam<PolicyRow> {};

TEST_P(PolicyTable, Row) {
  const PolicyRow& row = GetParam();
  Policy p;
  p.restart = row.restart;
  ServiceMachine m(p);
  m.force_state(row.from);
  Step s = m.handle(ServiceEvent{row.event, row.success, Clock::now()});
  EXPECT_EQ(s.next, row.to) << to_string(row.from) << " x " << to_string(row.event);
  EXPECT_EQ(s.actions, row.actions) << to_string(row.from) << " x " << to_string(row.event);
  EXPECT_FALSE(s.ignored);
  EXPECT_EQ(s.counted_restart, row.to == S::backoff);
  EXPECT_FALSE(s.crash_loop);
}

INSTANTIATE_TEST_SUITE_P(Policies, PolicyTable, testing::ValuesIn(kPolicyTable),
                         [](const testing::TestParamInfo<PolicyRow>& info) { return std::to_string(info.index); });

// A failed spawn counts toward the crash-loop limit like a crash.
TEST(Policy, SpawnFailuresParkInFailedAtTheLimit) {
  Policy p;
  p.limit = 1;
  ServiceMachine m(p);
  const auto t = Clock::now();
  m.handle({E::start, false, t});
  Step first = m.handle({E::spawn_failed, false, t});
  EXPECT_EQ(first.next, S::backoff);
  EXPECT_TRUE(first.counted_restart);
  m.handle({E::backoff_elapsed, false, t});
  Step second = m.handle({E::spawn_failed, false, t});
  EXPECT_EQ(second.next, S::failed);
  EXPECT_TRUE(second.crash_loop);
  EXPECT_TRUE(second.actions.empty());
  EXPECT_EQ(m.restarts(), 1);
}

// A start while stopping is remembered: the exit then spawns at once, uncounted.
TEST(Policy, StartDuringStoppingRespawnsOnTheExit) {
  ServiceMachine m(Policy{});
  const auto t = Clock::now();
  run_at(m, t);
  m.handle({E::stop, false, t});
  EXPECT_FALSE(m.handle({E::start, false, t}).ignored);
  Step s = m.handle({E::exited, false, t});
  EXPECT_EQ(s.next, S::starting);
  EXPECT_EQ(s.actions, (std::vector<A>{A::cancel_timer, A::spawn}));
  EXPECT_EQ(m.restarts(), 0);
}

}  // namespace
