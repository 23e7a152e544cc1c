#include "http/request_rules.hpp"

#include <array>
#include <cctype>

namespace http {

namespace {

// The methods the server implements; anything else is 501 (RFC 9110 §9.1), before
// routing, so no handler meets a method it never heard of.
constexpr std::array<std::string_view, 7> kMethods = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};

// Fields read as one value by the gate, the API or a webhook check: two copies
// would let a proxy and us each believe a different one.
constexpr std::array<std::string_view, 9> kSingletons = {
    "Host",       "Authorization",   "Content-Type",  "Origin",        "X-Hub-Signature-256",
    "X-GitHub-Delivery", "X-GitHub-Event", "X-Delivery-Id", "Idempotency-Key"};

bool tchar(char c) noexcept {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool starts_with_ci(std::string_view s, std::string_view p) noexcept {
  return s.size() >= p.size() && iequals(s.substr(0, p.size()), p);
}

// "http://authority/path?q" → authority and "/path?q"; nullopt when not absolute-form.
std::optional<std::pair<std::string_view, std::string>> split_absolute(std::string_view target) {
  std::size_t skip = 0;
  if (starts_with_ci(target, "http://")) skip = 7;
  else if (starts_with_ci(target, "https://")) skip = 8;
  else return std::nullopt;
  target.remove_prefix(skip);
  const std::size_t end = target.find_first_of("/?#");
  std::string_view authority = target.substr(0, end);
  const std::string_view tail = end == std::string_view::npos ? std::string_view{} : target.substr(end);
  std::string path;
  if (tail.empty() || tail.front() != '/') path = "/";
  path.append(tail);
  return std::make_pair(authority, std::move(path));
}

}  // namespace

bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s)
    if (!tchar(c)) return false;
  return true;
}

bool valid_host(std::string_view h) noexcept {
  std::string_view host = h;
  std::string_view port;
  if (!h.empty() && h.front() == '[') {
    const auto close = h.find(']');
    if (close == std::string_view::npos) return false;
    host = h.substr(1, close - 1);
    const std::string_view after = h.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return false;
      port = after.substr(1);
    }
    // IPv6address or IPvFuture: hex digits, ':' and '.', or "v..." with unreserved/sub-delims.
    if (host.empty()) return false;
    for (char c : host)
      if (!std::isalnum(static_cast<unsigned char>(c)) &&
          std::string_view(":.-_~!$&'()*+,;=").find(c) == std::string_view::npos)
        return false;
  } else {
    const auto colon = h.find(':');
    if (colon != std::string_view::npos) {
      host = h.substr(0, colon);
      port = h.substr(colon + 1);
    }
    // reg-name: unreserved / pct-encoded / sub-delims (also covers IPv4address).
    for (std::size_t i = 0; i < host.size(); ++i) {
      const char c = host[i];
      if (std::isalnum(static_cast<unsigned char>(c)) ||
          std::string_view("-._~!$&'()*+,;=").find(c) != std::string_view::npos)
        continue;
      if (c == '%' && i + 2 < host.size() && std::isxdigit(static_cast<unsigned char>(host[i + 1])) &&
          std::isxdigit(static_cast<unsigned char>(host[i + 2]))) {
        i += 2;
        continue;
      }
      return false;
    }
  }
  if (port.size() > 5) return false;
  for (char c : port)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

bool well_formed_request_line(std::string_view line) noexcept {
  while (!line.empty() && (line.front() == '\r' || line.front() == '\n')) line.remove_prefix(1);
  const auto eol = line.find('\n');
  if (eol == std::string_view::npos) return false;
  line = line.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return false;
  const auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return false;
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  const bool target_ok = !target.empty() && (target.front() == '/' || target == "*" || split_absolute(target));
  return is_token(method) && target_ok && (version == "HTTP/1.1" || version == "HTTP/1.0");
}

std::optional<HeadRefusal> check_head(Request& req) {
  bool implemented = false;
  for (std::string_view m : kMethods) implemented |= req.method == m;
  if (!implemented) return HeadRefusal{501, "method " + req.method + " is not implemented"};

  // Transfer-Encoding: only chunked, once (RFC 9112 §6.1). A coding we cannot
  // decode must not be taken for a body we understood.
  int chunked = 0;
  for (const auto& [k, v] : req.headers.items()) {
    if (!iequals(k, "Transfer-Encoding")) continue;
    std::string_view rest = v;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string_view coding = trim_ows(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      if (coding.empty()) continue;
      if (!iequals(coding, "chunked"))
        return HeadRefusal{501, "transfer-coding \"" + std::string(coding.substr(0, 64)) + "\" is not implemented"};
      ++chunked;
    }
  }
  if (chunked > 1) return HeadRefusal{400, "chunked applied more than once"};

  for (std::string_view name : kSingletons) {
    std::size_t n = 0;
    for (const auto& item : req.headers.items()) n += iequals(item.first, name) ? 1 : 0;
    if (n > 1) return HeadRefusal{400, "more than one " + std::string(name) + " field"};
  }
  const auto host = req.headers.get("Host");
  if (!host && req.http_major == 1 && req.http_minor >= 1) return HeadRefusal{400, "HTTP/1.1 request without Host"};
  if (host && !valid_host(trim_ows(*host))) return HeadRefusal{400, "invalid Host"};

  // Absolute-form (RFC 9112 §3.2.2): its authority replaces Host; the rest is routed.
  if (auto abs = split_absolute(req.target)) {
    if (abs->first.empty() || !valid_host(abs->first)) return HeadRefusal{400, "invalid authority in the request target"};
    req.target = std::move(abs->second);
  }
  return std::nullopt;
}

}  // namespace http
