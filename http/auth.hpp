#pragma once
// The API's gate: who may call what over TCP, and from which browser origin.
// Runs on every request before routing (Server::set_filter), with the body
// already read so an HMAC signature over it can be checked.
//
//   - the unix socket is trusted through its file permissions: always passes;
//   - CORS: a preflight is answered here; with allowed_origins set, a request
//     (any method) whose Origin is neither the listener itself (the address and
//     scheme the client reached, or localhost on loopback; never the client's
//     Host) nor listed is refused (403); with none set, every origin is allowed;
//   - public: /health, /healthz, /readyz, the dashboard's static shell, whatever
//     the public matcher claims (webhook triggers check their own signatures),
//     and with public_read every GET/HEAD of /v1/* and /metrics that carries no
//     credentials (one that does is judged by them: a wrong key is refused);
//   - everything else needs `Authorization: Bearer KEY` or the canonical HMAC
//     (http/hmac_auth.hpp) made with a key; otherwise 401 saying why. A signature
//     is single-use: a second request with it is refused 401 (replayed_signature),
//     and a full replay cache refuses new signed requests 503 (Bearer unaffected).
//
// Who passed (a public reader, which key, the unix socket) is the request's
// Principal: handlers withhold configuration secrets from public readers by it
// (http/api/disclosure.hpp).
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/hmac_auth.hpp"
#include "http/message.hpp"
#include "http/replay_cache.hpp"

namespace http::auth {

struct Key {
  std::string name;    // for messages and logs; the secret itself is never logged
  std::string secret;
  bool bearer = true;  // false: only signs HMAC requests (DOCKLESS_HMAC_SECRET)
};

struct Policy {
  bool public_read = false;
  // Full origins ("https://ops.example.com", "http://10.0.0.5:8080"), or "*"; empty: any.
  std::vector<std::string> allowed_origins;
};

// Paths another component answers and authenticates itself (webhook triggers).
using PublicMatcher = std::function<bool(std::string_view method, std::string_view path)>;

class Gate {
 public:
  // check() is synchronous on the reactor thread, so a reload swapping these
  // never meets a check half-way.
  void set_keys(std::vector<Key> keys);
  void set_policy(Policy policy);
  void set_public_matcher(PublicMatcher matcher);
  std::size_t key_count() const noexcept { return keys_.size(); }

  // nullopt: let the request through, adding `extra` (CORS headers) to its
  // answer, and saying in *who (when given) who it is. A value: the answer (401,
  // 403, or a preflight's 204).
  std::optional<Response> check(const Request& req, std::int64_t now_unix, Headers& extra,
                                Principal* who = nullptr) const;

 private:
  std::optional<Response> authenticate(const Request& req, std::int64_t now_unix, Principal& who) const;
  bool origin_allowed(std::string_view origin, const Request& req) const;
  std::optional<Response> admit_signature(const hmac_auth::Credentials& creds, bool head_only,
                                          std::int64_t now_unix) const;

  std::vector<Key> keys_;
  Policy policy_;
  // check() is const for its callers; what it records is which signatures were used.
  mutable ReplayCache replay_;
  PublicMatcher public_matcher_;
};

// Paths public whatever the configuration.
bool always_public(std::string_view method, std::string_view path) noexcept;

// The 401 of the gate (with WWW-Authenticate), for a handler refusing a public
// reader what needs a key even under public_read. `reason` is detail.reason.
Response unauthorized(std::string_view reason, std::string_view message);

}  // namespace http::auth
