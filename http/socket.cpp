// Listening sockets (TCP, unix, adopted from systemd) and the accept actor.
// socket/bind/listen are plain syscalls: they never block and run at start-up.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "http/connection.hpp"
#include "runtime/ops_net.hpp"
#include "runtime/ops_wait.hpp"

namespace http {

using namespace std::chrono_literals;
using runtime::Result;
using runtime::Task;

namespace detail {

std::string describe_peer(const sockaddr_storage& addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(addr);
    inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
    std::string out = buf;
    out += ':';
    out += std::to_string(ntohs(a.sin_port));
    return out;
  }
  if (addr.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(addr);
    inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof buf);
    std::string out = "[";
    out += buf;
    out += "]:";
    out += std::to_string(ntohs(a.sin6_port));
    return out;
  }
  return "unix";
}

namespace {
// Errors that say the listening socket itself is unusable; anything else is
// about one client (ECONNABORTED, EPERM from a firewall) or passing (EMFILE).
bool listener_broken(int err) {
  return err == EBADF || err == EINVAL || err == ENOTSOCK || err == EOPNOTSUPP;
}
bool out_of_resources(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}
std::string busy_answer(int status, std::size_t limit) {
  Response resp = Response::error(status, status == 429 ? "too many connections from this address"
                                                        : "too many connections",
                                  {{"limit", limit}});
  resp.header("Retry-After", "1");
  return response_head(status, resp.headers, false, nullptr, resp.body.size()) + resp.body;
}
// The source address without its port: "127.0.0.2", "[::1]".
std::string client_address(const std::string& peer) {
  return peer.substr(0, peer.rfind(':'));
}
void release_client(Core& core, const std::string& client) {
  if (auto it = core.per_client.find(client); it != core.per_client.end() && --it->second == 0)
    core.per_client.erase(it);
}
// serve_connection, then the client's slot is free again.
Task<void> serve_counted(std::shared_ptr<Core> core, runtime::Fd fd, std::string peer, std::string client,
                         std::shared_ptr<const TlsContext> tls) {
  std::exception_ptr failure;
  try {
    co_await serve_connection(core, std::move(fd), std::move(peer), false, std::move(tls));
  } catch (...) {
    failure = std::current_exception();
  }
  release_client(*core, client);
  if (failure) std::rethrow_exception(failure);
}
// At most this many 503/429 answers in flight; beyond, a client is closed unanswered.
constexpr std::uint64_t kMaxRejecters = 64;

// The fds clients may never take: a service's restart needs pipes, a pidfd, log files
// and a readiness socket, and a snapshot write a temp file. Without a reserve, clients
// holding every fd made each restart fail (EMFILE) until the service was parked in
// `failed` for a crash loop it never had (tests/faults/fd_exhaustion_test.py).
int fd_reserve_floor() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return INT32_MAX;
  const auto limit = static_cast<int>(std::min<rlim_t>(rl.rlim_cur, INT32_MAX));
  const int reserve = std::clamp(limit / 8, 16, 64);
  return std::max(limit - reserve, 0);
}
}  // namespace

