#pragma once
// The upgrade: the daemon re-executes its binary (possibly a new version) in the same
// pid and hands the next image what the kernel keeps across an exec: the services'
// pidfds (they stay our children: real exit codes), their pipes' daemon ends (the
// bytes waiting in them stay there), the listening sockets (never closed: a client
// connecting meanwhile waits in the backlog), and a state blob in a memfd named by
// DOCKLESS_UPGRADE_FD. docs/architecture.md ("Upgrade") has the protocol.
#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/adopt.hpp"
#include "http/server.hpp"
#include "runtime/task.hpp"
#include "tools/daemon/sd_env.hpp"

namespace actors {
class EventLog;
class Supervisor;
}  // namespace actors

namespace tools {

inline constexpr const char* kUpgradeFdEnv = "DOCKLESS_UPGRADE_FD";

// The binary to execute: where this one was installed. /proc/self/exe names the
// running inode; when a new version was installed over it (a rename), that inode is
// deleted and the link reads "PATH (deleted)": PATH is then the new file.
std::string installed_binary();

// Runs `binary help` (bounded by `limit`): a binary that is missing, not executable,
// for another architecture or missing a library fails here, while this image still
// runs. "" when it works, else why not.
runtime::Task<std::string> preflight(std::string binary, std::chrono::milliseconds limit);

struct Handover {
  std::string binary;
  std::string notify_socket;
  std::chrono::microseconds watchdog{0};
  int image = 1;  // 1 + the upgrades this process has been through
  const std::vector<http::ReleasedListener>* listeners = nullptr;
  const std::map<std::string, std::shared_ptr<actors::HandoverRecord>>* services = nullptr;
};

// Writes the blob, clears close-on-exec on exactly the handed fds (every other fd
// is made close-on-exec first), and execs. Returns only if the exec failed: the
// reason; the handed fds are close-on-exec again and this image goes on.
std::string exec_new_image(const Handover& h);

// The new image's side.
struct Inheritance {
  pid_t from_pid = 0;
  std::string from_version;
  int image = 1;  // the previous image's number
  std::string notify_socket;
  std::chrono::microseconds watchdog{0};
  std::vector<http::ReleasedListener> listeners;
  actors::Inheritance services;
};

// Reads and unsets DOCKLESS_UPGRADE_FD (nullopt when absent). The fds it names
// become owned and close-on-exec. A malformed blob is an error (`*error`); whatever
// fds could be had are closed then.
std::optional<Inheritance> take_inheritance(std::string* error);

// How many images this daemon process has been (1 + upgrades), and the upgrades
// that failed in this image: GET /v1/upgrade, which `dockless upgrade` polls to
// tell a finished upgrade from a failed one.
struct UpgradeState {
  int image = 1;
  int failures = 0;
  std::string last_error;
  std::string from_version;
};
nlohmann::json upgrade_json(const UpgradeState& u);

// POST /v1/upgrade: the checks (409, 500), then 202 and SIGUSR2 to ourselves.
runtime::Task<http::Response> upgrade_request(actors::Supervisor& supervisor, UpgradeState& state);

// SIGUSR2: the whole hand-over. Returns only when it failed, with why; this image
// then goes on as before (services never stopped).
runtime::Task<std::string> upgrade(http::Server& server, actors::Supervisor& supervisor, actors::EventLog& events,
                                   const ManagerEnvironment& manager, UpgradeState& state);

}  // namespace tools
