#pragma once
// http::Server: listener actors (one per listening socket) and one connection
// actor per client, all on the thread's reactor. HTTP/1.1 with keep-alive,
// pipelining (answered in order), chunked request bodies, Expect: 100-continue,
// Content-Length and chunked streaming responses.
//
// Over the connection cap a client is accepted, answered 503 and closed, so it
// gets an answer it can act on (retry later) instead of a silent SYN backlog.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http/router.hpp"
#include "http/stream.hpp"
#include "http/tls.hpp"
#include "runtime/fd.hpp"
#include "runtime/io_op.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace http {

struct ServerLimits {
  std::size_t max_header_bytes = 16 * 1024;       // request line + headers; over → 431
  std::size_t max_body_bytes = 10 * 1024 * 1024;  // over → 413 (before reading it, when declared)
  std::chrono::milliseconds header_timeout{10'000};  // first byte → end of headers
  std::chrono::milliseconds body_timeout{30'000};    // end of headers → end of body
  std::chrono::milliseconds idle_timeout{60'000};    // keep-alive wait for the next request
  std::chrono::milliseconds write_timeout{30'000};   // one send making no progress
  std::chrono::milliseconds drain_timeout{10'000};   // stop(): in-flight requests get this long
  std::size_t max_connections = 512;                 // beyond → 503 and close
  // Per source address (TCP; loopback included): beyond → 429 and close, so one
  // client cannot take every connection slot. 0 = no per-client cap.
  std::size_t max_connections_per_client = 64;
};

struct ServerStats {
  std::uint64_t open_connections = 0;  // gauge: connection actors alive
  std::uint64_t open_streams = 0;      // gauge: streamed responses in progress
  std::uint64_t accepted = 0;          // connections accepted (also those refused with 503)
  std::uint64_t requests = 0;          // requests answered (by a handler or by the server)
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t timeouts = 0;          // clients dropped by a header/body/idle/write deadline
  std::map<int, std::uint64_t> responses;  // status → count, every response sent
  std::map<int, std::uint64_t> rejected;   // status → count, answered by the server itself
                                           // (400, 401, 403, 404, 405, 408, 413, 429, 431, 500, 503)
};

// Runs on every request before routing, with its body read. nullopt lets the
// request through, `extra` headers added to its answer; a Response answers it
// instead (counted as answered by the server). The API's auth gate is one: it
// records who is asking in Request::principal for the handlers.
using RequestFilter = std::function<std::optional<Response>(Request&, Headers& extra)>;

namespace detail {
struct Core;
}

// A listening socket taken out of a server that keeps it open (the upgrade hands it
// to the next image); `unix_path` is the file a unix socket was bound to, if ours.
struct ReleasedListener {
  runtime::Fd fd;
  std::string unix_path;
};

class Server {
 public:
  explicit Server(ServerLimits limits = {});
  // Without a prior stop(): cancels everything at once. The actors share the
  // server's state, so they wind down safely after this object is gone.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Register routes before or while serving (routes are read per request).
  Router& router() noexcept;
  void set_filter(RequestFilter filter);

  // Binds and listens; starts an accept actor on the current reactor. Returns the
  // bound port (useful with port 0). `host` is a numeric IPv4 or IPv6 address
  // ("127.0.0.1", "::1", "[::1]", "0.0.0.0", "::"). Errors are errno values.
  runtime::Result<std::uint16_t> listen_tcp(const std::string& host, std::uint16_t port);
  // Binds a unix stream socket at `path` with permissions `mode`. A stale socket
  // file (nobody accepting) is removed first; a live one is EADDRINUSE, and a
  // non-socket file there is EEXIST. The file is removed again by stop().
  runtime::Result<void> listen_unix(const std::string& path, mode_t mode = 0660);
  // Serves an already listening socket (systemd socket activation: fd 3...).
  // Takes ownership of `fd` (closed on failure too). Never unlinks its path.
  runtime::Result<void> adopt_listener(int fd);

  // The upgrade: every accept loop stops (its in-flight accept is cancelled and
  // awaited, so no connection is accepted and then lost) and gives its socket back
  // open, its unix path not unlinked. Connections in the backlog wait there.
  runtime::Task<std::vector<ReleasedListener>> release_listeners();
  // After a stop() (or release_listeners()) whose purpose fell through (a failed
  // exec): serve again, on the released sockets.
  void resume(std::vector<ReleasedListener> listeners);

  // Stops accepting, ends idle keep-alive connections and streams at once, lets
  // in-flight requests finish until `drain` has passed, then cancels the rest.
  // Returns when every actor of this server has ended and every fd is closed.
  runtime::Task<void> stop(std::chrono::milliseconds drain);
  runtime::Task<void> stop();

  // HTTPS on the TCP listeners (the unix socket stays plain): connections
  // accepted from now on use `tls`; open ones keep the context they started
  // with. Null: plain HTTP for new connections.
  void set_tls(std::shared_ptr<const TlsContext> tls) noexcept;
  const std::shared_ptr<const TlsContext>& tls() const noexcept;

  const ServerStats& stats() const noexcept;
  const ServerLimits& limits() const noexcept;

 private:
  std::shared_ptr<detail::Core> core_;
};

}  // namespace http
