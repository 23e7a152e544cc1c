#include "http/stream.hpp"

#include <cstdio>

#include "http/connection.hpp"

namespace http {

using runtime::Result;
using runtime::Task;

void ResponseStream::respond(Response r) {
  if (started_) return;
  response_ = std::move(r);
  has_response_ = true;
}

void ResponseStream::fail() noexcept {
  failed_ = true;
  stop_.request_stop();
}

// The head, decided once: chunked framing for HTTP/1.1 (the connection may then
// carry another request), a close-delimited body for HTTP/1.0.
std::string ResponseStream::start() {
  started_ = true;
  keep_alive_ = chunked_ && conn_.request_keep_alive() && conn_.keep_alive_allowed();
  conn_.core().count_response(status_, false);
  return detail::response_head(status_, headers_, keep_alive_,
                               chunked_ ? "Transfer-Encoding: chunked\r\n" : "", 0);
}

Task<Result<void>> ResponseStream::write(std::string_view data) {
  if (failed_ || conn_.client_gone()) co_return Result<void>::failure(EPIPE);
  if (head_only_ && started_) co_return Result<void>::failure(ECANCELED);
  std::string out;
  if (!started_) out = start();
  if (head_only_) {
    // HEAD: the head is all the client wants; the handler is told to stop.
    stop_.request_stop();
  } else if (!data.empty()) {
    if (chunked_) {
      char size[24];
      const int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
      out.append(size, static_cast<std::size_t>(n));
      out += data;
      out += "\r\n";
    } else {
      out += data;
    }
  }
  if (out.empty()) co_return Result<void>{};
  const Result<void> sent = co_await conn_.send_all(out);
  if (!sent) {
    fail();
    // ECONNRESET (the client closed with our data unread), EPIPE, and ECANCELED
    // (the connection was killed: client gone, or the drain deadline) all mean
    // the same to a handler: nobody is listening. One code for them.
    const int err = sent.error();
    co_return Result<void>::failure(err == ETIME ? ETIME : EPIPE);
  }
  co_return Result<void>{};
}

Task<Result<void>> ResponseStream::finish() {
  if (failed_) co_return Result<void>::failure(EPIPE);
  std::string out;
  if (!started_) out = start();
  if (chunked_ && !head_only_) out += "0\r\n\r\n";
  if (out.empty()) co_return Result<void>{};
  co_return co_await conn_.send_all(out);
}

}  // namespace http
