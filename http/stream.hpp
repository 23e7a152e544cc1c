#pragma once
// ResponseStream: what a streaming handler writes its body to. The head (status
// and headers) goes out with the first write; each write is one chunk
// (Transfer-Encoding: chunked; for an HTTP/1.0 client, raw bytes until close).
//
//   router.add_stream("GET", "/ticks", [](Request&, ResponseStream& s) -> Task<void> {
//     s.header("Content-Type", "text/plain");
//     while (!s.stop_token().stop_requested())
//       if (!co_await s.write("tick\n")) co_return;   // the client is gone
//   });
//
// Back-pressure: write() completes when the kernel took the bytes, so a slow
// reader slows the writer down (and one stuck longer than write_timeout is
// dropped). The stop token fires when the client disconnects, a write fails, or
// the server stops; the handler should then return promptly.
#include <stop_token>
#include <string>
#include <string_view>

#include "http/message.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace http {

namespace detail {
class Connection;
}

class ResponseStream {
 public:
  ResponseStream(const ResponseStream&) = delete;
  ResponseStream& operator=(const ResponseStream&) = delete;

  // Before the first write only (later calls are ignored).
  void status(int code) { if (!started_) status_ = code; }
  void header(std::string name, std::string value) {
    if (!started_) headers_.set(std::move(name), std::move(value));
  }
  // Answers with a whole response instead of a stream (e.g. 404 for an unknown
  // service); only before the first write. Sent when the handler returns.
  void respond(Response r);

  // One chunk. Empty data is a no-op (an empty chunk would end the body).
  // EPIPE once the client is gone (reset, closed, or the connection was
  // cancelled) or an earlier write failed; ETIME when the client stopped reading
  // for write_timeout. Either way the stream is over.
  runtime::Task<runtime::Result<void>> write(std::string_view data);

  std::stop_token stop_token() const noexcept { return stop_.get_token(); }
  bool started() const noexcept { return started_; }
  bool failed() const noexcept { return failed_; }

 private:
  friend class detail::Connection;
  ResponseStream(detail::Connection& conn, bool head_only, bool chunked)
      : conn_(conn), head_only_(head_only), chunked_(chunked) {}
  void fail() noexcept;
  // Ends the body (the last chunk), or sends the head alone if nothing was written.
  runtime::Task<runtime::Result<void>> finish();
  std::string start();

  detail::Connection& conn_;
  bool head_only_;
  bool chunked_;
  bool started_ = false;
  bool failed_ = false;
  bool has_response_ = false;
  bool keep_alive_ = false;
  int status_ = 200;
  Headers headers_;
  Response response_;
  std::stop_source stop_;
};

}  // namespace http
