// The connection actor: one per client, strictly sequential. It parses one
// request, answers it, then parses the next, so pipelined requests are answered
// in the order they came without any queue. Every op on the socket carries the
// connection's kill token and a deadline, and each is awaited to its CQE before
// the Fd closes (the Fd is the last member destroyed with the frame).
#include "http/connection.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>

#include "http/url.hpp"
#include "runtime/ops_net.hpp"
#include "runtime/ops_wait.hpp"

namespace http::detail {

using namespace std::chrono_literals;
using runtime::Result;
using runtime::Task;

namespace {
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::size_t kCopyBodyLimit = 16 * 1024;
// After an error answer we read (and drop) what the client still sends for a
// while: closing with unread input makes the kernel send RST, which can destroy
// our answer in the client's receive queue before it reads it.
constexpr auto kLingerTime = 1s;
constexpr std::size_t kLingerBytes = 1024 * 1024;

runtime::Duration until_now(Clock::time_point until) {
  return std::chrono::duration_cast<runtime::Duration>(until - Clock::now());
}

// JSON details built outside coroutines: GCC 12 miscompiles braced initializer
// lists holding string literals in a coroutine body ("array used as initializer").
nlohmann::json detail_of(std::string_view k1, nlohmann::json v1) { return {{k1, std::move(v1)}}; }
nlohmann::json detail_of(std::string_view k1, nlohmann::json v1, std::string_view k2, nlohmann::json v2) {
  return {{k1, std::move(v1)}, {k2, std::move(v2)}};
}

// The parser's refusals, in words for the answer's "error".
std::string_view refusal_message(int status) {
  switch (status) {
    case 413: return "request body too large";
    case 431: return "request header fields too large";
    case 501: return "not implemented";
    default: return "malformed request";
  }
}

// A header value must not smuggle a line break into the head.
void append_clean(std::string& out, std::string_view s) {
  for (char c : s) out += (c == '\r' || c == '\n') ? ' ' : c;
}
}  // namespace

void Core::kill_all() noexcept {
  for (Connection* c : connections) c->kill();
}

std::string response_head(int status, const Headers& headers, bool keep_alive, const char* framing,
                          std::size_t content_length) {
  std::string s;
  s.reserve(256);
  s += "HTTP/1.1 ";
  s += std::to_string(status);
  s += ' ';
  s += status_reason(status);
  s += "\r\nDate: ";
  s += http_date();
  s += "\r\n";
  for (const auto& [k, v] : headers.items()) {
    // Framing and connection headers are the server's to decide; a handler's
    // copy of them could contradict the body actually sent.
    if (iequals(k, "Content-Length") || iequals(k, "Transfer-Encoding") ||
        iequals(k, "Connection") || iequals(k, "Date"))
      continue;
    append_clean(s, k);
    s += ": ";
    append_clean(s, v);
    s += "\r\n";
  }
  if (framing) {
    s += framing;
  } else if (status_has_body(status)) {
    s += "Content-Length: ";
    s += std::to_string(content_length);
    s += "\r\n";
  }
  s += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  return s;
}

Connection::Connection(std::shared_ptr<Core> core, runtime::Fd fd, std::string peer, bool via_unix,
                       std::shared_ptr<const TlsContext> tls)
    : core_(std::move(core)), fd_(std::move(fd)), tls_(tls != nullptr),
      transport_(fd_.get(), std::move(tls)), peer_(std::move(peer)), via_unix_(via_unix),
      accepted_at_(Clock::now()) {
  core_->connections.push_back(this);
  if (!via_unix_) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0) local_ = describe_peer(addr);
  }
}

Connection::~Connection() { std::erase(core_->connections, this); }

void Connection::kill() noexcept {
  kill_.request_stop();
  if (stream_) stream_->stop_.request_stop();
}

void Connection::on_server_stop() {
  if (state_ == State::idle && !(core_->handing_over && first_request_)) kill();
  else if (stream_) stream_->stop_.request_stop();
  // reading/handling: the request in progress is answered (with Connection:
  // close) unless the drain deadline kills it first.
}

Task<Connection::Read> Connection::read_more(Clock::time_point until) {
  const auto left = until_now(until);
  if (left <= runtime::Duration::zero()) co_return Read::timeout;
  if (in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  } else if (in_pos_ >= kReadChunk) {
    in_.erase(0, in_pos_);
    in_pos_ = 0;
  }
  const std::size_t old = in_.size();
  in_.resize(old + kReadChunk);
  std::span<std::byte> buf(reinterpret_cast<std::byte*>(in_.data() + old), kReadChunk);
  Result<int> r = co_await transport_.recv(buf, left, kill_.get_token());
  in_.resize(old + (r.ok() ? static_cast<std::size_t>(*r) : 0));
  if (!r) co_return r.error() == ETIME ? Read::timeout : Read::failed;
  if (*r == 0) co_return Read::closed;
  core_->stats.bytes_in += static_cast<std::uint64_t>(*r);
  co_return Read::data;
}

