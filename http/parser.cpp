#include "http/parser.hpp"

#include <algorithm>
#include <cstring>

#include "http/request_rules.hpp"

namespace http {

namespace {
// What a trailer line costs beyond its name and value (": " and CRLF).
constexpr std::size_t kLineOverhead = 4;
}  // namespace

RequestParser::RequestParser(std::size_t max_body_bytes, std::size_t max_header_bytes)
    : max_body_(max_body_bytes), max_header_(max_header_bytes) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = on_message_begin;
  settings_.on_url = on_url;
  settings_.on_header_field = on_header_field;
  settings_.on_header_value = on_header_value;
  settings_.on_header_value_complete = on_header_value_complete;
  settings_.on_headers_complete = on_headers_complete;
  settings_.on_body = on_body;
  settings_.on_message_complete = on_message_complete;
  settings_.on_chunk_extension_name = on_chunk_extension;
  settings_.on_chunk_extension_value = on_chunk_extension;
  // settings_ is a member: llhttp keeps a pointer to it for the parser's lifetime,
  // which is why this class is neither copyable nor movable.
  llhttp_init(&parser_, HTTP_REQUEST, &settings_);
  parser_.data = this;
}

void RequestParser::next() {
  req_ = Request{};
  user_status_ = 0;
  user_reason_.clear();
  field_.clear();
  value_.clear();
  headers_done_ = message_done_ = has_length_ = chunked_ = keep_alive_ = body_too_large_ = false;
  content_length_ = 0;
  head_bytes_ = extra_bytes_ = 0;
  line_.clear();
  line_complete_ = url_seen_ = method_pending_ = false;
}

int RequestParser::refuse(int status, std::string reason) {
  user_status_ = status;
  user_reason_ = std::move(reason);
  return HPE_USER;
}

bool RequestParser::count_extra(std::size_t n) {
  extra_bytes_ += n;
  return head_bytes_ + extra_bytes_ <= max_header_;
}

void RequestParser::capture_request_line(const char* data, std::size_t len) {
  if (line_complete_ || url_seen_) return;
  const std::size_t room = max_header_ > line_.size() ? max_header_ - line_.size() : 0;
  std::size_t take = std::min(len, room);
  // Leading empty lines are allowed before a request (RFC 9112 §2.2): skip them.
  if (line_.empty())
    while (take > 0 && (*data == '\r' || *data == '\n')) ++data, --take;
  if (const void* nl = std::memchr(data, '\n', take)) {
    take = static_cast<std::size_t>(static_cast<const char*>(nl) - data) + 1;
    line_complete_ = true;
  }
  line_.append(data, take);
}

RequestParser::Step RequestParser::classify_bad_method() {
  // A method of token characters, then printable text to the end of the line: it
  // may still be a request line (501); anything else (a TLS hello) is 400 at once.
  const auto sp = line_.find(' ');
  bool plausible = is_token(std::string_view(line_).substr(0, sp == std::string::npos ? line_.size() : sp));
  for (std::size_t i = sp == std::string::npos ? line_.size() : sp; plausible && i < line_.size(); ++i) {
    const auto c = static_cast<unsigned char>(line_[i]);
    plausible = (c >= 0x20 && c < 0x7f) || c == '\r' || c == '\n';
  }
  if (!plausible) line_complete_ = true;
  if (!line_complete_) {
    if (line_.size() >= max_header_) {
      error_status_ = 431;
      error_reason_ = "request line too long";
      return {Event::error, 0};
    }
    return {Event::need_more, 0};
  }
  method_pending_ = false;
  if (well_formed_request_line(line_)) {
    error_status_ = 501;
    error_reason_ = "method " + line_.substr(0, std::min<std::size_t>(line_.find(' '), 64)) + " is not implemented";
  } else {
    error_status_ = 400;
    error_reason_ = "HPE_INVALID_METHOD: malformed request line";
  }
  return {Event::error, 0};
}

