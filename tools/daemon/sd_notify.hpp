#pragma once
// The daemon's side of systemd's notify protocol (sd_notify(3)): one datagram per
// message to $NOTIFY_SOCKET. Written here rather than linked from libsystemd: the
// protocol is one sendto() of "KEY=VALUE\n" lines, and the library would add a
// shared-library dependency (and its own allocator/threads assumptions) to a daemon
// meant to be built fully static for small boards.
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <set>
#include <stop_token>
#include <string>
#include <string_view>

#include "runtime/fd.hpp"
#include "runtime/task.hpp"

namespace actors {
class Supervisor;
}

namespace tools {

class SdNotifier {
 public:
  // `socket_path` as found in NOTIFY_SOCKET: a path, or "@name" for the abstract
  // namespace. Empty (or unusable, see error()) gives a notifier that sends nothing.
  explicit SdNotifier(const std::string& socket_path);

  bool enabled() const noexcept { return fd_.valid(); }
  const std::string& error() const noexcept { return error_; }

  // Never blocks: a full socket queue drops the message (systemd reads promptly;
  // the next STATUS/WATCHDOG supersedes a lost one).
  void send(std::string_view message);
  // The message with `fd` attached (SCM_RIGHTS): FDSTORE=1 hands the manager a copy
  // to keep for the next start of the daemon.
  void send_fd(std::string_view message, int fd);
  // The file-descriptor store (FileDescriptorStoreMax=): `fd` kept under `name`,
  // replacing whatever that name held; fd < 0 only removes.
  void store_fd(const std::string& name, int fd);
  // Names the manager handed back at start (LISTEN_FDNAMES): in its store already.
  void note_stored(const std::string& name) { stored_.insert(name); }
  void ready() { send("READY=1"); }
  void stopping() { send("STOPPING=1"); }
  void watchdog() { send("WATCHDOG=1"); }
  void status(std::string_view text);
  // RELOADING=1 with MONOTONIC_USEC (systemd >= 253 wants it for Type=notify-reload;
  // older managers ignore the extra field).
  void reloading();

 private:
  runtime::Fd fd_;
  sockaddr_un addr_{};
  socklen_t addr_len_ = 0;
  std::string error_;
  bool send_failed_ = false;  // one warning, not one per ping
  std::set<std::string> stored_;  // FDNAMEs in the manager's store
};

// WATCHDOG=1 every `interval` / 2, from a timer on the reactor: when the loop is
// wedged the pings stop and the manager restarts the daemon. Ends on stop.
runtime::Task<void> watchdog_pinger(SdNotifier& notifier, std::chrono::microseconds interval,
                                    std::stop_token stop);

// "12 services, 11 running" (failed/backoff when any), sent when it changes, at
// most once per `min_gap`. Ends on stop.
runtime::Task<void> status_reporter(SdNotifier& notifier, actors::Supervisor& supervisor,
                                    std::stop_token stop,
                                    std::chrono::milliseconds min_gap = std::chrono::milliseconds(1000));

// The summary status_reporter sends, for the current table.
std::string status_line(const actors::Supervisor& supervisor);

}  // namespace tools

namespace tools {
// Boot restore is done when every autostart service has left `stopped` and
// `starting` (running, or failed/exited trying), or after `limit`: READY=1 then
// means "the services are up", yet a dependency that never comes cannot hold the
// manager's start job until it times out.
runtime::Task<void> wait_boot_settled(actors::Supervisor& supervisor, std::chrono::milliseconds limit,
                                      std::stop_token stop);

// Everything the daemon tells the manager while it runs, as one actor: watchdog
// pings from the start, READY=1 once boot has settled (unless `stopping` is set by
// then: READY must never follow STOPPING), then STATUS= updates until `stop`.
runtime::Task<void> run_manager_link(SdNotifier& notifier, actors::Supervisor& supervisor,
                                     std::chrono::microseconds watchdog, const bool& stopping,
                                     std::stop_token stop);
}  // namespace tools
