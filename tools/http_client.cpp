#include "tools/http_client.hpp"

#include <llhttp.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

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

  const std::string wire = serialize(req, ep, token);
  for (std::size_t sent = 0; sent < wire.size();) {
    ssize_t n = ::send(fd, wire.data() + sent, wire.size() - sent, MSG_NOSIGNAL);
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
    if (int w = wait_fd(fd, POLLOUT, deadline()); w != 0) return wait_error(w, "progress sending");
  }

  ParseState st;
  st.head = head;
  st.sink = sink;
  llhttp_t parser;
  llhttp_init(&parser, HTTP_RESPONSE, &parser_settings());
  parser.data = &st;
  char buf[64 * 1024];
  while (!st.complete) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        return make_error(ClientError::Kind::io, errno,
                          "reading from " + ep.describe() + ": " + std::strerror(errno));
      }
      if (int w = wait_fd(fd, POLLIN, deadline()); w != 0) return wait_error(w, "response");
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
  if (rest.rfind("http://", 0) == 0) {
    rest = rest.substr(7);
  } else if (rest.find("://") != std::string::npos) {
    *error = "unsupported scheme in \"" + text + "\" (expected http://HOST:PORT)";
    return std::nullopt;
  }
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  Endpoint e;
  e.tcp = true;
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
  return "http://" + host_header();
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
