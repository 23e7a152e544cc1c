#include "tools/cli/http_client.hpp"

#include <arpa/inet.h>
#include <llhttp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
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

#include "dockless_config.h"

namespace tools {

namespace {

using Clock = std::chrono::steady_clock;

volatile sig_atomic_t g_interrupted = 0;
bool g_handler_installed = false;
sigset_t g_wait_mask;  // the mask ppoll() waits with: SIGINT/SIGTERM deliverable

void on_interrupt(int) { g_interrupted = 1; }

// Closes the fd on every path out of a request.
struct Socket {
  int fd = -1;
  explicit Socket(int f) : fd(f) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (fd >= 0) ::close(fd);
  }
};

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

std::pair<int, ClientError> open_connection(const Endpoint& ep) {
  const auto deadline = Clock::now() + HttpClient::kConnectTimeout;
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

std::string serialize(const HttpRequest& req, const Endpoint& ep, const std::string& token) {
  std::string out = req.method + " " + req.target + " HTTP/1.1\r\n";
  out += "Host: " + ep.host_header() + "\r\n";
  out += "User-Agent: dockless/" DOCKLESS_VERSION "\r\n";
  // One request per connection: the response then ends at the latest when the
  // daemon closes, and no connection state outlives a command.
  out += "Connection: close\r\n";
  if (!token.empty()) out += "Authorization: Bearer " + token + "\r\n";
  for (const auto& [k, v] : req.headers) out += k + ": " + v + "\r\n";
  if (!req.body.empty() || req.method == "POST" || req.method == "PUT")
    out += "Content-Length: " + std::to_string(req.body.size()) + "\r\n";
  out += "\r\n";
  out += req.body;
  return out;
}

// llhttp's callbacks write into this; `parser.data` points at it.
struct ParseState {
  HttpResponse* head = nullptr;
  const BodySink* sink = nullptr;
  std::string field, value;
  bool headers_done = false;
  bool complete = false;
  bool sink_stopped = false;

  // Bodies of error statuses are kept for the caller, never streamed to the sink.
  bool streaming() const { return sink && head->status >= 200 && head->status < 300; }
};

ParseState* state_of(llhttp_t* p) { return static_cast<ParseState*>(p->data); }

const llhttp_settings_t& parser_settings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_header_field = [](llhttp_t* p, const char* at, size_t n) {
      state_of(p)->field.append(at, n);
      return 0;
    };
    s.on_header_value = [](llhttp_t* p, const char* at, size_t n) {
      state_of(p)->value.append(at, n);
      return 0;
    };
    s.on_header_value_complete = [](llhttp_t* p) {
      ParseState* st = state_of(p);
      st->head->headers.emplace_back(std::move(st->field), std::move(st->value));
      st->field.clear();
      st->value.clear();
      return 0;
    };
    s.on_headers_complete = [](llhttp_t* p) {
      ParseState* st = state_of(p);
      st->head->status = llhttp_get_status_code(p);
      st->headers_done = true;
      return 0;
    };
    s.on_body = [](llhttp_t* p, const char* at, size_t n) {
      ParseState* st = state_of(p);
      if (!st->streaming()) {
        st->head->body.append(at, n);
        return 0;
      }
      if (!(*st->sink)(at, n)) {
        st->sink_stopped = true;
        return static_cast<int>(HPE_USER);
      }
      return 0;
    };
    s.on_message_complete = [](llhttp_t* p) {
      state_of(p)->complete = true;
      return static_cast<int>(HPE_PAUSED);  // one response per connection: ignore the rest
    };
    return s;
  }();
  return settings;
}

// https://: a blocking-style OpenSSL client over the non-blocking socket; each
// WANT_READ/WANT_WRITE becomes a wait_fd on the fd (so deadlines and Ctrl-C work
// as over plain TCP).
struct Tls {
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  Tls() = default;
  Tls(const Tls&) = delete;
  Tls& operator=(const Tls&) = delete;
  ~Tls() {
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ERR_clear_error();
  }
};

std::string tls_reason() {
  const unsigned long e = ERR_peek_last_error();
  const char* r = e ? ERR_reason_error_string(e) : nullptr;
  ERR_clear_error();
  return r ? r : "connection closed during the handshake";
}

