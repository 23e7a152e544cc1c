#include "tools/cli/connection.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "http/openssl.hpp"

namespace tools {

namespace {

using Clock = Connection::Clock;

volatile sig_atomic_t g_interrupted = 0;
bool g_handler_installed = false;
sigset_t g_wait_mask;  // the mask ppoll() waits with: SIGINT/SIGTERM deliverable

void on_interrupt(int) { g_interrupted = 1; }

ClientError make_error(ClientError::Kind kind, int code, std::string message) {
  return ClientError{kind, code, std::move(message)};
}

// Waits until fd is ready for `events` or the deadline passes. The signals stay
// blocked except inside ppoll(), which unblocks them atomically: a SIGINT that
// arrives just before the wait is delivered in it (EINTR) instead of being lost
// until the next byte from the daemon, which in follow mode may never come.
// Returns 0, ETIME, EINTR (interrupted) or another errno.
int wait_fd(int fd, short events, std::optional<Clock::time_point> deadline) {
  while (true) {
    if (g_interrupted) return EINTR;
    timespec ts{};
    timespec* tsp = nullptr;
    if (deadline) {
      auto left = *deadline - Clock::now();
      if (left <= Clock::duration::zero()) return ETIME;
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
      tsp = &ts;
    }
    pollfd p{fd, events, 0};
    int n = ::ppoll(&p, 1, tsp, g_handler_installed ? &g_wait_mask : nullptr);
    if (n > 0) return 0;  // ready, or POLLERR/POLLHUP: the next call reports why
    if (n == 0) return ETIME;
    if (errno == EINTR) {
      if (g_interrupted) return EINTR;
      continue;
    }
    return errno;
  }
}

// A non-blocking connect bounded by kConnectTimeout. Unix sockets answer at once
// (ENOENT, ECONNREFUSED) but give EAGAIN while the listener's backlog is full: retried.
int connect_with_timeout(int fd, const sockaddr* addr, socklen_t len, Clock::time_point deadline) {
  while (true) {
    if (::connect(fd, addr, len) == 0) return 0;
    if (errno == EINTR) continue;
    if (errno == EAGAIN && addr->sa_family == AF_UNIX) {
      if (Clock::now() >= deadline) return ETIMEDOUT;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    if (errno != EINPROGRESS) return errno;
    int w = wait_fd(fd, POLLOUT, deadline);
    if (w == ETIME) return ETIMEDOUT;
    if (w != 0) return w;
    int err = 0;
    socklen_t elen = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) return errno;
    return err;
  }
}

std::string connect_message(const Endpoint& ep, int code) {
  std::string why = code == ETIMEDOUT ? "timed out after 5s" : std::strerror(code);
  return "cannot connect to " + ep.describe() + ": " + why +
         " \u2014 is the daemon running? (dockless serve)";
}

// The connected socket, or -1 and why.
std::pair<int, ClientError> connect_to(const Endpoint& ep) {
  const auto deadline = Clock::now() + Connection::kConnectTimeout;
  if (!ep.tcp) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (ep.path.size() >= sizeof sa.sun_path)
      return {-1, make_error(ClientError::Kind::connect, ENAMETOOLONG,
                             connect_message(ep, ENAMETOOLONG))};
    std::memcpy(sa.sun_path, ep.path.c_str(), ep.path.size() + 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return {-1, make_error(ClientError::Kind::connect, errno, connect_message(ep, errno))};
    int err = connect_with_timeout(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa, deadline);
    if (err != 0) {
      ::close(fd);
      auto kind = err == EINTR ? ClientError::Kind::interrupted : ClientError::Kind::connect;
      return {-1, make_error(kind, err, connect_message(ep, err))};
    }
    return {fd, {}};
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  std::string port = std::to_string(ep.port);
  if (int rc = ::getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &list); rc != 0)
    return {-1, make_error(ClientError::Kind::connect, 0,
                           "cannot connect to " + ep.describe() + ": " + ::gai_strerror(rc))};
  int last = ECONNREFUSED;
  int fd = -1;
  for (addrinfo* ai = list; ai; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      last = errno;
      continue;
    }
    last = connect_with_timeout(fd, ai->ai_addr, ai->ai_addrlen, deadline);
    if (last == 0) break;
    ::close(fd);
    fd = -1;
    if (last == EINTR || last == ETIMEDOUT) break;
  }
  ::freeaddrinfo(list);
  if (fd < 0) {
    auto kind = last == EINTR ? ClientError::Kind::interrupted : ClientError::Kind::connect;
    return {-1, make_error(kind, last, connect_message(ep, last))};
  }
  return {fd, {}};
}

// Loaded by handshake() before any other use: only a TLS connection has an SSL.
const http::openssl::Api& ossl() { return http::openssl::require(); }

std::string tls_reason() {
  const unsigned long e = ossl().ERR_peek_last_error();
  const char* r = e ? ossl().ERR_reason_error_string(e) : nullptr;
  ossl().ERR_clear_error();
  return r ? r : "connection closed during the handshake";
}

// The wait an SSL call needs next (POLLIN/POLLOUT), 0 for a real failure.
short tls_want(SSL* ssl, int ret) {
  switch (ossl().SSL_get_error(ssl, ret)) {
    case SSL_ERROR_WANT_READ: return POLLIN;
    case SSL_ERROR_WANT_WRITE: return POLLOUT;
    default: return 0;
  }
}

}  // namespace

