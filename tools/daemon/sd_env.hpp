#pragma once
// What a service manager hands the daemon through its environment: the notify
// socket, the watchdog interval and listening sockets (socket activation). They are
// taken out of the environment at start-up, before anything copies it, so services
// never inherit a NOTIFY_SOCKET or LISTEN_FDS meant for the daemon.
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "runtime/fd.hpp"

namespace tools {

struct ListenFd {
  runtime::Fd fd;
  std::string name;  // from LISTEN_FDNAMES, else "unknown" (systemd's default)
};

struct ManagerEnvironment {
  std::string notify_socket;              // "" when not run by a notify-aware manager
  std::chrono::microseconds watchdog{0};  // 0: no watchdog for this process
  std::vector<ListenFd> listen_fds;       // close-on-exec, owned
  std::vector<std::string> warnings;      // malformed values, reported by the caller
};

// Reads and unsets NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID, LISTEN_FDS, LISTEN_PID
// and LISTEN_FDNAMES. LISTEN_* and WATCHDOG_USEC only count when their *_PID names
// this process (systemd's rule: a variable inherited from an ancestor is not ours).
ManagerEnvironment take_manager_environment();

// The fd-store names of a service's pipe ends ("svc.NAME.stdout", ".stderr", ".stdin").
std::string stored_pipe_name(const std::string& service, const char* stream);
// Takes the fds the manager handed back from its fd store (names "svc.…") out of
// `fds`, leaving the listeners.
std::map<std::string, runtime::Fd> take_stored_pipes(std::vector<ListenFd>& fds);
// A service's socket N (`sockets`, actors/socket_set.hpp) in the store: "sock.NAME.N".
std::string stored_socket_name(const std::string& service, std::size_t index);
// Takes the stored service sockets out of `fds`: by service, in index order (a missing
// index leaves a hole, an invalid Fd, so the set does not match its spec and is dropped).
// *names gets every FDNAME taken (in the manager's store, to be replaced or removed).
std::map<std::string, std::vector<runtime::Fd>> take_stored_sockets(std::vector<ListenFd>& fds,
                                                                    std::vector<std::string>* names);

}  // namespace tools

namespace http {
class Server;
}

namespace tools {

struct AdoptedListeners {
  bool tcp = false;          // the HTTP port came from the manager: do not bind it
  bool unix_socket = false;  // the CLI's unix socket came from the manager
};

// Serves every listening socket in `fds` (socket activation) instead of binding;
// an fd that is not a listening stream socket is logged and closed. Empties `fds`.
AdoptedListeners adopt_listeners(http::Server& server, std::vector<ListenFd>& fds);

}  // namespace tools