Task<Result<void>> Connection::send_all(std::string_view data, int flags) {
  while (!data.empty()) {
    Result<int> r = co_await transport_.send(data, flags, core_->limits.write_timeout, kill_.get_token());
    if (!r) {
      if (r.error() == ETIME) ++core_->stats.timeouts;
      co_return Result<void>::failure(r.error());
    }
    if (*r == 0) co_return Result<void>::failure(EPIPE);
    core_->stats.bytes_out += static_cast<std::uint64_t>(*r);
    data.remove_prefix(static_cast<std::size_t>(*r));
  }
  co_return Result<void>{};
}

Task<void> Connection::linger_close() {
  // FIN first: the client sees our answer followed by end of stream.
  co_await transport_.shutdown_write(kLingerTime, kill_.get_token());
  const auto until = Clock::now() + kLingerTime;
  std::size_t drained = 0;
  while (drained < kLingerBytes) {
    const auto left = until_now(until);
    if (left <= runtime::Duration::zero()) break;
    in_.resize(kReadChunk);
    std::span<std::byte> buf(reinterpret_cast<std::byte*>(in_.data()), kReadChunk);
    Result<int> r = co_await runtime::recv(fd_.get(), buf).deadline(left).stop_on(kill_.get_token());
    if (!r || *r == 0) break;
    drained += static_cast<std::size_t>(*r);
  }
  in_.clear();
  in_pos_ = 0;
}

Task<bool> Connection::respond(Response r, bool by_server, bool keep_alive) {
  keep_alive = keep_alive && keep_alive_allowed() && !r.headers.has_token("Connection", "close");
  core_->count_response(r.status, by_server);
  const bool has_body = status_has_body(r.status);
  const std::string_view body = r.payload();
  std::string head = response_head(r.status, r.headers, keep_alive, nullptr, body.size());
  const bool send_body = has_body && !head_only_ && !body.empty();
  Result<void> sent;
  if (send_body && body.size() <= kCopyBodyLimit) {
    // One send for the common small answer: copying a few KiB costs less than a
    // second trip through the ring.
    head += body;
    sent = co_await send_all(head);
  } else {
    // MSG_MORE corks the head so head and body leave in full segments together.
    sent = co_await send_all(head, send_body ? MSG_MORE : 0);
    if (sent && send_body) sent = co_await send_all(body);
  }
  co_return sent.ok() && keep_alive;
}

Task<bool> Connection::reject(int status, std::string_view message, nlohmann::json detail) {
  co_return co_await refuse(Response::error(status, message, std::move(detail)));
}

Task<bool> Connection::refuse(Response r) {
  (void)co_await respond(std::move(r), true, false);
  co_await linger_close();
  co_return false;
}

void Connection::prepare(Request& req) {
  req.path = req.target.substr(0, req.target.find('?'));
  req.peer = peer_;
  req.via_unix = via_unix_;
  req.local = local_;
  req.tls = tls_;
  req.stop = kill_.get_token();
}

// Before "100 Continue": a request the filter already refuses on its head alone
// (no key, an unknown key, a foreign origin) is answered now, so the client never
// sends a body that would only be dropped.
bool Connection::refused_at_head(Request& req, std::optional<Response>& answer) {
  if (!core_->filter || req.path.empty() || req.path.front() != '/') return false;
  Headers ignored;
  req.body_pending = true;
  answer = core_->filter(req, ignored);
  req.body_pending = false;
  return answer && (answer->status == 401 || answer->status == 403);
}

Task<void> Connection::run() {
  RequestParser parser(core_->limits.max_body_bytes, core_->limits.max_header_bytes);
  // serve_one itself ends an idle connection once the server stops.
  while (co_await serve_one(parser)) parser.next();
  // An orderly TLS close, so the client can tell our close from a truncation.
  if (!client_gone_ && !kill_.stop_requested()) co_await transport_.close_notify(kLingerTime, kill_.get_token());
}

