#pragma once
// HealthActor: one per service with a [services.NAME.health] table. It runs the
// check (exec, HTTP GET, TCP connect) on the daemon's own ring and processes, and
// turns single results into the healthy/unhealthy state the supervisor acts on.
//
// Semantics (Docker's, except for the first check):
// - The first check runs at once, then one `interval` after each check completes
//   (Docker waits one interval first; we want readiness as soon as it is true).
// - Each check is bounded by `timeout`: socket operations carry the remaining
//   time as a deadline; an exec check's process group is SIGKILLed and reaped.
// - During `start_period` (from the call) failures are not counted, but a success
//   makes the service healthy at once.
// - `retries` consecutive counted failures make it unhealthy; any success makes it
//   healthy and resets the count.
//
// Hosts for http/tcp checks must be numeric IPv4/IPv6 addresses or "localhost"
// (taken as 127.0.0.1): name resolution would block the loop (getaddrinfo has no
// ring equivalent), and a health check is meant for the service on this machine.
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "runtime/environment.hpp"
#include "runtime/task.hpp"

namespace actors {

struct HealthReport {
  bool healthy = false;
  // What the check saw, for events and the API: "HTTP 503 from 127.0.0.1:8080/healthz",
  // "connect 127.0.0.1:5432: Connection refused", "exec exited with 1: <output>",
  // "timed out after 2s (...)".
  std::string reason;
  // Counted failures in a row (failures inside the start period do not count).
  int consecutive_failures = 0;
};

// How an exec check runs: as the service it checks (its user, group and working
// directory) with `env` (empty: the fixed base of service_env.hpp alone). Default: as the
// daemon, in its working directory.
struct ExecContext {
  runtime::Environment env;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::vector<gid_t> groups;
  std::string working_dir;
  std::string identity_error;  // the service's user could not be resolved: the check fails with it
};

// Runs checks until `stop` is requested and calls `on_change` once for the first
// definite state (first success, or `retries` counted failures) and then on every
// transition. `service_port` replaces port 0 ("$PORT") and is passed to exec checks as
// $PORT. `exec` says how an exec check runs. Returns promptly on stop, with no operation
// or child left.
// No default arguments on these coroutines: GCC 12 destroys a class-type default argument
// of a coroutine call it never built (free() of garbage); the overloads without `exec`
// are plain functions that pass a real one, which the coroutine copies into its frame.
runtime::Task<void> run_health_checks(config::HealthCheck spec, std::uint16_t service_port,
                                      std::stop_token stop,
                                      std::function<void(const HealthReport&)> on_change, ExecContext exec);
inline runtime::Task<void> run_health_checks(config::HealthCheck spec, std::uint16_t service_port,
                                             std::stop_token stop,
                                             std::function<void(const HealthReport&)> on_change) {
  return run_health_checks(std::move(spec), service_port, std::move(stop), std::move(on_change), ExecContext{});
}

// One check, bounded by spec.timeout. consecutive_failures is 0 or 1. On stop it
// resolves early as unhealthy with reason "stopped".
runtime::Task<HealthReport> check_once(const config::HealthCheck& spec, std::uint16_t service_port,
                                       std::stop_token stop, ExecContext exec);
inline runtime::Task<HealthReport> check_once(const config::HealthCheck& spec, std::uint16_t service_port,
                                              std::stop_token stop) {
  return check_once(spec, service_port, std::move(stop), ExecContext{});
}

// "2s", "150ms", "1.5s": how timeouts appear in reasons.
std::string format_duration(config::Duration d);

}  // namespace actors
