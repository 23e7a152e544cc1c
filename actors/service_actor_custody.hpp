#pragma once
// Who holds a service's workload, beside its lifecycle: the ServiceActor itself,
// an upgrade that took it over, or nobody any more (the actor is ending). A second
// table-driven machine next to ServiceMachine rather than more states in it, so a
// service handed over is still "running" and the published states stay the seven
// the API names. Pure like ServiceMachine: the actor performs the actions
// (tests/actors/service_actor_custody_test.cpp has one row per pair).
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace actors {

enum class Custody : std::uint8_t {
  held,        // the actor supervises (or has nothing to supervise): every message counts
  leaving,     // shutdown: the lifecycle is stopping; the actor ends once it settles
  handed_over, // an upgrade holds the instance's record (a native one with its pidfd and
               // pipes): only resume counts, so nothing changes what the record says
  handed_over_detached,  // ... a container was left running for the next image instead
  released,    // the actor ends now (its workload stopped)
};
inline constexpr std::array kAllCustodies = {Custody::held, Custody::leaving, Custody::handed_over,
                                             Custody::handed_over_detached, Custody::released};

enum class CustodyEvent : std::uint8_t {
  shutdown,  // the service is removed, or the daemon exits: stop it, then end
  handover,  // the daemon is about to exec a new image
  resume,    // that exec failed: this image supervises again
  settled,   // the lifecycle reached stopped, exited or failed
};
inline constexpr std::array kAllCustodyEvents = {CustodyEvent::shutdown, CustodyEvent::handover,
                                                 CustodyEvent::resume, CustodyEvent::settled};

enum class CustodyAction : std::uint8_t {
  stop,                 // feed `stop` to the lifecycle
  cancel_timer,         // no backoff may spawn, no stop timer kill, behind the new owner's back
  suspend_watching,     // native hand-over: end the exit wait, capture and health; keep the instance
  detach_for_handover,  // container hand-over: detach it and drain the incarnation
  fill_record,          // the HandoverRecord: state, restarts, ports, done
  resume_watching,      // a suspended live instance: its watchers again
  relaunch,             // a container detached for the hand-over: the executor adopts it again
  rearm_backoff,        // a backoff the hand-over cancelled: its timer again
};

std::string_view to_string(Custody c);
std::string_view to_string(CustodyEvent e);

// What the guards look at, read from the current Execution by the actor.
struct Workload {
  bool alive = false;       // an incarnation whose exit has not been seen
  bool has_pidfd = false;   // it can be handed over through the exec (a native process)
  bool can_detach = false;  // it can outlive the daemon (a container)
};

struct CustodyStep {
  Custody next;
  std::vector<CustodyAction> actions;
  bool ignored = false;
};

class CustodyMachine {
 public:
  enum class Guard : std::uint8_t {
    none,
    hands_over_pidfd,  // alive, and a pidfd to pass through the exec
    detachable,        // alive, and able to outlive the daemon (a container, at an upgrade)
  };

  CustodyStep handle(CustodyEvent e, const Workload& w);
  Custody state() const noexcept { return state_; }
  // Messages other than these events (commands, exits, timers, health) count only
  // while the actor holds the workload or is stopping it.
  bool supervising() const noexcept { return state_ == Custody::held || state_ == Custody::leaving; }
  void force_state(Custody c) { state_ = c; }  // for tests that start from a given row

 private:
  static bool holds(Guard g, const Workload& w);
  Custody state_ = Custody::held;
};

}  // namespace actors