// One request: wait for it, read its head, its body, answer. Returns whether the
// connection stays open for another.
Task<bool> Connection::serve_one(RequestParser& parser) {
  const ServerLimits& lim = core_->limits;
  head_only_ = false;
  // Phase 1: the first byte. An idle keep-alive connection is ended quietly.
  if (in_pos_ == in_.size()) {
    state_ = State::idle;
    if (core_->stopping && !(core_->handing_over && first_request_)) co_return false;
    const auto until = first_request_ ? accepted_at_ + lim.header_timeout : Clock::now() + lim.idle_timeout;
    const Read r = co_await read_more(until);
    if (r == Read::timeout) ++core_->stats.timeouts;
    if (r != Read::data) co_return false;
  }
  // The header deadline counts from accept for the first request, so a client
  // trickling bytes cannot stretch it.
  const auto header_until = (first_request_ ? accepted_at_ : Clock::now()) + lim.header_timeout;
  first_request_ = false;
  state_ = State::reading;

  // Phase 2: request line and headers, bounded in bytes and time.
  std::size_t header_bytes = 0;
  for (;;) {
    const RequestParser::Step step = parser.feed(in_.data() + in_pos_, in_.size() - in_pos_);
    in_pos_ += step.consumed;
    header_bytes += step.consumed;
    if (header_bytes > lim.max_header_bytes)
      co_return co_await reject(431, "request header fields too large", detail_of("limit", lim.max_header_bytes));
    if (step.event == RequestParser::Event::error)
      co_return co_await reject(parser.error_status(), refusal_message(parser.error_status()), parser.error_reason());
    if (step.event != RequestParser::Event::need_more) break;
    const Read r = co_await read_more(header_until);
    if (r == Read::timeout) {
      ++core_->stats.timeouts;
      co_return co_await reject(408, "timed out reading the request head");
    }
    if (r != Read::data) co_return false;
  }

  // Phase 3: the body. A declared oversize body is refused before it is read.
  Request& req = parser.request();
  prepare(req);
  head_only_ = req.method == "HEAD";
  req.pinned = core_->router.pin(req.target);
  if (parser.has_content_length() && parser.content_length() > lim.max_body_bytes)
    co_return co_await reject(413, "request body too large",
                              detail_of("limit", lim.max_body_bytes, "content_length", parser.content_length()));
  const bool expects_body = parser.chunked() || parser.content_length() > 0;
  if (expects_body && req.http_minor >= 1 && in_pos_ == in_.size() &&
      req.headers.has_token("Expect", "100-continue")) {
    std::optional<Response> early;
    if (refused_at_head(req, early)) co_return co_await refuse(std::move(*early));
    static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
    const Result<void> sent = co_await send_all(k100);
    if (!sent) co_return false;
  }
  const auto body_until = Clock::now() + lim.body_timeout;
  for (;;) {
    const RequestParser::Step step = parser.feed(in_.data() + in_pos_, in_.size() - in_pos_);
    in_pos_ += step.consumed;
    if (step.event == RequestParser::Event::error) {
      if (parser.error_status() == 413)
        co_return co_await reject(413, "request body too large", detail_of("limit", lim.max_body_bytes));
      co_return co_await reject(parser.error_status(), refusal_message(parser.error_status()), parser.error_reason());
    }
    if (step.event == RequestParser::Event::message_complete) break;
    const Read r = co_await read_more(body_until);
    if (r == Read::timeout) {
      ++core_->stats.timeouts;
      co_return co_await reject(408, "timed out reading the request body");
    }
    if (r != Read::data) co_return false;
  }
  req_keep_alive_ = parser.keep_alive();

  // Phase 4: route and answer.
  state_ = State::handling;
  const bool keep = co_await dispatch(req);
  state_ = State::idle;
  co_return keep;
}

