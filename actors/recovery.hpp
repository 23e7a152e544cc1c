#pragma once
// The impure halves of recovery at boot (reconciler.hpp has the design): the survey
// that writes down what a previous daemon or image left, and the execution of the plan.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "actors/adopt.hpp"
#include "actors/reconciler.hpp"
#include "config/config.hpp"
#include "runtime/fd.hpp"
#include "runtime/notify.hpp"
#include "runtime/task.hpp"

namespace actors {

class EventLog;

ServiceFacts facts_of(const config::ServiceSpec& spec, bool from_config);

struct SurveyInput {
  std::string data_dir;
  std::string supervisor_id;  // DOCKLESS_SUPERVISOR of our services
  std::vector<ServiceFacts> services;
  const Inheritance* inherited = nullptr;                          // after an upgrade
  const std::map<std::string, runtime::Fd>* stored_pipes = nullptr;  // systemd's fd store
  bool capture_logs = true;
};

// Reads state.json, probes the pids it names, identifies the stored pipes and (after
// a crash) scans /proc/*/environ. Synchronous: one pass at boot, before any spawn.
BootFacts survey(const SurveyInput& in);

struct RecoveryContext {
  EventLog* events = nullptr;
  // Hands an instance to its service's actor (Command::adopting).
  std::function<void(const std::string& service, std::shared_ptr<AdoptInfo>)> adopt;
  // systemd's fd store (Supervisor::Options::pipes_changed); may be empty.
  std::function<void(const std::string& service, int out, int err, int in)> pipes_changed;
  Inheritance* inherited = nullptr;                       // the upgrade's instances (fds taken)
  std::map<std::string, runtime::Fd>* stored_pipes = nullptr;  // taken or closed
  // The daemon's cgroup subtree (null: none): an orphan in a svc.* cgroup is stopped
  // with everything in it.
  const runtime::CgroupTree* cgroups = nullptr;
};

// Records the plan (a recovery_plan event when there is anything to recover), hands
// the adoptions to the actors, stops the orphans one after the other and drops the
// stale stored pipes. Starting and the container sweep are the caller's: they need
// the Supervisor's starters and background scope.
runtime::Task<void> execute_recovery(const Plan& plan, RecoveryContext ctx);

// Containers of services that are gone or not started: stopped and removed, one event
// each. In the background: an engine that is slow or absent must not hold up the boot.
runtime::Task<void> sweep_containers(ContainerSweep sweep, EventLog& events, std::stop_token stop);

// The upgrade's side of the hand-over: waits (on `changed`, fired by every status
// change) until every record is done. False when `limit` passed first: an actor that
// does not answer fails the upgrade rather than hang it.
runtime::Task<bool> await_handover(const std::map<std::string, std::shared_ptr<HandoverRecord>>& records,
                                   runtime::Notify& changed, std::chrono::milliseconds limit);

}  // namespace actors
