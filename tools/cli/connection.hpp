#pragma once
// The CLI's byte stream to the daemon: a unix socket or a TCP connection, with TLS for
// https://. Blocking in style over a non-blocking socket: every wait is a ppoll() with a
// deadline in which SIGINT/SIGTERM are deliverable, so timeouts and Ctrl-C behave the same
// on every transport. http_client.* speaks HTTP over it.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#ifdef DOCKLESS_TLS_WOLFSSL  // -Dtls=wolfssl (http/openssl.hpp)
struct WOLFSSL;
struct WOLFSSL_CTX;
#else
struct ssl_st;
struct ssl_ctx_st;
#endif

namespace tools {

// Where the daemon is: a unix socket path, or a TCP host and port.
struct Endpoint {
  bool tcp = false;
  std::string path;  // unix socket
  std::string host;  // TCP: a name or an address ("::1" without brackets)
  std::uint16_t port = 3080;
  bool tls = false;    // https://: OpenSSL, verified against `cacert` or the system store
  std::string cacert;  // PEM CA file ("" = the system's trust store)

  static Endpoint unix_socket(std::string path);
  // "http://HOST:PORT", "https://HOST:PORT", "http://[::1]:PORT", "HOST:PORT" or "HOST" (port 3080);
  // a trailing "/" is allowed. nullopt (and *error) when it is not one of those.
  static std::optional<Endpoint> parse_host(const std::string& text, std::string* error);
  // For messages: the socket path, or "http(s)://HOST:PORT".
  std::string describe() const;
  // The Host header's value.
  std::string host_header() const;
};

// Why a request got no (complete) response. `code` is the errno when there is one.
struct ClientError {
  enum class Kind { connect, timeout, io, protocol, interrupted };
  Kind kind = Kind::io;
  int code = 0;
  std::string message;  // complete sentence-fragment, e.g. "cannot connect to X: ..."
};

class Connection {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kConnectTimeout{5};

  // Connects within kConnectTimeout, then for https:// completes the handshake by
  // `handshake_deadline` (nullopt: kConnectTimeout from when the socket is connected).
  static std::pair<std::optional<Connection>, ClientError> open(const Endpoint& ep,
                                                                std::optional<Clock::time_point> handshake_deadline);

  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&&) = delete;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // send(2)/recv(2) or their TLS counterparts, with the same contract: bytes, or -1 with
  // errno (EAGAIN: wait(*want) first). recv_some returns 0 at the end of the stream.
  ssize_t send_some(const char* data, std::size_t n, short* want);
  ssize_t recv_some(char* buf, std::size_t n, short* want);
  // Waits until the socket is ready for `events` (POLLIN/POLLOUT) or the deadline passes.
  // Returns 0, ETIME, EINTR (interrupted) or another errno.
  int wait(short events, std::optional<Clock::time_point> deadline) const;

 private:
  explicit Connection(int fd) : fd_(fd) {}
  std::optional<ClientError> handshake(const Endpoint& ep, Clock::time_point deadline);

  int fd_ = -1;
#ifdef DOCKLESS_TLS_WOLFSSL
  WOLFSSL_CTX* ctx_ = nullptr;
  WOLFSSL* ssl_ = nullptr;
#else
  ssl_ctx_st* ctx_ = nullptr;
  ssl_st* ssl_ = nullptr;
#endif
};

// Makes SIGINT/SIGTERM set a flag instead of killing the process, so a streaming
// command can stop reading and exit 0. Also ignores SIGPIPE (EPIPE becomes a value).
void install_interrupt_handler();
bool interrupted();

// Writes all of data to fd (stdout, typically) with SIGINT/SIGTERM deliverable, so
// a reader that stopped reading cannot pin a Ctrl-C'd process. false on EPIPE, on an
// interrupt or another error: the caller stops quietly.
bool write_fully(int fd, const char* data, std::size_t size);

}  // namespace tools
