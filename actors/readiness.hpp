#pragma once
// When a service that says so is ready: `ready = "notify"` (systemd's notify
// protocol: READY=1 on the NOTIFY_SOCKET the daemon gives it) or `ready = "fd:N"`
// (s6's notification-fd convention: a newline written to fd N). The ServiceActor
// opens a channel before each spawn and runs `watch` as a child of the incarnation;
// its ServiceMachine keeps the service `starting` until READY arrives.
#include <sys/types.h>

#include <functional>
#include <optional>
#include <stop_token>
#include <string>

#include "config/config.hpp"
#include "runtime/fd.hpp"
#include "runtime/process.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace actors {

struct ReadinessReport {
  bool ready = false;                 // READY=1 / the newline arrived
  std::optional<std::string> status;  // STATUS=... (notify only)
};

class ReadinessChannel {
 public:
  // nullopt for ready = "exec" (nothing to open); an error (with *error) when the
  // socket or pipe cannot be made.
  static runtime::Result<std::optional<ReadinessChannel>> open(const config::ServiceSpec& spec,
                                                               std::string* error);

  // Adds NOTIFY_SOCKET to the environment (notify) or the pipe's write end as fd N, and
  // notes the user the service runs as (`opts` has its identity applied).
  void apply(runtime::SpawnOptions& opts);
  // After the spawn: the daemon's copy of the child's end is closed, so a service
  // that closes its end without a newline is seen (EOF), and nothing else holds it.
  void spawned() { child_end_.reset(); }

  // Reports READY (once) and every STATUS= change until `stop` or the channel
  // closes. Only datagrams sent by the service's process group count (their
  // sender pid is checked with SO_PASSCRED), so another local process cannot mark
  // it ready; a sender already gone when the datagram is read counts if the kernel
  // stamped it with the service's uid. `leader` is the service's pid (it leads its
  // process group).
  static runtime::Task<void> watch(ReadinessChannel channel, pid_t leader, std::stop_token stop,
                                   std::function<void(ReadinessReport)> report);

  const std::string& notify_socket() const noexcept { return notify_socket_; }

 private:
  config::ReadyMode mode_ = config::ReadyMode::exec;
  int child_fd_number_ = -1;
  runtime::Fd daemon_end_;  // the bound socket, or the pipe's read end (non-blocking)
  runtime::Fd child_end_;   // the pipe's write end until spawned()
  uid_t service_uid_ = 0;   // set by apply()
  std::string notify_socket_;  // "@dockless/..." (abstract: no file to clean up or chmod)
};

}  // namespace actors