std::pair<std::optional<Connection>, ClientError> Connection::open(
    const Endpoint& ep, std::optional<Clock::time_point> handshake_deadline) {
  auto [fd, error] = connect_to(ep);
  if (fd < 0) return {std::nullopt, std::move(error)};
  Connection c(fd);
  if (ep.tls) {
    if (auto err = c.handshake(ep, handshake_deadline.value_or(Clock::now() + kConnectTimeout)))
      return {std::nullopt, std::move(*err)};
  }
  return {std::optional<Connection>(std::move(c)), ClientError{}};
}

Connection::Connection(Connection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      ctx_(std::exchange(other.ctx_, nullptr)),
      ssl_(std::exchange(other.ssl_, nullptr)) {}

Connection::~Connection() {
  if (ssl_ || ctx_) {  // a plain connection never loads OpenSSL
    ossl().SSL_free(ssl_);
    ossl().SSL_CTX_free(ctx_);
    ossl().ERR_clear_error();
  }
  if (fd_ >= 0) ::close(fd_);
}

int Connection::wait(short events, std::optional<Clock::time_point> deadline) const {
  return wait_fd(fd_, events, deadline);
}

// https://: a blocking-style OpenSSL client over the non-blocking socket; each
// WANT_READ/WANT_WRITE becomes a wait() on the fd (so deadlines and Ctrl-C work
// as over plain TCP).
std::optional<ClientError> Connection::handshake(const Endpoint& ep, Clock::time_point deadline) {
  auto fail = [&](const std::string& why) {
    return make_error(ClientError::Kind::connect, EPROTO, "TLS with " + ep.describe() + " failed: " + why);
  };
  if (std::string why; !http::openssl::api(&why)) return fail(why);
  ossl().ERR_clear_error();
  ctx_ = ossl().SSL_CTX_new(ossl().TLS_client_method());
  if (!ctx_) return fail(tls_reason());
  ossl().SSL_CTX_ctrl(ctx_, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, nullptr);
  // A daemon that closes without close_notify ends a until-close body, not an error.
  ossl().SSL_CTX_set_options(ctx_, SSL_OP_IGNORE_UNEXPECTED_EOF);
  // (long): wolfSSL's two flags are members of different enums.
  ossl().SSL_CTX_ctrl(ctx_, SSL_CTRL_MODE, long{SSL_MODE_ENABLE_PARTIAL_WRITE} | long{SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER}, nullptr);
  const int loaded = ep.cacert.empty() ? ossl().SSL_CTX_set_default_verify_paths(ctx_)
                                       : ossl().SSL_CTX_load_verify_locations(ctx_, ep.cacert.c_str(), nullptr);
  if (loaded != 1) return fail("cannot load CA certificates " + ep.cacert + ": " + tls_reason());
  ossl().SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  ssl_ = ossl().SSL_new(ctx_);
  if (!ssl_ || ossl().SSL_set_fd(ssl_, fd_) != 1) return fail(tls_reason());
  // The certificate must name what the user typed: an IP address or a host name.
  in6_addr ip{};
  const bool is_ip = ::inet_pton(AF_INET, ep.host.c_str(), &ip) == 1 || ::inet_pton(AF_INET6, ep.host.c_str(), &ip) == 1;
  X509_VERIFY_PARAM* param = ossl().SSL_get0_param(ssl_);
  if (is_ip) {
    ossl().X509_VERIFY_PARAM_set1_ip_asc(param, ep.host.c_str());
  } else {
    ossl().SSL_ctrl(ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(ep.host.c_str()));
    ossl().X509_VERIFY_PARAM_set1_host(param, ep.host.c_str(), 0);
  }
  static constexpr unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  ossl().SSL_set_alpn_protos(ssl_, kAlpn, sizeof kAlpn);
  for (;;) {
    const int r = ossl().SSL_connect(ssl_);
    if (r == 1) return std::nullopt;
    const short want = tls_want(ssl_, r);
    if (!want) {
      const long verify = ossl().SSL_get_verify_result(ssl_);
      std::string untrusted = verify != X509_V_OK ? ossl().X509_verify_cert_error_string(verify) : "";
#ifdef DOCKLESS_TLS_WOLFSSL
      // wolfSSL checks the name as part of the handshake and reports a mismatch as the
      // handshake's error, not in the verify result; said here in OpenSSL's words.
      if (const int why = ossl().SSL_get_error(ssl_, r); untrusted.empty() && why == DOMAIN_NAME_MISMATCH)
        untrusted = "hostname mismatch";
      else if (untrusted.empty() && why == IPADDR_MISMATCH)
        untrusted = "IP address mismatch";
#endif
      if (!untrusted.empty()) {
        ossl().ERR_clear_error();
        return fail("certificate not trusted: " + untrusted +
                    (ep.cacert.empty() ? " (--cacert FILE names a CA to trust)" : ""));
      }
      return fail(tls_reason());
    }
    if (int w = wait(want, deadline); w != 0) {
      auto kind = w == EINTR ? ClientError::Kind::interrupted : ClientError::Kind::timeout;
      return make_error(kind, w == ETIME ? ETIMEDOUT : w, "TLS handshake with " + ep.describe() + ": " +
                                                               (w == ETIME ? "timed out" : std::strerror(w)));
    }
  }
}

ssize_t Connection::send_some(const char* data, std::size_t n, short* want) {
  *want = POLLOUT;
  if (!ssl_) return ::send(fd_, data, n, MSG_NOSIGNAL);
  ossl().ERR_clear_error();
  const int r = ossl().SSL_write(ssl_, data, static_cast<int>(std::min<std::size_t>(n, 1 << 30)));
  if (r > 0) return r;
  *want = tls_want(ssl_, r);
  errno = *want ? EAGAIN : EPIPE;
  return -1;
}

ssize_t Connection::recv_some(char* buf, std::size_t n, short* want) {
  *want = POLLIN;
  if (!ssl_) return ::recv(fd_, buf, n, 0);
  ossl().ERR_clear_error();
  const int r = ossl().SSL_read(ssl_, buf, static_cast<int>(n));
  if (r > 0) return r;
  if (ossl().SSL_get_error(ssl_, r) == SSL_ERROR_ZERO_RETURN) return 0;
#ifdef DOCKLESS_TLS_WOLFSSL
  // An EOF without close_notify, which OpenSSL's SSL_OP_IGNORE_UNEXPECTED_EOF makes an EOF.
  if (r == 0 && ossl().SSL_get_error(ssl_, r) == SOCKET_PEER_CLOSED_E) return 0;
#endif
  *want = tls_want(ssl_, r);
  errno = *want ? EAGAIN : EPROTO;
  return -1;
}

Endpoint Endpoint::unix_socket(std::string path) {
  Endpoint e;
  e.path = std::move(path);
  return e;
}

std::optional<Endpoint> Endpoint::parse_host(const std::string& text, std::string* error) {
  std::string rest = text;
  bool tls = false;
  if (rest.rfind("http://", 0) == 0) {
    rest = rest.substr(7);
  } else if (rest.rfind("https://", 0) == 0) {
    rest = rest.substr(8);
    tls = true;
  } else if (rest.find("://") != std::string::npos) {
    *error = "unsupported scheme in \"" + text + "\" (expected http://HOST:PORT or https://HOST:PORT)";
    return std::nullopt;
  }
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  Endpoint e;
  e.tcp = true;
  e.tls = tls;
  std::string port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) {
      *error = "unterminated [ in \"" + text + "\"";
      return std::nullopt;
    }
    e.host = rest.substr(1, close - 1);
    std::string after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        *error = "expected :PORT after ] in \"" + text + "\"";
        return std::nullopt;
      }
      port = after.substr(1);
    }
  } else {
    auto colon = rest.rfind(':');
    e.host = rest.substr(0, colon);
    if (colon != std::string::npos) port = rest.substr(colon + 1);
  }
  if (e.host.empty() || e.host.find('/') != std::string::npos) {
    *error = "expected http://HOST:PORT, got \"" + text + "\"";
    return std::nullopt;
  }
  if (!port.empty() || rest.find(':') != std::string::npos) {
    char* end = nullptr;
    long p = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || p <= 0 || p > 65535) {
      *error = "bad port in \"" + text + "\"";
      return std::nullopt;
    }
    e.port = static_cast<std::uint16_t>(p);
  }
  return e;
}

std::string Endpoint::describe() const {
  if (!tcp) return path;
  return (tls ? "https://" : "http://") + host_header();
}

std::string Endpoint::host_header() const {
  if (!tcp) return "localhost";
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

void install_interrupt_handler() {
  ::signal(SIGPIPE, SIG_IGN);
  struct sigaction sa{};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked write to stdout returns EINTR
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigset_t old;
  ::sigprocmask(SIG_BLOCK, &block, &old);
  g_wait_mask = old;
  sigdelset(&g_wait_mask, SIGINT);
  sigdelset(&g_wait_mask, SIGTERM);
  g_handler_installed = true;
}

bool interrupted() { return g_interrupted != 0; }

bool write_fully(int fd, const char* data, std::size_t size) {
  sigset_t saved;
  if (g_handler_installed) ::pthread_sigmask(SIG_SETMASK, &g_wait_mask, &saved);
  bool ok = true;
  while (size > 0) {
    // Checked after unblocking: a signal pending until now has just set the flag.
    if (g_interrupted) {
      ok = false;
      break;
    }
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      ok = false;  // EPIPE (SIGPIPE is ignored) or a real error: either way, stop
      break;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  if (g_handler_installed) ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  return ok;
}

}  // namespace tools
