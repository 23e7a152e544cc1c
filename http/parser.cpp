#include "http/parser.hpp"

namespace http {

RequestParser::RequestParser(std::size_t max_body_bytes) : max_body_(max_body_bytes) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = on_message_begin;
  settings_.on_url = on_url;
  settings_.on_header_field = on_header_field;
  settings_.on_header_value = on_header_value;
  settings_.on_header_value_complete = on_header_value_complete;
  settings_.on_headers_complete = on_headers_complete;
  settings_.on_body = on_body;
  settings_.on_message_complete = on_message_complete;
  // settings_ is a member: llhttp keeps a pointer to it for the parser's lifetime,
  // which is why this class is neither copyable nor movable.
  llhttp_init(&parser_, HTTP_REQUEST, &settings_);
  parser_.data = this;
}

void RequestParser::next() {
  req_ = Request{};
  field_.clear();
  value_.clear();
  headers_done_ = message_done_ = has_length_ = chunked_ = keep_alive_ = body_too_large_ = false;
  content_length_ = 0;
}

RequestParser::Step RequestParser::feed(const char* data, std::size_t len) {
  if (error_status_) return {Event::error, 0};
  const llhttp_errno_t rc = llhttp_execute(&parser_, data, len);
  if (rc == HPE_OK) return {Event::need_more, len};
  if (rc == HPE_PAUSED) {
    // Paused by one of our callbacks: error_pos is where parsing stopped, the
    // first byte not yet consumed; execution continues from there after resume.
    const auto consumed = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - data);
    llhttp_resume(&parser_);
    return {message_done_ ? Event::message_complete : Event::headers_complete, consumed};
  }
  error_status_ = body_too_large_ ? 413 : 400;
  if (body_too_large_) {
    error_reason_ = "request body exceeds " + std::to_string(max_body_) + " bytes";
  } else {
    const char* why = llhttp_get_error_reason(&parser_);
    error_reason_ = std::string(llhttp_errno_name(rc)) + (why && *why ? std::string(": ") + why : "");
  }
  return {Event::error, 0};
}

int RequestParser::on_message_begin(llhttp_t* p) {
  // A second message in one feed after message_complete cannot happen (we pause),
  // so this always starts the Request prepared by next().
  (void)p;
  return 0;
}

int RequestParser::on_url(llhttp_t* p, const char* at, std::size_t n) {
  self(p).req_.target.append(at, n);
  return 0;
}

// llhttp may hand a field or value over in pieces (split across reads); a value
// is whole only at on_header_value_complete.
int RequestParser::on_header_field(llhttp_t* p, const char* at, std::size_t n) {
  self(p).field_.append(at, n);
  return 0;
}

int RequestParser::on_header_value(llhttp_t* p, const char* at, std::size_t n) {
  self(p).value_.append(at, n);
  return 0;
}

int RequestParser::on_header_value_complete(llhttp_t* p) {
  RequestParser& s = self(p);
  s.req_.headers.add(std::move(s.field_), std::move(s.value_));
  s.field_.clear();
  s.value_.clear();
  return 0;
}

int RequestParser::on_headers_complete(llhttp_t* p) {
  RequestParser& s = self(p);
  s.headers_done_ = true;
  s.req_.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
  s.req_.http_major = p->http_major;
  s.req_.http_minor = p->http_minor;
  s.has_length_ = (p->flags & F_CONTENT_LENGTH) != 0;
  s.chunked_ = (p->flags & F_CHUNKED) != 0;
  s.content_length_ = s.has_length_ ? p->content_length : 0;
  return HPE_PAUSED;
}

int RequestParser::on_body(llhttp_t* p, const char* at, std::size_t n) {
  RequestParser& s = self(p);
  // Content-Length bodies were checked against the limit before any body byte was
  // read; this catches chunked bodies, whose size is known only as they arrive.
  if (s.req_.body.size() + n > s.max_body_) {
    s.body_too_large_ = true;
    return HPE_USER;
  }
  s.req_.body.append(at, n);
  return 0;
}

int RequestParser::on_message_complete(llhttp_t* p) {
  RequestParser& s = self(p);
  s.message_done_ = true;
  s.keep_alive_ = llhttp_should_keep_alive(p) != 0;
  return HPE_PAUSED;
}

}  // namespace http
