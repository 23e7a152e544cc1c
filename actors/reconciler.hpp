#pragma once
// Recovery at boot as a plan. What a previous daemon (crash) or image (upgrade) left
// behind is handled in three steps:
//   survey  (recovery.hpp, impure): reads state.json, probes /proc, scans environments
//           and the stored pipes, and writes down what it saw as BootFacts;
//   plan    (here, pure): BootFacts -> Plan, every decision with its reason;
//   execute (recovery.hpp, impure): Supervisor::boot adopts, stops, drops and starts
//           what the Plan says, in the Plan's order, and logs it.
// The planner does no I/O, so every recovery decision is a row of
// tests/actors/reconciler_test.cpp.
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "actors/orphan_scan.hpp"
#include "actors/state_store.hpp"
#include "config/config.hpp"

namespace actors {

// Two fds are one pipe when their device and inode match.
struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const FileId&) const = default;
};

// A service that exists now (config.toml or the service store).
struct ServiceFacts {
  std::string name;
  bool from_config = false;  // only config.toml's specs lend an orphan their stop signal
  bool autostart = true;
  bool container = false;    // spec.image: its executor adopts, the sweep cleans up
  std::string docker_cli;    // containers
  std::vector<std::string> command;
  bool with_stdin = false;
  int stop_signal = 15;
  config::Duration stop_timeout{10'000};
};

// A pid as /proc shows it during the survey.
struct LiveProcess {
  std::uint64_t start_ticks = 0;                // 0: gone
  std::array<std::optional<FileId>, 3> fds;     // /proc/PID/fd/0..2, when stored pipes exist
};

// One service the previous image handed over (Inherited, without its fds).
struct InheritedFacts {
  std::string state;
  std::string executor;
  bool pending_start = false;
  bool instance = false;  // a native instance came with it
  pid_t pid = 0;
};

struct BootFacts {
  std::vector<ServiceFacts> services;
  Snapshot previous;  // state.json
  // Set after an upgrade: what the previous image handed over. Then state.json and the
  // environment scan only feed the container sweep: the hand-over is exact.
  std::optional<std::map<std::string, InheritedFacts>> inherited;
  // Pipe ends systemd kept (by FDNAME "svc.NAME.stdout"...); nullopt: not a pipe.
  std::map<std::string, std::optional<FileId>> stored_pipes;
  std::map<pid_t, LiveProcess> live;  // state.json's and the scan's pids, probed now
  std::vector<MarkedProcess> marked;  // DOCKLESS_SUPERVISOR found in /proc/*/environ
  bool capture_logs = true;
};

struct PlannedAdoption {
  std::string service;
  std::string origin;  // "crash" (state.json) or "upgrade" (the hand-over)
  // Crash: what state.json recorded (an upgrade's instance carries its own record).
  pid_t pid = 0;
  std::uint64_t start_ticks = 0;
  int restarts = 0;
  std::vector<std::uint16_t> ports;
  std::int64_t started_unix_ms = 0;
  std::vector<std::string> command;
  // Where the daemon's pipe ends come from.
  enum class Pipes { handed_over, not_captured, stored, reopen } pipes = Pipes::reopen;
  std::string stored_out, stored_err, stored_in;  // FDNAMEs (Pipes::stored; empty: none)
  bool with_stdin = false;                          // Pipes::reopen
  std::string reason;
};

// A process left running whose service does not take it: stopped like a service, whole
// group: `signal` to the group and the leader, `timeout`, then SIGKILL.
struct PlannedStop {
  std::optional<std::string> service;  // the event's service
  pid_t pid = 0;
  std::uint64_t start_ticks = 0;       // checked again once pinned by a pidfd; 0: unknown
  std::string inherited_from;          // upgrade: the Inheritance entry holding its pidfd
  int signal = 15;
  config::Duration timeout{10'000};
  std::string reason;
};

struct ContainerSweep {
  std::set<std::string> clis;  // empty: no container service exists or existed
  std::set<std::string> keep;  // services whose containers their executor adopts
};

struct Plan {
  std::string origin;  // "upgrade", "crash" (state.json or the scan found something), "" otherwise
  std::vector<PlannedAdoption> adopt;
  std::vector<PlannedStop> stop;  // one after the other, in this order
  // Members of a group whose leader is gone: SIGKILL (what the previous daemon would
  // have sent when the leader exited). Pid and start ticks.
  std::vector<std::pair<pid_t, std::uint64_t>> kill;
  std::string kill_reason;
  std::vector<std::string> drop_pipes;  // services whose stored pipes nobody adopted
  std::vector<std::string> start;       // autostart services, in name order
  std::map<std::string, std::string> not_started;  // autostart services left alone, and why
  ContainerSweep sweep;

  // Something to do beyond a first boot's starts: worth a recovery_plan event.
  bool eventful() const {
    return !adopt.empty() || !stop.empty() || !kill.empty() || !drop_pipes.empty() || !not_started.empty();
  }
};

// FDNAME of a service's stored pipe end: "svc.NAME.stdout" (tools/daemon/sd_env.hpp uses it).
std::string stored_pipe_fdname(const std::string& service, const char* stream);

Plan plan_recovery(const BootFacts& facts);

}  // namespace actors