RequestParser::Step RequestParser::feed(const char* data, std::size_t len) {
  if (error_status_) return {Event::error, 0};
  capture_request_line(data, len);
  if (method_pending_) {
    // llhttp already refused this message; only the rest of its request line matters.
    Step s = classify_bad_method();
    if (s.event == Event::need_more) s.consumed = len;
    return s;
  }
  feed_begin_ = data;
  const bool in_head = !headers_done_;
  const llhttp_errno_t rc = llhttp_execute(&parser_, data, len);
  std::size_t consumed = len;
  if (rc == HPE_PAUSED) {
    // Paused by one of our callbacks: error_pos is where parsing stopped, the
    // first byte not yet consumed; execution continues from there after resume.
    consumed = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - data);
  }
  if (consumed > 0) prev_byte_ = data[consumed - 1];
  if (in_head) head_bytes_ += consumed;
  if (rc == HPE_OK) return {Event::need_more, len};
  if (rc == HPE_PAUSED) {
    llhttp_resume(&parser_);
    if (in_head && headers_done_) {
      if (auto refusal = check_head(req_)) {
        error_status_ = refusal->status;
        error_reason_ = std::move(refusal->reason);
        return {Event::error, 0};
      }
    }
    return {message_done_ ? Event::message_complete : Event::headers_complete, consumed};
  }
  if (rc == HPE_INVALID_METHOD) {
    method_pending_ = true;
    Step s = classify_bad_method();
    if (s.event == Event::need_more) s.consumed = len;
    return s;
  }
  if (user_status_) {
    error_status_ = user_status_;
    error_reason_ = user_reason_;
  } else if (body_too_large_) {
    error_status_ = 413;
    error_reason_ = "request body exceeds " + std::to_string(max_body_) + " bytes";
  } else if (rc == HPE_INVALID_TRANSFER_ENCODING) {
    // Reached only when the head passed check_head: a chunked that is not last.
    error_status_ = 400;
    error_reason_ = "HPE_INVALID_TRANSFER_ENCODING: chunked must be the last transfer-coding";
  } else {
    error_status_ = 400;
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
  RequestParser& s = self(p);
  s.url_seen_ = true;
  s.req_.target.append(at, n);
  return 0;
}

// llhttp may hand a field or value over in pieces (split across reads); a value
// is whole only at on_header_value_complete. After the head, these are trailer
// fields: counted against the header limit, never kept.
int RequestParser::on_header_field(llhttp_t* p, const char* at, std::size_t n) {
  RequestParser& s = self(p);
  if (s.headers_done_ && !s.count_extra(n)) return s.refuse(431, "trailer fields exceed the header limit");
  if (s.field_.size() + n > s.max_header_) return s.refuse(431, "header field name too long");
  s.field_.append(at, n);
  return 0;
}

int RequestParser::on_header_value(llhttp_t* p, const char* at, std::size_t n) {
  RequestParser& s = self(p);
  // llhttp hands an obs-fold continuation over as another piece of the value,
  // starting right after the line break (RFC 9112 §5.2: reject it).
  const char before = at > s.feed_begin_ ? at[-1] : s.prev_byte_;
  if (before == '\n') return s.refuse(400, "obs-fold (a header line starting with whitespace)");
  if (s.headers_done_) {
    if (!s.count_extra(n)) return s.refuse(431, "trailer fields exceed the header limit");
    return 0;
  }
  s.value_.append(at, n);
  return 0;
}

int RequestParser::on_header_value_complete(llhttp_t* p) {
  RequestParser& s = self(p);
  // RFC 9112 §5.1: no whitespace between the field name and the colon.
  if (!is_token(s.field_)) return s.refuse(400, "invalid header field name (whitespace before the colon?)");
  if (s.headers_done_) {
    if (!s.count_extra(kLineOverhead)) return s.refuse(431, "trailer fields exceed the header limit");
  } else {
    s.req_.headers.add(std::move(s.field_), std::move(s.value_));
  }
  s.field_.clear();
  s.value_.clear();
  return 0;
}

int RequestParser::on_chunk_extension(llhttp_t* p, const char* /*at*/, std::size_t n) {
  RequestParser& s = self(p);
  if (!s.count_extra(n)) return s.refuse(431, "chunk extensions exceed the header limit");
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
