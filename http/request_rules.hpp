#pragma once
// What a request head must satisfy beyond llhttp's syntax (RFC 9110/9112), checked
// once the head is whole and before anything acts on it: a proxy or a client
// library must never read a request differently from us (smuggling), and nothing
// we do not implement is guessed at.
#include <optional>
#include <string>
#include <string_view>

#include "http/message.hpp"

namespace http {

struct HeadRefusal {
  int status;  // 400 or 501
  std::string reason;
};

// Checks `req` (method, version, headers as llhttp read them) and rewrites an
// absolute-form target ("http://host/path?q") to its origin form ("/path?q").
std::optional<HeadRefusal> check_head(Request& req);

// RFC 9110 §5.1: a field name is a token.
bool is_token(std::string_view s) noexcept;
// RFC 9112 §3.2: Host = uri-host [ ":" port ] (the value without surrounding OWS).
bool valid_host(std::string_view host) noexcept;
// A request line whose method alone is unknown to us: "TOKEN SP target SP HTTP/1.x".
// Such a request is answered 501; anything else malformed is 400.
bool well_formed_request_line(std::string_view line) noexcept;

}  // namespace http
