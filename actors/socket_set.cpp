#include "actors/socket_set.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "actors/service_env.hpp"

namespace actors {

namespace {

std::string fingerprint_of(const std::vector<config::Socket>& sockets) {
  std::string f;
  for (const config::Socket& s : sockets) f += s.fingerprint() + "\n";
  return f;
}

bool fail(std::string* error, const config::Socket& s, const std::string& step, int err) {
  *error = "socket " + s.describe() + " (" + s.name + "): " + step + ": " + std::strerror(err);
  return false;
}

// The directories above a unix socket, as systemd makes them for a socket unit.
bool make_parent(const std::string& path, int* err) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  *err = ec.value();
  return !ec;
}

// The fd is a socket of the spec's type bound to its address (a stored fd is only
// trusted this far: its name in the store says which service, not what it is).
bool same_socket(int fd, const config::Socket& s) {
  int type = 0;
  socklen_t tlen = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0) return false;
  if (type != (s.type == config::Socket::Type::stream ? SOCK_STREAM : SOCK_DGRAM)) return false;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
  if (s.family == config::Socket::Family::unix_path) {
    if (ss.ss_family != AF_UNIX) return false;
    const auto* un = reinterpret_cast<const sockaddr_un*>(&ss);
    return std::strncmp(un->sun_path, s.path.c_str(), sizeof un->sun_path) == 0;
  }
  if (s.ipv6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (ss.ss_family != AF_INET6 || ntohs(in6->sin6_port) != s.port) return false;
    in6_addr want{};
    return ::inet_pton(AF_INET6, s.address.c_str(), &want) == 1 && std::memcmp(&want, &in6->sin6_addr, sizeof want) == 0;
  }
  const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
  if (ss.ss_family != AF_INET || ntohs(in->sin_port) != s.port) return false;
  in_addr want{};
  return ::inet_pton(AF_INET, s.address.c_str(), &want) == 1 && want.s_addr == in->sin_addr.s_addr;
}

}  // namespace

bool SocketSet::bind_one(const config::Socket& s, Bound& out, std::string* error) {
  const bool unix_path = s.family == config::Socket::Family::unix_path;
  const int domain = unix_path ? AF_UNIX : s.ipv6 ? AF_INET6 : AF_INET;
  const int type = s.type == config::Socket::Type::stream ? SOCK_STREAM : SOCK_DGRAM;
  // Close-on-exec in the daemon: a child gets it only as one of its fds 3, 4, ...,
  // placed there by the spawn. Blocking, as sd_listen_fds programs expect by default.
  runtime::Fd fd(::socket(domain, type | SOCK_CLOEXEC, 0));
  if (!fd) return fail(error, s, "socket", errno);
  const int one = 1;
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (unix_path) {
    auto* un = reinterpret_cast<sockaddr_un*>(&addr);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, s.path.c_str(), s.path.size() + 1);  // length checked by the config
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + s.path.size() + 1);
    int err = 0;
    if (!make_parent(s.path, &err)) return fail(error, s, "mkdir " + std::filesystem::path(s.path).parent_path().string(), err);
    // A socket file left by an earlier daemon (killed, or exec'd into a new image) would
    // make bind fail with EADDRINUSE; anything else at the path is not ours to remove.
    struct stat st{};
    if (::lstat(s.path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) return fail(error, s, "bind", EEXIST);
      if (::unlink(s.path.c_str()) != 0) return fail(error, s, "unlink the stale socket file", errno);
    }
  } else {
    // SO_REUSEADDR: a port whose last connections are in TIME_WAIT (the previous
    // daemon's) can be bound again at once.
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
      return fail(error, s, "SO_REUSEADDR", errno);
    if (s.reuse_port && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
      return fail(error, s, "SO_REUSEPORT", errno);
    if (s.ipv6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(s.port);
      ::inet_pton(AF_INET6, s.address.c_str(), &in6->sin6_addr);  // checked by the config
      len = sizeof(sockaddr_in6);
    } else {
      auto* in = reinterpret_cast<sockaddr_in*>(&addr);
      in->sin_family = AF_INET;
      in->sin_port = htons(s.port);
      ::inet_pton(AF_INET, s.address.c_str(), &in->sin_addr);
      len = sizeof(sockaddr_in);
    }
  }
  // A unix socket file is created with the umask applied: made private first, then
  // opened up to `mode`, so it is never reachable with wider permissions than asked.
  const mode_t old_mask = unix_path ? ::umask(0077) : 0;
  const int bound = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), len);
  const int bind_err = errno;
  if (unix_path) ::umask(old_mask);
  if (bound != 0) return fail(error, s, "bind", bind_err);
  if (unix_path) {
    struct stat st{};
    if (::stat(s.path.c_str(), &st) == 0) {
      out.dev = st.st_dev;
      out.ino = st.st_ino;
    }
    out.spec = s;  // so that a failure below still removes the file
    if (::chmod(s.path.c_str(), static_cast<mode_t>(s.mode)) != 0) return fail(error, s, "chmod", errno);
    if (!s.user.empty() || !s.group.empty()) {
      runtime::SpawnOptions ids;
      std::string why;
      if (!apply_identity(s.user, s.group, ids, &why)) {
        *error = "socket " + s.describe() + " (" + s.name + "): " + why;
        return false;
      }
      const uid_t uid = s.user.empty() ? static_cast<uid_t>(-1) : *ids.uid;
      const gid_t gid = ids.gid ? *ids.gid : static_cast<gid_t>(-1);
      if (::chown(s.path.c_str(), uid, gid) != 0) return fail(error, s, "chown", errno);
    }
  }
  if (type == SOCK_STREAM && ::listen(fd.get(), s.backlog) != 0) return fail(error, s, "listen", errno);
  out.spec = s;
  out.fd = std::move(fd);
  return true;
}

