#pragma once
// What the daemon keeps in data_dir besides logs and events: services registered
// at run time (data_dir/services/NAME.toml) and the state.json snapshot.
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace actors {

class ServiceStore {
 public:
  explicit ServiceStore(std::string dir) : dir_(std::move(dir)) {}
  // Every stored service, parsed with the same rules as config.toml; a broken file
  // is reported (and skipped) rather than stopping the daemon.
  struct Loaded {
    std::vector<config::ServiceSpec> services;
    std::vector<config::Error> errors;
  };
  Loaded load(const config::ServiceContext& ctx) const;
  // The stored services that fit beside `running` (config.toml's): one that has the
  // name of a config.toml service, or does not validate with the rest, is rejected.
  struct Fitting {
    std::vector<config::ServiceSpec> services;
    std::vector<std::pair<std::optional<std::string>, std::string>> rejected;  // (service, error)
  };
  Fitting load_beside(const config::ServiceContext& ctx, const config::Config& running) const;
  // The TOML text of one [services.NAME] table, written atomically.
  runtime::Task<runtime::Result<void>> save(std::string name, std::string toml_text);
  runtime::Result<void> remove(const std::string& name);
  std::string path_of(const std::string& name) const { return dir_ + "/" + name + ".toml"; }

 private:
  std::string dir_;
};

struct SnapshotEntry {
  std::string state;
  std::optional<pid_t> pid;
  std::uint64_t pid_start_ticks = 0;
  int restarts = 0;
  // Executor::kind; empty (older files) means "process". Only native processes are
  // stopped by pid at boot: containers are found again by their label.
  std::string executor;
  std::string docker_cli;  // containers: the CLI that manages them (for the boot sweep)
  // For adopting the instance after a crash: its ports ("auto" ones were picked at
  // its start) and its start time (uptime continues).
  std::vector<std::uint16_t> ports;
  std::int64_t started_unix_ms = 0;
};
// A webhook trigger's binding as state.json keeps it: its path and handler, and a version
// that grows each time its definition (everything but the secret's value) changes, across
// daemon restarts. `fingerprint` is a hash of that definition.
struct TriggerBinding {
  std::string id;
  std::string path;
  std::string kind;
  std::string provider;
  std::string handler;
  std::uint64_t version = 1;
  std::string fingerprint;
};
struct Snapshot {
  std::int64_t written_unix_ms = 0;
  std::map<std::string, SnapshotEntry> services;
  std::vector<TriggerBinding> triggers;
};

struct ServiceStatus;
// What state.json keeps of one service's published status.
SnapshotEntry snapshot_entry(const ServiceStatus& status, const config::ServiceSpec& spec);

std::string snapshot_to_json(const Snapshot& s);
// Missing or unreadable → empty snapshot (a first boot, or a torn write that the
// atomic rename makes impossible anyway).
Snapshot read_snapshot(const std::string& path);

// /proc/PID/stat field 22 (start time in ticks since boot); 0 when the pid is gone.
std::uint64_t process_start_ticks(pid_t pid);

}  // namespace actors
