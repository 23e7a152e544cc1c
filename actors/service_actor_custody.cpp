#include "actors/service_actor_custody.hpp"

#include "actors/service_machine_table.hpp"

#include <cstddef>

namespace actors {

std::string_view to_string(Custody c) {
  switch (c) {
    case Custody::held: return "held";
    case Custody::leaving: return "leaving";
    case Custody::handed_over: return "handed_over";
    case Custody::handed_over_detached: return "handed_over_detached";
    case Custody::released: return "released";
  }
  return "?";
}

std::string_view to_string(CustodyEvent e) {
  switch (e) {
    case CustodyEvent::shutdown: return "shutdown";
    case CustodyEvent::handover: return "handover";
    case CustodyEvent::resume: return "resume";
    case CustodyEvent::settled: return "settled";
  }
  return "?";
}

namespace {

using C = Custody;
using E = CustodyEvent;
using A = CustodyAction;
using G = CustodyMachine::Guard;

using Actions = table::Actions<CustodyAction, 3>;
constexpr Actions nothing{};
constexpr Actions act(A a) { return {{a, a, a}, 1}; }
constexpr Actions act(A a, A b) { return {{a, b, b}, 2}; }
constexpr Actions act(A a, A b, A c) { return {{a, b, c}, 3}; }

struct Row {
  Custody from;
  CustodyEvent event;
  CustodyMachine::Guard guard;
  Custody next;
  Actions actions;
  bool ignored;
  constexpr bool inert() const { return next == from && actions.size == 0; }
};
constexpr Row on(C from, E ev, C next, Actions a = nothing) { return {from, ev, G::none, next, a, false}; }
constexpr Row when(C from, E ev, G g, C next, Actions a = nothing) { return {from, ev, g, next, a, false}; }
constexpr Row ignore(C from, E ev) { return {from, ev, G::none, from, nothing, true}; }

constexpr Row kRows[] = {
    // held
    on(C::held, E::shutdown, C::leaving, act(A::stop)),
    when(C::held, E::handover, G::hands_over_pidfd, C::handed_over,
         act(A::cancel_timer, A::suspend_watching, A::fill_record)),
    when(C::held, E::handover, G::detachable, C::handed_over_detached,
         act(A::cancel_timer, A::detach_for_handover, A::fill_record)),
    on(C::held, E::handover, C::handed_over, act(A::cancel_timer, A::fill_record)),
    ignore(C::held, E::resume),
    ignore(C::held, E::settled),

    // leaving. The upgrade refuses while a service is stopping; should a hand-over
    // still race a removal, the record stays unfilled, the upgrade gives up after its
    // limit and everything resumes — an instance being stopped is never handed over.
    on(C::leaving, E::shutdown, C::leaving, act(A::stop)),
    ignore(C::leaving, E::handover),
    ignore(C::leaving, E::resume),
    on(C::leaving, E::settled, C::released),

    // handed_over: between the hand-over and the exec nothing may change the record.
    ignore(C::handed_over, E::shutdown),
    ignore(C::handed_over, E::handover),
    on(C::handed_over, E::resume, C::held, act(A::resume_watching, A::rearm_backoff)),
    ignore(C::handed_over, E::settled),

    // handed_over_detached
    ignore(C::handed_over_detached, E::shutdown),
    ignore(C::handed_over_detached, E::handover),
    on(C::handed_over_detached, E::resume, C::held, act(A::relaunch, A::rearm_backoff)),
    ignore(C::handed_over_detached, E::settled),

    // released: the actor's loop has ended.
    ignore(C::released, E::shutdown),
    ignore(C::released, E::handover),
    ignore(C::released, E::resume),
    ignore(C::released, E::settled),
};

constexpr std::size_t kStates = kAllCustodies.size();
constexpr std::size_t kEvents = kAllCustodyEvents.size();
static_assert(kStates == static_cast<std::size_t>(Custody::released) + 1);
static_assert(kEvents == static_cast<std::size_t>(CustodyEvent::settled) + 1);
static_assert(table::well_formed<kStates, kEvents>(kRows),
              "every (custody, event) pair has its rows together, the last one unguarded");
constexpr auto kFirstRow = table::first_rows<kStates, kEvents>(kRows);

}  // namespace

CustodyStep CustodyMachine::handle(CustodyEvent e, const Workload& w) {
  const Row& row = table::lookup<kEvents>(kRows, kFirstRow, state_, e, [&](Guard g) { return holds(g, w); });
  CustodyStep step{row.next, row.actions.to_vector(), row.ignored};
  state_ = step.next;
  return step;
}

bool CustodyMachine::holds(Guard g, const Workload& w) {
  switch (g) {
    case Guard::none: return true;
    case Guard::hands_over_pidfd: return w.alive && w.has_pidfd;
    case Guard::detachable: return w.alive && w.can_detach;
  }
  return false;
}

}  // namespace actors
