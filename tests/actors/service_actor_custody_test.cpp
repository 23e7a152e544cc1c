// One test per (custody, event) row of the ServiceActor's second machine (who holds
// the workload: the actor, an upgrade, nobody), with the workloads that pick between
// guarded rows. Written by hand, independent of the table in
// actors/service_actor_custody.cpp.
#include <gtest/gtest.h>

#include "actors/service_actor_custody.hpp"

using namespace actors;
using A = CustodyAction;
using C = Custody;
using E = CustodyEvent;

namespace {

// The workloads the guards tell apart.
constexpr Workload kNothing{false, false, false};
constexpr Workload kNative{true, true, false};     // a live process with a pidfd
constexpr Workload kContainer{true, false, true};  // a live container
constexpr Workload kGoneNative{false, true, false};

struct Row {
  C from;
  E event;
  Workload workload;
  C to;
  std::vector<A> actions;
  bool ignored;
};

const Row kTable[] = {
    // held
    {C::held, E::shutdown, kNative, C::leaving, {A::stop}, false},
    {C::held, E::shutdown, kContainer, C::leaving, {A::stop}, false},
    {C::held, E::handover, kNative, C::handed_over, {A::cancel_timer, A::suspend_watching, A::fill_record}, false},
    {C::held, E::handover, kContainer, C::handed_over_detached,
     {A::cancel_timer, A::detach_for_handover, A::fill_record}, false},
    {C::held, E::handover, kNothing, C::handed_over, {A::cancel_timer, A::fill_record}, false},
    {C::held, E::handover, kGoneNative, C::handed_over, {A::cancel_timer, A::fill_record}, false},
    {C::held, E::resume, kNative, C::held, {}, true},
    {C::held, E::settled, kNothing, C::held, {}, true},
    // leaving
    {C::leaving, E::shutdown, kNative, C::leaving, {A::stop}, false},
    {C::leaving, E::handover, kNative, C::leaving, {}, true},
    {C::leaving, E::resume, kNative, C::leaving, {}, true},
    {C::leaving, E::settled, kNothing, C::released, {}, false},
    // handed_over
    {C::handed_over, E::shutdown, kNative, C::handed_over, {}, true},
    {C::handed_over, E::handover, kNative, C::handed_over, {}, true},
    {C::handed_over, E::resume, kNative, C::held, {A::resume_watching, A::rearm_backoff}, false},
    {C::handed_over, E::settled, kNothing, C::handed_over, {}, true},
    // handed_over_detached
    {C::handed_over_detached, E::shutdown, kNothing, C::handed_over_detached, {}, true},
    {C::handed_over_detached, E::handover, kNothing, C::handed_over_detached, {}, true},
    {C::handed_over_detached, E::resume, kNothing, C::held, {A::relaunch, A::rearm_backoff}, false},
    {C::handed_over_detached, E::settled, kNothing, C::handed_over_detached, {}, true},
    // released
    {C::released, E::shutdown, kNative, C::released, {}, true},
    {C::released, E::handover, kNative, C::released, {}, true},
    {C::released, E::resume, kNative, C::released, {}, true},
    {C::released, E::settled, kNothing, C::released, {}, true},
};

class CustodyTable : public testing::TestWithParam<Row> {};

TEST_P(CustodyTable, Row) {
  const Row& row = GetParam();
  CustodyMachine m;
  m.force_state(row.from);
  CustodyStep s = m.handle(row.event, row.workload);
  EXPECT_EQ(s.next, row.to) << to_string(row.from) << " x " << to_string(row.event);
  EXPECT_EQ(m.state(), row.to);
  EXPECT_EQ(s.actions, row.actions) << to_string(row.from) << " x " << to_string(row.event);
  EXPECT_EQ(s.ignored, row.ignored);
}

std::string row_name(const testing::TestParamInfo<Row>& info) {
  return std::string(to_string(info.param.from)) + "_" + std::string(to_string(info.param.event)) + "_" +
         std::to_string(info.index);
}

INSTANTIATE_TEST_SUITE_P(AllPairs, CustodyTable, testing::ValuesIn(kTable), row_name);

TEST(CustodyTable, EveryPairHasARow) {
  for (C c : kAllCustodies)
    for (E e : kAllCustodyEvents) {
      int n = 0;
      for (const Row& r : kTable) n += r.from == c && r.event == e;
      EXPECT_GE(n, 1) << to_string(c) << " x " << to_string(e);
    }
}

// Only held and leaving let commands, exits, timers and health through.
TEST(Custody, SupervisingOnlyWhileHeldOrLeaving) {
  CustodyMachine m;
  EXPECT_TRUE(m.supervising());
  m.handle(E::handover, kNative);
  EXPECT_FALSE(m.supervising());
  m.handle(E::resume, kNative);
  EXPECT_TRUE(m.supervising());
  m.handle(E::shutdown, kNative);
  EXPECT_TRUE(m.supervising());
  m.handle(E::settled, kNothing);
  EXPECT_EQ(m.state(), C::released);
  EXPECT_FALSE(m.supervising());
}

// A failed exec resumes, and a later upgrade hands over again.
TEST(Custody, HandOverResumeHandOver) {
  CustodyMachine m;
  EXPECT_EQ(m.handle(E::handover, kContainer).next, C::handed_over_detached);
  EXPECT_EQ(m.handle(E::resume, kNothing).actions, (std::vector<A>{A::relaunch, A::rearm_backoff}));
  EXPECT_EQ(m.handle(E::handover, kNative).next, C::handed_over);
}

// The daemon exiting stops a container like a process: only an upgrade leaves it running.
TEST(Custody, ShutdownStopsAContainer) {
  CustodyMachine m;
  const CustodyStep s = m.handle(E::shutdown, kContainer);
  EXPECT_EQ(s.next, C::leaving);
  EXPECT_EQ(s.actions, (std::vector<A>{A::stop}));
  EXPECT_EQ(m.handle(E::settled, kNothing).next, C::released);
}

}  // namespace
