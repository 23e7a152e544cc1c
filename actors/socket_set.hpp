#pragma once
// SocketSet: the listening sockets a service declares (`sockets`, config::Socket), bound
// by the daemon and held by its ServiceActor from the first start until the service is
// removed or the daemon exits. Every instance gets them from fd 3 with LISTEN_FDS,
// LISTEN_PID and LISTEN_FDNAMES (sd_listen_fds(3)); since the daemon keeps its copy open
// while an instance restarts or crashes, connections wait in the kernel's backlog instead
// of being refused.
#include <sys/types.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/adopt.hpp"
#include "config/config.hpp"
#include "runtime/fd.hpp"
#include "runtime/process.hpp"

namespace actors {

class SocketSet {
 public:
  SocketSet() = default;
  SocketSet(const SocketSet&) = delete;
  SocketSet& operator=(const SocketSet&) = delete;
  SocketSet(SocketSet&&) noexcept = default;
  SocketSet& operator=(SocketSet&& o) noexcept {
    if (this != &o) {
      close();
      bound_ = std::move(o.bound_);
      fingerprint_ = std::move(o.fingerprint_);
      version_ = o.version_ + 1;
    }
    return *this;
  }
  ~SocketSet() { close(); }

  // Binds `wanted` unless exactly that is bound already (a reload that changed the
  // sockets closes the old ones first, so a port can move between options). On failure
  // nothing stays bound and *error names the socket: "socket tcp 0.0.0.0:80 (http):
  // bind: Permission denied".
  bool ensure(const std::vector<config::Socket>& wanted, std::string* error);
  // Exactly `wanted` is bound now (ensure() would keep it).
  bool holds(const std::vector<config::Socket>& wanted) const;
  // Closes every socket and removes the unix socket files it created (if they are still
  // the ones it created).
  void close();

  // The upgrade: what the record names (the fds stay this set's until the exec), and
  // in the next image, the same sockets taken back. They are taken only if `wanted` is
  // exactly what they were bound as; otherwise they are closed (files left alone) and
  // the next start binds `wanted`.
  std::vector<HandedSocket> handover() const;
  void adopt(const std::vector<config::Socket>& wanted, std::vector<HeldSocket> held);

  // After a daemon crash: the sockets systemd's fd store kept, taken if each is what
  // `wanted` binds (type and local address, checked on the fd); else closed.
  void adopt_stored(const std::vector<config::Socket>& wanted, std::vector<runtime::Fd> fds);
  // Bumped by every bind, adoption and close: the fd store is told when it moved.
  std::uint64_t version() const noexcept { return version_; }
  std::vector<int> fds() const;

  bool empty() const noexcept { return bound_.empty(); }
  std::size_t size() const noexcept { return bound_.size(); }
  const std::string& name(std::size_t i) const { return bound_[i].spec.name; }
  // Fds 3, 4, ... of the child, LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID.
  void apply(runtime::SpawnOptions& o) const;
  // [{"name": "http", "listen": "tcp 0.0.0.0:8080"}, ...] for events and the API.
  nlohmann::json describe() const;

 private:
  struct Bound {
    config::Socket spec;
    runtime::Fd fd;
    // The socket file as bound (unix paths): removed at close only if still this one.
    dev_t dev = 0;
    ino_t ino = 0;
  };
  static bool bind_one(const config::Socket& s, Bound& out, std::string* error);

  std::vector<Bound> bound_;
  std::string fingerprint_;
  std::uint64_t version_ = 0;
};

}  // namespace actors
