#pragma once
// A small blocking HTTP/1.1 client for the CLI: one request per connection (connection.hpp:
// a unix socket, TCP or TLS), responses parsed by llhttp (Content-Length, chunked, or
// until-close bodies). The daemon's reactor is not involved: a CLI does one thing
// at a time, so plain blocking sockets with poll() deadlines are the simplest
// correct tool here.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tools/cli/connection.hpp"

namespace tools {

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

// A streamed body is delivered piece by piece; returning false stops reading
// (the caller's output went away) and the call returns with no error.
using BodySink = std::function<bool(const char* data, std::size_t size)>;

class HttpClient {
 public:
  HttpClient(Endpoint endpoint, std::string token);

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

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string url_encode(const std::string& s);

}  // namespace tools
