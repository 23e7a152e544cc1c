#pragma once
// RequestParser: llhttp driven in steps. It pauses after the header block (so the
// connection can refuse an oversize body or send "100 Continue" before reading
// the body) and after each message (so pipelined requests are handled one at a
// time, in order, with the rest left in the caller's buffer).
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
    error,              // malformed (error_status() says 400 or 413); close after answering
  };
  struct Step {
    Event event;
    std::size_t consumed;  // bytes of the fed data used; the rest is fed again later
  };

  explicit RequestParser(std::size_t max_body_bytes);
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
  static RequestParser& self(llhttp_t* p) { return *static_cast<RequestParser*>(p->data); }

  llhttp_t parser_{};
  llhttp_settings_t settings_{};
  std::size_t max_body_;
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
