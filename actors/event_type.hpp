#pragma once
// Every kind of event the daemon records in events.log, as one typed list. The journal
// stores the name; code appends only these (EventLog::append takes an EventType), and
// tests/actors/event_types_test.cpp checks the list against docs/api.md's "Event kinds"
// table, so a kind cannot be added, renamed or dropped without the reference saying so.
#include <array>
#include <cstdint>
#include <string_view>

namespace actors {

// X(name): the enumerator and its name in the journal are the same word.
#define DOCKLESS_EVENT_TYPES(X)                                                          \
  /* the daemon */                                                                      \
  X(daemon_started) X(daemon_stopping) X(daemon_stopped) X(upgraded) X(upgrade_exec)    \
  X(upgrade_failed) X(reload_succeeded) X(reload_failed) X(tls_reloaded)                \
  /* operators, through the API or the CLI */                                           \
  X(start_requested) X(stop_requested) X(restart_requested) X(signal) X(attach_requested) \
  X(service_registered) X(service_updated) X(service_removed) X(service_store_error)    \
  X(secrets_read)                                                                       \
  /* a service's lifecycle */                                                           \
  X(waiting) X(started) X(attached) X(adopt_failed) X(detached) X(spawn_failed)         \
  X(awaiting_ready) X(ready) X(stopping) X(killed) X(exited) X(stopped) X(backoff)      \
  X(failed) X(health) X(restart_unhealthy) X(limits_applied) X(oom_killed)  \
  X(listening) X(activated) X(overlap_started) X(replaced) X(overlap_failed)       \
  /* recovery at boot */                                                                \
  X(recovery_plan) X(orphan_stopped)                                                   \
  /* a service's input and output */                                                    \
  X(stdin_dropped) X(log_dropped) X(log_resumed) X(log_capture_failed)                  \
  X(log_unavailable)                                                                    \
  /* webhook triggers */                                                                \
  X(trigger_delivery) X(trigger_action) X(trigger_job_finished)                         \
  X(trigger_deliveries_not_saved) X(refusals_suppressed)                                \
  X(trigger_retry) X(trigger_dead_lettered) X(trigger_replayed) X(trigger_queue_error)

enum class EventType : std::uint8_t {
#define DOCKLESS_EVENT_ENUMERATOR(name) name,
  DOCKLESS_EVENT_TYPES(DOCKLESS_EVENT_ENUMERATOR)
#undef DOCKLESS_EVENT_ENUMERATOR
};

inline constexpr std::array kAllEventTypes = {
#define DOCKLESS_EVENT_ENTRY(name) EventType::name,
    DOCKLESS_EVENT_TYPES(DOCKLESS_EVENT_ENTRY)
#undef DOCKLESS_EVENT_ENTRY
};

constexpr std::string_view to_string(EventType type) {
  switch (type) {
#define DOCKLESS_EVENT_NAME(name) \
  case EventType::name: return #name;
    DOCKLESS_EVENT_TYPES(DOCKLESS_EVENT_NAME)
#undef DOCKLESS_EVENT_NAME
  }
  return "?";
}

}  // namespace actors
