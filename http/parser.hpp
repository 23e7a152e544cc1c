#pragma once
// RequestParser: llhttp driven in steps. It pauses after the header block (so the
// connection can refuse an oversize body or send "100 Continue" before reading
// the body) and after each message (so pipelined requests are handled one at a
// time, in order, with the rest left in the caller's buffer).
//
// Trailer fields and chunk extensions count against the header limit (431) and
// are dropped: nothing after the head is ever read as a request header.
#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "http/message.hpp"

namespace http {

class RequestParser {
 public:
  enum class Event {
    need_more,          // everything fed was consumed; feed more
    headers_complete,   // request() has method, target, headers; the body follows
    message_complete,   // request() is whole
    error,              // refused (error_status(): 400, 413, 431 or 501); close after answering
  };
  struct Step {
    Event event;
    std::size_t consumed;  // bytes of the fed data used; the rest is fed again later
  };

  explicit RequestParser(std::size_t max_body_bytes, std::size_t max_header_bytes = 16 * 1024);
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  Step feed(const char* data, std::size_t len);

  Request& request() noexcept { return req_; }
  // Starts the next message (after message_complete) with an empty Request.
  void next();

  bool headers_done() const noexcept { return headers_done_; }
  // From the header block: Content-Length when the request has one.
  bool has_content_length() const noexcept { return has_length_; }
  std::uint64_t content_length() const noexcept { return content_length_; }
  bool chunked() const noexcept { return chunked_; }
  // After message_complete: may another request follow on this connection?
  // (HTTP/1.1 without "Connection: close", or HTTP/1.0 with keep-alive.)
  bool keep_alive() const noexcept { return keep_alive_; }

  int error_status() const noexcept { return error_status_; }
  const std::string& error_reason() const noexcept { return error_reason_; }

 private:
  static int on_message_begin(llhttp_t* p);
  static int on_url(llhttp_t* p, const char* at, std::size_t n);
  static int on_header_field(llhttp_t* p, const char* at, std::size_t n);
  static int on_header_value(llhttp_t* p, const char* at, std::size_t n);
  static int on_header_value_complete(llhttp_t* p);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, std::size_t n);
  static int on_message_complete(llhttp_t* p);
  static int on_chunk_extension(llhttp_t* p, const char* at, std::size_t n);
  int refuse(int status, std::string reason);
  bool count_extra(std::size_t n);
  void capture_request_line(const char* data, std::size_t len);
  Step classify_bad_method();
  static RequestParser& self(llhttp_t* p) { return *static_cast<RequestParser*>(p->data); }

  llhttp_t parser_{};
  llhttp_settings_t settings_{};
  std::size_t max_body_;
  std::size_t max_header_;
  std::size_t head_bytes_ = 0;   // consumed before the end of the head
  std::size_t extra_bytes_ = 0;  // trailer fields and chunk extensions
  // The current feed's first byte and the byte before it: a header value piece
  // that starts right after a line break is an obs-fold.
  const char* feed_begin_ = nullptr;
  char prev_byte_ = '\n';
  // The request line as received, until its end: llhttp stops at the first byte of
  // an unknown method, and only the whole line tells 501 from 400.
  std::string line_;
  bool line_complete_ = false;
  bool url_seen_ = false;
  bool method_pending_ = false;
  int user_status_ = 0;  // set by a callback refusing the request (HPE_USER)
  std::string user_reason_;
  Request req_;
  std::string field_, value_;
  bool headers_done_ = false;
  bool message_done_ = false;
  bool has_length_ = false;
  bool chunked_ = false;
  bool keep_alive_ = false;
  bool body_too_large_ = false;
  std::uint64_t content_length_ = 0;
  int error_status_ = 0;
  std::string error_reason_;
};

}  // namespace http