Task<void> accept_loop(std::shared_ptr<Core> core, runtime::Fd listen_fd, bool is_unix,
                       std::string unlink_path) {
  // Remember which file we created, so a successor's socket at the same path is
  // never removed by us.
  struct stat created {};
  const bool have_inode = !unlink_path.empty() && ::stat(unlink_path.c_str(), &created) == 0;
  const std::stop_token stop = core->accept_stop.get_token();
  const int fd_floor = fd_reserve_floor();
  while (!stop.stop_requested()) {
    runtime::AcceptOp op = runtime::accept(listen_fd.get());
    Result<int> r = co_await op.stop_on(stop);
    if (!r) {
      if (r.error() == ECANCELED || listener_broken(r.error())) break;
      // Out of fds: back off instead of spinning on a ready backlog.
      if (out_of_resources(r.error())) (void)co_await runtime::sleep_for(100ms).stop_on(stop);
      continue;
    }
    runtime::Fd fd(*r);
    ++core->stats.accepted;
    // The kernel hands out the lowest free number, so every fd below this one is taken:
    // at the floor, fewer than the reserve are left. Closed unanswered (an answer would
    // hold the fd longer); the client sees the connection end and may retry.
    if (*r >= fd_floor) {
      ++core->stats.rejected[503];
      continue;
    }
    if (!is_unix) {
      // Small heads and stream chunks must leave now, not wait for Nagle.
      const int one = 1;
      ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    std::shared_ptr<const TlsContext> tls = is_unix ? nullptr : core->tls;
    const std::string peer = is_unix ? "unix" : describe_peer(op.peer());
    std::string client = is_unix ? std::string() : client_address(peer);
    const std::size_t per_client_cap = core->limits.max_connections_per_client;
    const bool client_full = !is_unix && per_client_cap != 0 && core->per_client[client] >= per_client_cap;
    if (core->stats.open_connections >= core->limits.max_connections || client_full) {
      const int status = client_full ? 429 : 503;
      // A plaintext 503/429 means nothing to a TLS client: it is closed unanswered.
      if (core->rejecters < kMaxRejecters && !tls) {
        ++core->rejecters;
        runtime::spawn(reject_busy(core, std::move(fd), status), "http-reject");
      } else {
        ++core->stats.rejected[status];
      }
      if (!is_unix && core->per_client[client] == 0) core->per_client.erase(client);
      continue;
    }
    // Counted here, not when the actor first runs, so a burst of accepts in one
    // loop round cannot overshoot the cap.
    ++core->stats.open_connections;
    if (is_unix) {
      runtime::spawn(serve_connection(core, std::move(fd), peer, true, nullptr), "http-connection");
    } else {
      ++core->per_client[client];
      runtime::spawn(serve_counted(core, std::move(fd), peer, std::move(client), std::move(tls)), "http-connection");
    }
  }
  if (core->releasing) {
    core->released.push_back({std::move(listen_fd), have_inode ? unlink_path : std::string()});
    --core->listeners;
    core->changed.try_send(0);
    co_return;
  }
  listen_fd.reset();
  struct stat now {};
  if (have_inode && ::stat(unlink_path.c_str(), &now) == 0 && now.st_ino == created.st_ino &&
      now.st_dev == created.st_dev)
    ::unlink(unlink_path.c_str());
  --core->listeners;
  core->changed.try_send(0);
}

Task<void> reject_busy(std::shared_ptr<Core> core, runtime::Fd fd, int status) {
  core->count_response(status, true);
  const std::string out =
      busy_answer(status, status == 429 ? core->limits.max_connections_per_client : core->limits.max_connections);
  const std::stop_token stop = core->accept_stop.get_token();
  std::span<const std::byte> buf(reinterpret_cast<const std::byte*>(out.data()), out.size());
  // A fresh socket's send buffer takes this whole; a short write just ends early.
  Result<int> sent = co_await runtime::send(fd.get(), buf).deadline(1s).stop_on(stop);
  if (sent) core->stats.bytes_out += static_cast<std::uint64_t>(*sent);
  ::shutdown(fd.get(), SHUT_WR);
  // Drain the request the client already sent, so close() does not answer it with RST.
  std::byte sink[4096];
  for (int i = 0; i < 16; ++i) {
    Result<int> r = co_await runtime::recv(fd.get(), sink).deadline(500ms).stop_on(stop);
    if (!r || *r == 0) break;
  }
  fd.reset();
  --core->rejecters;
  core->changed.try_send(0);
}

}  // namespace detail

namespace {
Result<void> fail_errno() { return Result<void>::failure(errno); }
}  // namespace

