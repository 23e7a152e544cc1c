#pragma once
// Internal to the http layer: the state the server's actors share, and the
// connection actor. Not part of the public API.
#include <sys/uio.h>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/parser.hpp"
#include "http/server.hpp"
#include "http/transport.hpp"
#include "runtime/channel.hpp"
#include "runtime/fd.hpp"

namespace http::detail {

class Connection;
using Clock = std::chrono::steady_clock;

// Shared by the Server object and every actor it started, so an actor outliving
// the Server (destroyed without stop()) still has valid state to wind down with.
struct Core {
  explicit Core(ServerLimits l) : limits(l) {}
  ServerLimits limits;
  Router router;
  RequestFilter filter;
  ServerStats stats;
  bool stopping = false;
  std::stop_source accept_stop;
  std::vector<Connection*> connections;  // started actors, for stop()
  // Given to TCP connections as they are accepted; null serves plain HTTP.
  std::shared_ptr<const TlsContext> tls;
  std::uint64_t listeners = 0;           // accept actors alive
  // release_listeners(): accept loops hand their socket here instead of closing it.
  bool releasing = false;
  // Set by release_listeners() until resume(): a stop for an upgrade. A connection
  // accepted but not yet asked anything is then answered once before it closes —
  // its client connected while the listener was still ours and must be served.
  bool handing_over = false;
  std::vector<ReleasedListener> released;
  std::uint64_t rejecters = 0;           // 503 actors alive
  std::unordered_map<std::string, std::size_t> per_client;  // source address → open connections (TCP)
  // stop() waits here; every actor ending posts to it (a signal, so try_send).
  runtime::Channel<int> changed{1};

  bool drained() const noexcept {
    return stats.open_connections == 0 && listeners == 0 && rejecters == 0;
  }
  void count_response(int status, bool by_server) {
    ++stats.requests;
    ++stats.responses[status];
    if (by_server) ++stats.rejected[status];
  }
  void kill_all() noexcept;
};

// Every connection op carries `kill` as its stop token: one request cancels
// whatever the actor waits on, and the actor still awaits that op's CQE before
// its fd closes.
class Connection {
 public:
  enum class State { idle, reading, handling, streaming };

  Connection(std::shared_ptr<Core> core, runtime::Fd fd, std::string peer, bool via_unix,
             std::shared_ptr<const TlsContext> tls);
  ~Connection();

  runtime::Task<void> run();

  // stop() began: idle connections end now, streams are asked to end, the rest
  // finish their current request and then close.
  void on_server_stop();
  // Cancels whatever the actor waits on and asks a stream's handler to end.
  void kill() noexcept;

  // Sends every byte of `iov` (looping over partial writes) within write_timeout.
  // MSG_NOSIGNAL (runtime::send) is why this is send and not writev: a write to a
  // reset socket would raise SIGPIPE. `flags` may add MSG_MORE to cork a head.
  runtime::Task<runtime::Result<void>> send_all(std::string_view data, int flags = 0);
  Core& core() noexcept { return *core_; }
  bool client_gone() const noexcept { return client_gone_; }
  bool keep_alive_allowed() const noexcept { return !core_->stopping; }
  bool request_keep_alive() const noexcept { return req_keep_alive_; }

 private:
  enum class Read { data, closed, timeout, failed };
  runtime::Task<Read> read_more(Clock::time_point until);
  runtime::Task<bool> serve_one(RequestParser& parser);
  runtime::Task<bool> dispatch(Request& req);
  runtime::Task<bool> respond(Response r, bool by_server, bool keep_alive);
  runtime::Task<bool> reject(int status, std::string_view message, nlohmann::json detail = nullptr);
  runtime::Task<bool> refuse(Response r);
  void prepare(Request& req);
  bool refused_at_head(Request& req, std::optional<Response>& answer);
  runtime::Task<bool> run_stream(const StreamHandler& h, Request& req, const Headers& extra);
  runtime::Task<void> watch_peer(std::stop_token stop);
  runtime::Task<void> linger_close();

  std::shared_ptr<Core> core_;
  runtime::Fd fd_;
  bool tls_;             // set before transport_ takes the context
  Transport transport_;  // over fd_
  std::string peer_;
  std::string local_;  // our address on a TCP connection, for same-origin checks
  bool via_unix_;
  Clock::time_point accepted_at_;
  State state_ = State::idle;
  std::stop_source kill_;
  std::string in_;          // received, not yet parsed
  std::size_t in_pos_ = 0;  // first unparsed byte of in_
  bool first_request_ = true;
  bool head_only_ = false;
  bool req_keep_alive_ = false;
  bool client_gone_ = false;
  ResponseStream* stream_ = nullptr;
  runtime::Channel<int> watcher_done_{1};
};

// "HTTP/1.1 200 OK\r\nDate: ...\r\n...\r\n\r\n". `framing` replaces the
// Content-Length line ("Transfer-Encoding: chunked\r\n", or "" for a body that
// ends at close); nullptr means Content-Length: `content_length`.
std::string response_head(int status, const Headers& headers, bool keep_alive, const char* framing,
                          std::size_t content_length);

// Actor bodies.
runtime::Task<void> serve_connection(std::shared_ptr<Core> core, runtime::Fd fd, std::string peer,
                                     bool via_unix, std::shared_ptr<const TlsContext> tls);
runtime::Task<void> accept_loop(std::shared_ptr<Core> core, runtime::Fd listen_fd, bool is_unix,
                                std::string unlink_path);
runtime::Task<void> reject_busy(std::shared_ptr<Core> core, runtime::Fd fd, int status);
std::string describe_peer(const sockaddr_storage& addr);

}  // namespace http::detail