bool SocketSet::holds(const std::vector<config::Socket>& wanted) const {
  return !bound_.empty() && fingerprint_of(wanted) == fingerprint_;
}

bool SocketSet::ensure(const std::vector<config::Socket>& wanted, std::string* error) {
  std::string f = fingerprint_of(wanted);
  if (!bound_.empty() && f == fingerprint_) return true;
  close();
  for (const config::Socket& s : wanted) {
    Bound b;
    const bool ok = bind_one(s, b, error);
    bound_.push_back(std::move(b));
    if (!ok) {
      close();
      return false;
    }
  }
  fingerprint_ = std::move(f);
  ++version_;
  return true;
}

void SocketSet::close() {
  if (!bound_.empty()) ++version_;
  for (Bound& b : bound_) {
    b.fd.reset();
    if (b.spec.family != config::Socket::Family::unix_path || b.ino == 0) continue;
    // Only the file this set bound: a path taken over by someone else since stays.
    struct stat st{};
    if (::lstat(b.spec.path.c_str(), &st) == 0 && st.st_dev == b.dev && st.st_ino == b.ino)
      ::unlink(b.spec.path.c_str());
  }
  bound_.clear();
  fingerprint_.clear();
}

void SocketSet::apply(runtime::SpawnOptions& o) const {
  if (bound_.empty()) return;
  std::string names;
  for (std::size_t i = 0; i < bound_.size(); ++i) {
    o.extra_fds.emplace_back(bound_[i].fd.get(), static_cast<int>(3 + i));
    if (i > 0) names += ':';
    names += bound_[i].spec.name;
  }
  o.env["LISTEN_FDS"] = std::to_string(bound_.size());
  o.env["LISTEN_FDNAMES"] = std::move(names);
  o.listen_pid = true;
}

std::vector<HandedSocket> SocketSet::handover() const {
  std::vector<HandedSocket> out;
  for (const Bound& b : bound_)
    out.push_back({b.fd.get(), b.spec.fingerprint(), static_cast<std::uint64_t>(b.dev), static_cast<std::uint64_t>(b.ino)});
  return out;
}

void SocketSet::adopt(const std::vector<config::Socket>& wanted, std::vector<HeldSocket> held) {
  if (held.size() != wanted.size()) return;  // `held` closes on return
  for (std::size_t i = 0; i < held.size(); ++i)
    if (!held[i].fd || held[i].fingerprint != wanted[i].fingerprint()) return;
  close();
  for (std::size_t i = 0; i < held.size(); ++i) {
    Bound b;
    b.spec = wanted[i];
    b.fd = std::move(held[i].fd);
    b.dev = static_cast<dev_t>(held[i].dev);
    b.ino = static_cast<ino_t>(held[i].ino);
    bound_.push_back(std::move(b));
  }
  fingerprint_ = fingerprint_of(wanted);
  ++version_;
}

void SocketSet::adopt_stored(const std::vector<config::Socket>& wanted, std::vector<runtime::Fd> fds) {
  if (fds.size() != wanted.size()) return;
  std::vector<Bound> taken;
  for (std::size_t i = 0; i < fds.size(); ++i) {
    if (!fds[i] || !same_socket(fds[i].get(), wanted[i])) return;  // `fds` close on return
    Bound b;
    b.spec = wanted[i];
    if (wanted[i].family == config::Socket::Family::unix_path) {
      struct stat st{};
      if (::lstat(wanted[i].path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
        b.dev = st.st_dev;
        b.ino = st.st_ino;
      }
    }
    b.fd = std::move(fds[i]);
    taken.push_back(std::move(b));
  }
  close();
  bound_ = std::move(taken);
  fingerprint_ = fingerprint_of(wanted);
  ++version_;
}

std::vector<int> SocketSet::fds() const {
  std::vector<int> out;
  for (const Bound& b : bound_) out.push_back(b.fd.get());
  return out;
}

nlohmann::json SocketSet::describe() const {
  nlohmann::json out = nlohmann::json::array();
  for (const Bound& b : bound_) out.push_back({{"name", b.spec.name}, {"listen", b.spec.describe()}});
  return out;
}

}  // namespace actors
