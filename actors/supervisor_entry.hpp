#pragma once
// The Supervisor's record of one service, shared by supervisor.cpp (boot, reload, snapshot,
// upgrade) and supervisor_control.cpp (the operator's start/stop/restart). Private to them.
#include <memory>
#include <optional>
#include <stop_token>

#include "actors/log_store.hpp"
#include "actors/service_actor.hpp"
#include "actors/supervisor.hpp"

namespace actors {

struct Supervisor::Entry {
  SpecPtr spec;  // shared with the actor, never null
  bool from_config = false;
  std::shared_ptr<LogStore> logs;  // shared with log followers; closed when the entry goes
  std::unique_ptr<ServiceActor> actor;
  ServiceStatus status;
  bool actor_done = false;
  std::optional<std::stop_source> starter;  // a pending wait for dependencies
  bool waiting_recorded = false;
  // An ordered stop (dependents first) this service is part of; shared by all its members,
  // so a start of any of them calls the rest of it off.
  std::optional<std::stop_source> ordered_stop;
  ~Entry() {
    if (logs) logs->close();
  }
};

inline bool settled(State s) { return s == State::stopped || s == State::exited || s == State::failed; }

}  // namespace actors
