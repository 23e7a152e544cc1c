#pragma once
// A small blocking HTTP/1.1 client for the CLI: one request per connection, over a
// unix socket or TCP, responses parsed by llhttp (Content-Length, chunked, or
// until-close bodies). The daemon's reactor is not involved: a CLI does one thing
// at a time, so plain blocking sockets with poll() deadlines are the simplest
// correct tool here.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "GET";
  std::string target = "/";  // path and query, already percent-encoded
  Headers headers;           // besides Host, Connection, Content-Length, Authorization
  std::string body;
};

struct HttpResponse {
  int status = 0;
  Headers headers;
  std::string body;
  // The first header of that name (case-insensitive), or "".
  std::string header(const std::string& name) const;
};

// Why a request got no (complete) response. `code` is the errno when there is one.
struct ClientError {
  enum class Kind { connect, timeout, io, protocol, interrupted };
  Kind kind = Kind::io;
  int code = 0;
  std::string message;  // complete sentence-fragment, e.g. "cannot connect to X: ..."
};

// A streamed body is delivered piece by piece; returning false stops reading
// (the caller's output went away) and the call returns with no error.
using BodySink = std::function<bool(const char* data, std::size_t size)>;

class HttpClient {
 public:
  HttpClient(Endpoint endpoint, std::string token);

  static constexpr std::chrono::seconds kConnectTimeout{5};
  static constexpr std::chrono::seconds kRequestTimeout{30};

  // The whole response, within kRequestTimeout (after connecting).
  std::pair<std::optional<HttpResponse>, ClientError> request(const HttpRequest& req) const;

  // Streams: *head gets status and headers (body empty); then every piece of the body
  // goes to `sink` as it arrives. `idle` bounds the wait for each read (nullopt: no
  // bound, for follow mode). SIGINT/SIGTERM while waiting end the call with
  // Kind::interrupted (only when install_interrupt_handler() was called).
  std::optional<ClientError> stream(const HttpRequest& req, HttpResponse* head, const BodySink& sink,
                                    std::optional<std::chrono::milliseconds> idle) const;

  const Endpoint& endpoint() const { return endpoint_; }

 private:
  Endpoint endpoint_;
  std::string token_;
};

// Makes SIGINT/SIGTERM set a flag instead of killing the process, so a streaming
// command can stop reading and exit 0. Also ignores SIGPIPE (EPIPE becomes a value).
void install_interrupt_handler();
bool interrupted();

// Writes all of data to fd (stdout, typically) with SIGINT/SIGTERM deliverable, so
// a reader that stopped reading cannot pin a Ctrl-C'd process. false on EPIPE, on an
// interrupt or another error: the caller stops quietly.
bool write_fully(int fd, const char* data, std::size_t size);

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string url_encode(const std::string& s);

}  // namespace tools
