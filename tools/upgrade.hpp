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

#include "actors/adopt.hpp"
#include "http/server.hpp"
#include "runtime/task.hpp"

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

}  // namespace tools
