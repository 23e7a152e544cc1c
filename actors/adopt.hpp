#pragma once
// Taking over a native service instance that is already running: after a crash of
// the daemon (found through state.json, pid + start time) or across an upgrade
// (handed over with its pidfd and pipes through the exec). The ServiceActor turns
// an AdoptInfo into an Execution and keeps supervising it.
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/executor.hpp"
#include "runtime/fd.hpp"

namespace actors {

// One of a service's bound sockets (SocketSet) across an upgrade's exec: the fd, what it
// was bound as (config::Socket::fingerprint()) and, for a unix path, the file's identity.
struct HandedSocket {
  int fd = -1;  // in the record: the actor's, still open; in AdoptInfo: see `held`
  std::string fingerprint;
  std::uint64_t dev = 0, ino = 0;
};
struct HeldSocket {
  runtime::Fd fd;
  std::string fingerprint;
  std::uint64_t dev = 0, ino = 0;
};

struct AdoptInfo {
  pid_t pid = 0;
  std::uint64_t start_ticks = 0;  // /proc/PID/stat field 22 as recorded: a recycled pid never matches
  int restarts = 0;
  std::vector<std::uint16_t> ports;
  std::int64_t started_unix_ms = 0;
  std::string origin;        // "crash" (state.json) or "upgrade" (hand-over blob)
  runtime::Fd pidfd;         // upgrade: the original pidfd; crash: opened here
  runtime::Fd out, err, in;  // the daemon's pipe ends, when they could be had
  std::vector<std::string> command;
  // How the output pipes were recovered, for the "attached" event.
  std::string output;
  // upgrade: the service's sockets as the previous image held them (SocketSet::adopt).
  std::vector<HeldSocket> sockets;
};

// After a crash the pipes' daemon ends died with the old daemon. A pipe whose write
// end the service still holds can be opened again through /proc/PID/fd/N (a pipe
// opened that way is a new end of the same pipe), so a service that did not write
// during the gap never notices. Returns an invalid Fd when fd N is not a pipe (or
// /proc refuses). Non-blocking, close-on-exec.
runtime::Fd reopen_pipe(pid_t pid, int fd, bool for_writing);

// Fills `info.out/err/in` from /proc (crash path) and describes the outcome.
void recover_pipes(AdoptInfo& info, bool with_stdin);

// The Execution for an adopted instance: the native executor's, built on
// runtime::Process::attach (a real exit status when the instance is still our child,
// i.e. across an upgrade; unknown after a crash). Null with `*error` when the
// process is gone or is not the recorded one. With `cgroups`, the instance's svc.*
// cgroup (from /proc/PID/cgroup) comes with it.
std::unique_ptr<Execution> adopt_execution(AdoptInfo& info, std::string* error,
                                           const runtime::CgroupTree* cgroups = nullptr);

}  // namespace actors

namespace actors {

// What one ServiceActor hands to the upgrade: filled by the actor on
// Command::handover, read by the daemon to build the state blob. The fds stay owned
// by the actor (valid until the exec, or until supervision resumes after a failed
// exec); the blob names their numbers.
struct HandoverRecord {
  bool done = false;
  std::string state;     // the machine's state at the hand-over
  std::string executor;  // "process", "docker"
  pid_t pid = 0;         // 0: no native instance handed over
  std::uint64_t start_ticks = 0;
  int pidfd = -1, out = -1, err = -1, in = -1;
  int restarts = 0;
  std::vector<std::uint16_t> ports;
  std::int64_t started_unix_ms = 0;
  bool pending_start = false;  // a start was waiting for dependencies (the Supervisor's)
  std::vector<HandedSocket> sockets;  // the actor's SocketSet (handed over with an instance)
};

}  // namespace actors

namespace actors {

// One service as the previous image left it (the upgrade's state blob, parsed; the
// fds now belong to this image).
struct Inherited {
  std::string state;
  std::string executor;
  bool pending_start = false;          // a start was waiting for dependencies
  std::shared_ptr<AdoptInfo> instance; // null: no native instance handed over
};
using Inheritance = std::map<std::string, Inherited>;

}  // namespace actors