// The wait an SSL call needs next (POLLIN/POLLOUT), 0 for a real failure.
short tls_want(SSL* ssl, int ret) {
  switch (SSL_get_error(ssl, ret)) {
    case SSL_ERROR_WANT_READ: return POLLIN;
    case SSL_ERROR_WANT_WRITE: return POLLOUT;
    default: return 0;
  }
}

std::optional<ClientError> tls_connect(Tls& tls, int fd, const Endpoint& ep, Clock::time_point deadline) {
  auto fail = [&](const std::string& why) {
    return make_error(ClientError::Kind::connect, EPROTO, "TLS with " + ep.describe() + " failed: " + why);
  };
  ERR_clear_error();
  tls.ctx = SSL_CTX_new(TLS_client_method());
  if (!tls.ctx) return fail(tls_reason());
  SSL_CTX_set_min_proto_version(tls.ctx, TLS1_2_VERSION);
  // A daemon that closes without close_notify ends a until-close body, not an error.
  SSL_CTX_set_options(tls.ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(tls.ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  const int loaded = ep.cacert.empty() ? SSL_CTX_set_default_verify_paths(tls.ctx)
                                       : SSL_CTX_load_verify_locations(tls.ctx, ep.cacert.c_str(), nullptr);
  if (loaded != 1) return fail("cannot load CA certificates " + ep.cacert + ": " + tls_reason());
  SSL_CTX_set_verify(tls.ctx, SSL_VERIFY_PEER, nullptr);
  tls.ssl = SSL_new(tls.ctx);
  if (!tls.ssl || SSL_set_fd(tls.ssl, fd) != 1) return fail(tls_reason());
  // The certificate must name what the user typed: an IP address or a host name.
  in6_addr ip{};
  const bool is_ip = ::inet_pton(AF_INET, ep.host.c_str(), &ip) == 1 || ::inet_pton(AF_INET6, ep.host.c_str(), &ip) == 1;
  X509_VERIFY_PARAM* param = SSL_get0_param(tls.ssl);
  if (is_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(param, ep.host.c_str());
  } else {
    SSL_set_tlsext_host_name(tls.ssl, ep.host.c_str());
    X509_VERIFY_PARAM_set1_host(param, ep.host.c_str(), 0);
  }
  static constexpr unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_set_alpn_protos(tls.ssl, kAlpn, sizeof kAlpn);
  for (;;) {
    const int r = SSL_connect(tls.ssl);
    if (r == 1) return std::nullopt;
    const short want = tls_want(tls.ssl, r);
    if (!want) {
      const long verify = SSL_get_verify_result(tls.ssl);
      if (verify != X509_V_OK) {
        ERR_clear_error();
        return fail(std::string("certificate not trusted: ") + X509_verify_cert_error_string(verify) +
                    (ep.cacert.empty() ? " (--cacert FILE names a CA to trust)" : ""));
      }
      return fail(tls_reason());
    }
    if (int w = wait_fd(fd, want, deadline); w != 0) {
      auto kind = w == EINTR ? ClientError::Kind::interrupted : ClientError::Kind::timeout;
      return make_error(kind, w == ETIME ? ETIMEDOUT : w, "TLS handshake with " + ep.describe() + ": " +
                                                               (w == ETIME ? "timed out" : std::strerror(w)));
    }
  }
}

// send(2)/recv(2) or their TLS counterparts, with the same contract: bytes, or -1
// with errno (EAGAIN: wait for *want first).
ssize_t send_some(int fd, SSL* ssl, const char* data, std::size_t n, short* want) {
  *want = POLLOUT;
  if (!ssl) return ::send(fd, data, n, MSG_NOSIGNAL);
  ERR_clear_error();
  const int r = SSL_write(ssl, data, static_cast<int>(std::min<std::size_t>(n, 1 << 30)));
  if (r > 0) return r;
  *want = tls_want(ssl, r);
  errno = *want ? EAGAIN : EPIPE;
  return -1;
}

ssize_t recv_some(int fd, SSL* ssl, char* buf, std::size_t n, short* want) {
  *want = POLLIN;
  if (!ssl) return ::recv(fd, buf, n, 0);
  ERR_clear_error();
  const int r = SSL_read(ssl, buf, static_cast<int>(n));
  if (r > 0) return r;
  if (SSL_get_error(ssl, r) == SSL_ERROR_ZERO_RETURN) return 0;
  *want = tls_want(ssl, r);
  errno = *want ? EAGAIN : EPROTO;
  return -1;
}

// Sends the request, then reads and parses until the response is complete.
// `total` bounds the whole exchange; `idle` each wait for bytes.
std::optional<ClientError> exchange(const Endpoint& ep, const std::string& token,
                                    const HttpRequest& req, HttpResponse* head,
                                    const BodySink* sink, std::optional<Clock::time_point> total,
                                    std::optional<std::chrono::milliseconds> idle) {
  auto [fd, cerr] = open_connection(ep);
  if (fd < 0) return cerr;
  Socket sock(fd);
  auto deadline = [&]() -> std::optional<Clock::time_point> {
    std::optional<Clock::time_point> d = total;
    if (idle) {
      auto i = Clock::now() + *idle;
      if (!d || i < *d) d = i;
    }
    return d;
  };
  auto wait_error = [&](int err, const char* what) {
    if (err == EINTR) return make_error(ClientError::Kind::interrupted, EINTR, "interrupted");
    if (err == ETIME)
      return make_error(ClientError::Kind::timeout, ETIMEDOUT,
                        std::string("no ") + what + " from " + ep.describe() + " in time");
    return make_error(ClientError::Kind::io, err,
                      std::string(what) + " from " + ep.describe() + ": " + std::strerror(err));
  };

  Tls tls;
  if (ep.tls) {
    if (auto err = tls_connect(tls, fd, ep, total.value_or(Clock::now() + HttpClient::kConnectTimeout))) return err;
  }
  short want = 0;
  const std::string wire = serialize(req, ep, token);
  for (std::size_t sent = 0; sent < wire.size();) {
    ssize_t n = send_some(fd, tls.ssl, wire.data() + sent, wire.size() - sent, &want);
    if (n >= 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      // The daemon may have answered (e.g. 413) and closed before reading it all:
      // its response, if any, is still worth reading.
      if (errno == EPIPE || errno == ECONNRESET) break;
      return make_error(ClientError::Kind::io, errno,
                        "send to " + ep.describe() + ": " + std::strerror(errno));
    }
    if (int w = wait_fd(fd, want, deadline()); w != 0) return wait_error(w, "progress sending");
  }

  ParseState st;
  st.head = head;
  st.sink = sink;
  llhttp_t parser;
  llhttp_init(&parser, HTTP_RESPONSE, &parser_settings());
  parser.data = &st;
  char buf[64 * 1024];
  while (!st.complete) {
    ssize_t n = recv_some(fd, tls.ssl, buf, sizeof buf, &want);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        return make_error(ClientError::Kind::io, errno,
                          "reading from " + ep.describe() + ": " + std::strerror(errno));
      }
      if (int w = wait_fd(fd, want, deadline()); w != 0) return wait_error(w, "response");
      continue;
    }
    llhttp_errno_t e = n == 0 ? llhttp_finish(&parser) : llhttp_execute(&parser, buf, static_cast<std::size_t>(n));
    if (st.sink_stopped) return std::nullopt;
    // At EOF llhttp_finish() says HPE_INVALID_EOF_STATE for a body cut short.
    if (n == 0 && !st.complete) {
      return make_error(ClientError::Kind::protocol, 0,
                        ep.describe() + " closed the connection before the response was complete");
    }
    if (e != HPE_OK && e != HPE_PAUSED) {
      return make_error(ClientError::Kind::protocol, 0,
                        "bad response from " + ep.describe() + ": " + llhttp_errno_name(e) + " (" +
                            llhttp_get_error_reason(&parser) + ")");
    }
  }
  return std::nullopt;
}

bool iequals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace

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

std::string HttpResponse::header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return "";
}

HttpClient::HttpClient(Endpoint endpoint, std::string token)
    : endpoint_(std::move(endpoint)), token_(std::move(token)) {}

std::pair<std::optional<HttpResponse>, ClientError> HttpClient::request(const HttpRequest& req) const {
  HttpResponse resp;
  auto err = exchange(endpoint_, token_, req, &resp, nullptr, Clock::now() + kRequestTimeout, std::nullopt);
  if (err) return {std::nullopt, *err};
  return {std::move(resp), {}};
}

std::optional<ClientError> HttpClient::stream(const HttpRequest& req, HttpResponse* head,
                                              const BodySink& sink,
                                              std::optional<std::chrono::milliseconds> idle) const {
  return exchange(endpoint_, token_, req, head, &sink, std::nullopt, idle);
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

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace tools
