#pragma once
// The daemon's own one-shot HTTP/1.1 requests on the ring: health checks (GET) and trigger
// handlers (POST of an event). Numeric hosts only (a resolver call would block the loop),
// `Connection: close`, and only the status line is read back: both callers need the verdict,
// not the body.
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "runtime/fd.hpp"
#include "runtime/io_op.hpp"
#include "runtime/reactor.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace actors {

// A whole request shares one deadline: each operation gets what is left of it.
struct RequestBudget {
  using Clock = std::chrono::steady_clock;
  Clock::time_point end;
  config::Duration timeout;
  explicit RequestBudget(config::Duration t) : end(Clock::now() + t), timeout(t) {}
  runtime::Duration left() const;
  bool expired() const { return Clock::now() >= end; }
  std::string timed_out(std::string_view what) const;
};

struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string text;  // "127.0.0.1:8080", "[::1]:8080"
};

// "localhost" and "" mean 127.0.0.1; anything but a numeric address is refused with *why.
std::optional<Endpoint> endpoint(const std::string& host, std::uint16_t port, std::string* why);

// A non-blocking socket connected to `ep` within the budget (ETIME: the budget ran out,
// ECANCELED: `stop`).
runtime::Task<runtime::Result<int>> connect_socket(runtime::Fd& sock, const Endpoint& ep, const RequestBudget& b,
                                                   std::stop_token stop);

// "HTTP/1.1 200 OK" → 200. Anything else is not an HTTP/1.x status line.
std::optional<int> parse_status_line(std::string_view line);

// Bytes from a peer or a child, made safe for one line of an event or a JSON string.
std::string printable(std::string_view raw, std::size_t max);

struct HttpExchange {
  std::optional<int> status;  // set when a status line came back
  std::string error;          // why there is no status: "connect 127.0.0.1:80: Connection refused", ...
};
// Connects to `ep`, sends `request` (a whole HTTP/1.1 message) and reads the status line.
runtime::Task<HttpExchange> http_exchange(const Endpoint& ep, std::string request, std::string where,
                                          const RequestBudget& b, std::stop_token stop);

}  // namespace actors
