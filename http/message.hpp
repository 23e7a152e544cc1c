#pragma once
// Request and Response: plain values handed between the connection actor and the
// handlers. Nothing here touches a socket.
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace http {

// Header names compare case-insensitively (RFC 9110 §5.1); order and repeats are
// kept, because a repeated header is a list and a proxy may care about order.
class Headers {
 public:
  void add(std::string name, std::string value) { items_.emplace_back(std::move(name), std::move(value)); }
  // Replaces every existing field of that name.
  void set(std::string name, std::string value);
  void remove(std::string_view name);
  // The first field of that name.
  std::optional<std::string_view> get(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }
  // Does a comma-separated list header hold `token` (case-insensitive)?
  bool has_token(std::string_view name, std::string_view token) const;

  const std::vector<std::pair<std::string, std::string>>& items() const noexcept { return items_; }
  std::size_t size() const noexcept { return items_.size(); }
  void clear() noexcept { items_.clear(); }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

bool iequals(std::string_view a, std::string_view b) noexcept;

// Who is asking, as the auth gate decided before routing. Handlers choose what to
// show by this and never read Authorization themselves: one place judges credentials.
struct Principal {
  enum class Access : std::uint8_t {
    reader,  // no credentials: public_read, or a path that is always public
    key,     // a valid API key (Bearer or HMAC): `key_name` says which
    local,   // the unix socket, trusted through its file permissions
  };
  // The least trust until the gate says otherwise: a request that never met the
  // gate sees only what a public reader sees.
  Access access = Access::reader;
  std::string key_name;  // the key's name from the configuration, never the key

  bool trusted() const noexcept { return access != Access::reader; }
};

struct Request {
  std::string method;  // "GET", "POST", ... as llhttp names it
  std::string target;  // the raw request-target: path plus "?query"
  std::string path;    // raw (still percent-encoded) path, without the query
  std::map<std::string, std::string> query;   // percent-decoded; a repeated key keeps the last value
  std::map<std::string, std::string> params;  // `{name}` captures from the route, decoded
  Headers headers;
  std::string body;
  int http_major = 1;
  int http_minor = 1;
  std::string peer;        // "127.0.0.1:54321", "[::1]:54321" or "unix"
  bool via_unix = false;   // came over the unix socket: trusted by file permissions
  // The listener's side of the TCP connection ("127.0.0.1:3080", "[::1]:3080") and
  // its scheme: what same-origin checks compare with, never the client's Host.
  std::string local;
  bool tls = false;
  // Set while a filter sees only the head (before "100 Continue"): whatever needs
  // the body (an HMAC signature) is judged later, when the body is there.
  bool body_pending = false;
  // Fires when the server is shut down hard (drain deadline passed) or the client
  // is gone while a streamed response is being written.
  std::stop_token stop;
  // Set by a Router::Delegate when the head was read: the version of its routes that judges
  // this request, even if they are replaced while the body is still arriving.
  std::shared_ptr<const void> pinned;
  // Set by the server's filter (the auth gate) before any handler runs.
  Principal principal;

  std::string_view param(const std::string& name) const;
  std::optional<std::string_view> query_param(const std::string& name) const;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  // A body shared with a cache, sent instead of `body` when set: a large answer that
  // many clients poll is then neither rebuilt nor copied per request.
  std::shared_ptr<const std::string> shared_body;

  std::string_view payload() const noexcept { return shared_body ? std::string_view(*shared_body) : body; }

  static Response json(int status, const nlohmann::json& value);
  static Response text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
  // The one error shape of the API: {"error": message, "detail": detail}.
  static Response error(int status, std::string_view message, nlohmann::json detail = nullptr);
  Response& header(std::string name, std::string value) {
    headers.set(std::move(name), std::move(value));
    return *this;
  }
};

std::string_view status_reason(int status) noexcept;
// RFC 9110 IMF-fixdate of the current second, cached per second.
const std::string& http_date();
// 1xx, 204 and 304 responses carry no body and no Content-Length.
inline bool status_has_body(int status) noexcept { return status >= 200 && status != 204 && status != 304; }

}  // namespace http