Task<bool> Connection::dispatch(Request& req) {
  const auto q = req.target.find('?');
  if (req.path.empty() || req.path.front() != '/')
    co_return co_await respond(Response::error(400, "request target must be an absolute path", req.target),
                               true, req_keep_alive_);
  if (q != std::string::npos) {
    auto query = parse_query(std::string_view(req.target).substr(q + 1));
    if (!query)
      co_return co_await respond(Response::error(400, "malformed query string"), true, req_keep_alive_);
    req.query = std::move(*query);
  }

  // The filter (auth, CORS) sees the request before the router does, so an
  // unauthenticated client learns nothing about which routes exist.
  Headers extra;
  if (core_->filter) {
    std::optional<Response> answer = core_->filter(req, extra);
    if (answer) co_return co_await respond(std::move(*answer), true, req_keep_alive_);
  }

  // Copies: a handler may register routes, which would move the router's vector.
  Handler h;
  if (req.pinned) {
    // A delegate (webhook triggers) claimed the request at head time.
    h = core_->router.delegate_handler();
  } else {
    Router::Match m = core_->router.match(req.method, req.path);
    switch (m.kind) {
      case Router::Match::Kind::not_found:
        co_return co_await respond(
            Response::error(404, "not found", detail_of("method", req.method, "path", req.path)), true,
            req_keep_alive_);
      case Router::Match::Kind::bad_path:
        co_return co_await respond(Response::error(400, "malformed path", req.path), true, req_keep_alive_);
      case Router::Match::Kind::method_not_allowed: {
        Response r = Response::error(405, "method not allowed", detail_of("method", req.method, "allow", m.allow));
        r.header("Allow", m.allow);
        co_return co_await respond(std::move(r), true, req_keep_alive_);
      }
      case Router::Match::Kind::found:
        break;
    }
    req.params = std::move(m.params);
    if (m.route->stream_handler) {
      StreamHandler sh = m.route->stream_handler;
      co_return co_await run_stream(sh, req, extra);
    }
    h = m.route->handler;
  }
  Response resp;
  bool failed = false;
  try {
    resp = co_await h(req);
  } catch (const std::exception& e) {
    resp = Response::error(500, "internal error", e.what());
    failed = true;
  } catch (...) {
    resp = Response::error(500, "internal error");
    failed = true;
  }
  for (const auto& [k, v] : extra.items()) resp.headers.set(k, v);
  co_return co_await respond(std::move(resp), failed, req_keep_alive_);
}

// POLLRDHUP: the peer closed (or shut down its sending side). Polling, unlike a
// pending recv, leaves any pipelined request bytes in the socket for later, and
// needs no buffer. A client that half-closes after its request and still reads
// (`nc -N`) is taken for gone during a stream; HTTP clients do not do that.
Task<void> Connection::watch_peer(std::stop_token stop) {
  Result<int> r = co_await runtime::poll(fd_.get(), POLLRDHUP).stop_on(std::move(stop));
  if (r.ok()) {
    client_gone_ = true;
    if (stream_) stream_->fail();
    kill_.request_stop();
  }
  watcher_done_.try_send(0);
}

Task<bool> Connection::run_stream(const StreamHandler& h, Request& req, const Headers& extra) {
  const bool chunked = req.http_major > 1 || (req.http_major == 1 && req.http_minor >= 1);
  ResponseStream stream(*this, head_only_, chunked);
  for (const auto& [k, v] : extra.items()) stream.header(k, v);
  stream_ = &stream;
  state_ = State::streaming;
  ++core_->stats.open_streams;
  if (core_->stopping || kill_.stop_requested()) stream.stop_.request_stop();
  std::stop_source watch_stop;
  runtime::spawn(watch_peer(watch_stop.get_token()), "http-watch-peer");

  std::string failure;
  bool threw = false;
  try {
    co_await h(req, stream);
  } catch (const std::exception& e) {
    threw = true;
    failure = e.what();
  } catch (...) {
    threw = true;
  }
  // The watcher must be gone before this frame (and the fd) can be.
  watch_stop.request_stop();
  (void)co_await watcher_done_.recv();
  stream_ = nullptr;
  --core_->stats.open_streams;
  state_ = State::handling;

  if (threw && !stream.started())
    co_return co_await respond(Response::error(500, "internal error", failure), true, req_keep_alive_);
  if (stream.has_response_ && !stream.started()) {
    for (const auto& [k, v] : extra.items()) stream.response_.headers.set(k, v);
    co_return co_await respond(std::move(stream.response_), false, req_keep_alive_);
  }
  // A stream that failed or threw midway cannot be finished honestly: closing
  // without the last chunk tells the client the body is incomplete.
  if (threw || stream.failed() || client_gone_) co_return false;
  const Result<void> done = co_await stream.finish();
  co_return done.ok() && stream.keep_alive_;
}

Task<void> serve_connection(std::shared_ptr<Core> core, runtime::Fd fd, std::string peer, bool via_unix,
                            std::shared_ptr<const TlsContext> tls) {
  std::exception_ptr failure;
  {
    Connection c(core, std::move(fd), std::move(peer), via_unix, std::move(tls));
    try {
      co_await c.run();
    } catch (...) {
      failure = std::current_exception();
    }
  }  // the fd closes here, every op on it completed
  --core->stats.open_connections;
  core->changed.try_send(0);
  if (failure) std::rethrow_exception(failure);
}

}  // namespace http::detail