Result<std::uint16_t> Server::listen_tcp(const std::string& host_in, std::uint16_t port) {
  std::string_view bare = host_in;
  if (bare.size() >= 2 && bare.front() == '[' && bare.back() == ']') bare = bare.substr(1, bare.size() - 2);
  const std::string host(bare);
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof *v4;
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof *v6;
  } else {
    return Result<std::uint16_t>::failure(EINVAL);
  }
  runtime::Fd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return Result<std::uint16_t>::failure(errno);
  // A restarted daemon must rebind at once despite connections in TIME_WAIT.
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd.get(), SOMAXCONN) != 0)
    return Result<std::uint16_t>::failure(errno);
  socklen_t got = sizeof ss;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &got) != 0)
    return Result<std::uint16_t>::failure(errno);
  const std::uint16_t bound = ntohs(ss.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
  ++core_->listeners;
  runtime::spawn(detail::accept_loop(core_, std::move(fd), false, {}), "http-listener");
  return bound;
}

Result<void> Server::listen_unix(const std::string& path, mode_t mode) {
  sockaddr_un sun{};
  if (path.empty() || path.size() >= sizeof sun.sun_path) return Result<void>::failure(ENAMETOOLONG);
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);

  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Result<void>::failure(EEXIST);
    // A socket file is stale when nobody accepts on it (ECONNREFUSED). Probing
    // non-blocking: a live server with a full backlog answers EAGAIN.
    runtime::Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!probe) return fail_errno();
    if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0 || errno == EAGAIN)
      return Result<void>::failure(EADDRINUSE);
    if (errno != ECONNREFUSED) return fail_errno();
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail_errno();
  }
  runtime::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return fail_errno();
  // bind() creates the file with 0777 & ~umask; narrowing the umask around it
  // means the socket is never reachable with wider permissions than `mode`, not
  // even between bind and chmod. (Start-up code, single thread.)
  const mode_t old_mask = ::umask(0777 & ~mode);
  const int bound = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun);
  const int bind_errno = errno;
  ::umask(old_mask);
  if (bound != 0) return Result<void>::failure(bind_errno);
  if (::chmod(path.c_str(), mode) != 0 || ::listen(fd.get(), SOMAXCONN) != 0) {
    const int err = errno;
    ::unlink(path.c_str());
    return Result<void>::failure(err);
  }
  ++core_->listeners;
  runtime::spawn(detail::accept_loop(core_, std::move(fd), true, path), "http-listener");
  return {};
}

Task<std::vector<ReleasedListener>> Server::release_listeners() {
  std::shared_ptr<detail::Core> core = core_;
  core->releasing = true;
  core->handing_over = true;
  core->accept_stop.request_stop();
  while (core->listeners > 0) (void)co_await core->changed.recv();
  core->releasing = false;
  co_return std::exchange(core->released, {});
}

void Server::resume(std::vector<ReleasedListener> listeners) {
  core_->stopping = false;
  core_->handing_over = false;
  core_->accept_stop = std::stop_source();
  for (auto& l : listeners) {
    ++core_->listeners;
    sockaddr_storage ss{};
    socklen_t sl = sizeof ss;
    const bool is_unix = ::getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&ss), &sl) == 0 && ss.ss_family == AF_UNIX;
    runtime::spawn(detail::accept_loop(core_, std::move(l.fd), is_unix, std::move(l.unix_path)), "http-listener");
  }
}

Result<void> Server::adopt_listener(int raw_fd) {
  runtime::Fd fd(raw_fd);
  int listening = 0;
  socklen_t len = sizeof listening;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0) return fail_errno();
  if (!listening) return Result<void>::failure(EINVAL);
  sockaddr_storage ss{};
  socklen_t sl = sizeof ss;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &sl) != 0) return fail_errno();
  // A blocking listener would make io_uring punt each accept to a worker thread.
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) return fail_errno();
  ::fcntl(fd.get(), F_SETFD, FD_CLOEXEC);
  ++core_->listeners;
  // The path belongs to systemd, which created it: never unlinked here.
  runtime::spawn(detail::accept_loop(core_, std::move(fd), ss.ss_family == AF_UNIX, {}), "http-listener");
  return {};
}

}  // namespace http
