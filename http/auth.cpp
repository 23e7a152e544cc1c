#include "http/auth.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>

#include "http/crypto.hpp"
#include "http/hmac_auth.hpp"

namespace http::auth {

namespace {

constexpr std::string_view kAllowMethods = "GET, HEAD, POST, PUT, DELETE";
constexpr std::string_view kAllowHeaders = "Authorization, Content-Type, Last-Event-ID";
constexpr std::string_view kMaxAge = "600";

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool read_only(std::string_view method) { return method == "GET" || method == "HEAD"; }

std::string_view without_trailing_slash(std::string_view s) {
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  return s;
}

// "host:port" / "[v6]:port" → host (brackets kept) and port; port empty if absent.
std::pair<std::string_view, std::string_view> split_host_port(std::string_view a) {
  const auto colon = a.rfind(':');
  if (colon == std::string_view::npos || a.find(']', colon) != std::string_view::npos) return {a, {}};
  return {a.substr(0, colon), a.substr(colon + 1)};
}

bool loopback(std::string_view host) { return host.starts_with("127.") || host == "[::1]"; }

// The names this machine gives itself: the Pi opened as http://raspberrypi.local:3080
// (mDNS) or by its bare hostname is the listener, whatever address that reached.
// A rebinding attacker's name is never one of them. Read once: the hostname of a
// running daemon does not change under it in practice, and a restart picks it up.
bool own_name(std::string_view host) {
  static const std::string hostname = [] {
    char buf[256] = {};
    return ::gethostname(buf, sizeof buf - 1) == 0 ? std::string(buf) : std::string();
  }();
  if (hostname.empty() || hostname == "localhost") return false;
  return iequals(host, hostname) || iequals(host, hostname + ".local");
}

// Is `origin` this very listener, as a browser names it? Decided against the
// address the client actually reached and the connection's scheme, never against
// Host: a DNS-rebound name (evil.example → 127.0.0.1) sends a matching Host.
// "localhost" names a loopback listener, the machine's hostname (and its .local)
// any listener; any other name must be listed.
bool same_origin(std::string_view origin, const Request& req) {
  if (req.local.empty()) return false;
  const std::string_view scheme = req.tls ? "https://" : "http://";
  if (origin.size() < scheme.size() || !iequals(origin.substr(0, scheme.size()), scheme)) return false;
  const auto [ohost, oport_raw] = split_host_port(without_trailing_slash(origin.substr(scheme.size())));
  const std::string_view oport = oport_raw.empty() ? (req.tls ? "443" : "80") : oport_raw;
  auto [lhost, lport] = split_host_port(req.local);
  // A dual-stack listener ("::") sees IPv4 clients at "[::ffff:a.b.c.d]"; browsers say "a.b.c.d".
  if (lhost.size() > 9 && iequals(lhost.substr(0, 8), "[::ffff:") && lhost.find('.') != std::string_view::npos)
    lhost = lhost.substr(8, lhost.size() - 9);
  if (oport != lport) return false;
  return iequals(ohost, lhost) || (iequals(ohost, "localhost") && loopback(lhost)) || own_name(ohost);
}

Response forbidden_origin(std::string_view origin) {
  nlohmann::json detail = nlohmann::json::object();
  detail["origin"] = origin;
  detail["hint"] = "add it to [http] allowed_origins";
  return Response::error(403, "origin not allowed: " + std::string(origin), std::move(detail));
}

std::optional<Response> admit(Principal& who, const Key& key) {
  who.access = Principal::Access::key;
  who.key_name = key.name;
  return std::nullopt;
}

void cors_headers(Headers& h, std::string_view origin) {
  h.set("Access-Control-Allow-Origin", std::string(origin));
  h.set("Vary", "Origin");
}

}  // namespace

// One reason code per refusal: clients (and tests) branch on `reason`, people read `error`.
Response unauthorized(std::string_view reason, std::string_view message) {
  nlohmann::json detail = nlohmann::json::object();
  detail["reason"] = reason;
  Response r = Response::error(401, message, std::move(detail));
  r.headers.add("WWW-Authenticate", "Bearer realm=\"dockless\"");
  r.headers.add("WWW-Authenticate", "HMAC-SHA256 realm=\"dockless\"");
  return r;
}

bool always_public(std::string_view method, std::string_view path) noexcept {
  if (path == "/health" || path == "/healthz" || path == "/readyz") return true;
  // The dashboard's shell and assets hold no data; every call they make for
  // data goes through the gate with the key the user typed in.
  return read_only(method) && (path == "/" || path.starts_with("/assets/"));
}

void Gate::set_keys(std::vector<Key> keys) { keys_ = std::move(keys); }
void Gate::set_policy(Policy policy) { policy_ = std::move(policy); }
void Gate::set_public_matcher(PublicMatcher matcher) { public_matcher_ = std::move(matcher); }

// The orchestrator design's rule: no list (or an empty one) admits every origin, since every
// call that acts or reads needs a key a foreign page does not have; a list admits only itself
// (and the listener's own pages).
bool Gate::origin_allowed(std::string_view origin, const Request& req) const {
  if (policy_.allowed_origins.empty() || same_origin(origin, req)) return true;
  const std::string_view bare = without_trailing_slash(origin);
  return std::any_of(policy_.allowed_origins.begin(), policy_.allowed_origins.end(),
                     [&](const std::string& o) { return o == "*" || iequals(without_trailing_slash(o), bare); });
}

std::optional<Response> Gate::check(const Request& req, std::int64_t now_unix, Headers& extra,
                                    Principal* who) const {
  Principal ignored;
  Principal& p = who ? *who : ignored;
  p = Principal{};
  if (req.via_unix) {
    p.access = Principal::Access::local;
    return std::nullopt;
  }

  if (const auto origin = req.headers.get("Origin")) {
    const bool allowed = origin_allowed(*origin, req);
    if (req.method == "OPTIONS" && req.headers.has("Access-Control-Request-Method")) {
      if (!allowed) return forbidden_origin(*origin);
      Response r = Response::text(204, "");
      cors_headers(r.headers, *origin);
      r.header("Access-Control-Allow-Methods", std::string(kAllowMethods));
      r.header("Access-Control-Allow-Headers", std::string(kAllowHeaders));
      r.header("Access-Control-Max-Age", std::string(kMaxAge));
      r.headers.remove("Content-Type");
      return r;
    }
    // Outside a configured list: refused whatever the method, GET included.
    if (!allowed) return forbidden_origin(*origin);
    cors_headers(extra, *origin);
  }

  if (always_public(req.method, req.path)) return std::nullopt;
  if (public_matcher_ && public_matcher_(req.method, req.path)) return std::nullopt;
  // A public read that carries credentials is judged by them: a key holder must be
  // told apart from a reader (?secrets=1), and a wrong key must not pass as one.
  if (policy_.public_read && read_only(req.method) && !req.headers.has("Authorization") &&
      (req.path.starts_with("/v1/") || req.path == "/metrics"))
    return std::nullopt;
  return authenticate(req, now_unix, p);
}

// Only a verified signature is recorded: a forger cannot fill the cache. Before the body
// is read a used signature is already refused (no 100 Continue for a replay).
std::optional<Response> Gate::admit_signature(const hmac_auth::Credentials& creds, bool head_only,
                                              std::int64_t now_unix) const {
  const auto replayed = [] {
    return unauthorized("replayed_signature",
                        "HMAC replayed signature: each signature is accepted once (sign every request afresh)");
  };
  if (head_only) return replay_.seen(creds.signature) ? std::optional<Response>(replayed()) : std::nullopt;
  switch (replay_.admit(creds.signature, creds.timestamp, now_unix)) {
    case ReplayCache::Admit::fresh: return std::nullopt;
    case ReplayCache::Admit::replayed: return replayed();
    case ReplayCache::Admit::full: break;
  }
  nlohmann::json detail = nlohmann::json::object();
  detail["reason"] = "replay_cache_full";
  Response r = Response::error(503, "too many signed requests in the last 10 minutes; retry later or use Bearer",
                               std::move(detail));
  r.headers.set("Retry-After", std::to_string(replay_.retry_after(now_unix)));
  return r;
}

std::optional<Response> Gate::authenticate(const Request& req, std::int64_t now_unix, Principal& who) const {
  const auto header = req.headers.get("Authorization");
  if (!header)
    return unauthorized("missing_key", "missing API key: send \"Authorization: Bearer <key>\" or an "
                                       "HMAC-SHA256 signature");
  const std::string_view value = trim(*header);

  if (starts_with_ci(value, "Bearer ")) {
    const std::string_view token = trim(value.substr(7));
    if (token.empty()) return unauthorized("malformed_header", "malformed Authorization header: empty Bearer key");
    // Every key is compared, a match or not, so the time taken says nothing
    // about which key (or how much of one) matched.
    const Key* match = nullptr;
    for (const Key& k : keys_)
      if (k.bearer && crypto::equal_constant_time(k.secret, token)) match = &k;
    if (match) return admit(who, *match);
    return unauthorized("unknown_key", "unknown API key");
  }

  if (starts_with_ci(value, "HMAC-SHA256 ")) {
    std::string why;
    const auto creds = hmac_auth::parse(value, &why);
    if (!creds) return unauthorized("malformed_header", "malformed HMAC-SHA256 Authorization header: " + why);
    // The window does not depend on the key: checked once, before any HMAC.
    const std::string_view query = hmac_auth::query_of(req.target);
    hmac_auth::Verdict verdict = hmac_auth::Verdict::bad_signature;
    const Key* match = nullptr;
    for (const Key& k : keys_) {
      const auto v = hmac_auth::verify(k.secret, *creds, req.method, req.path, query, req.body, now_unix);
      if (v == hmac_auth::Verdict::stale || v == hmac_auth::Verdict::future ||
          v == hmac_auth::Verdict::query_unsigned) {
        verdict = v;
        break;
      }
      if (v == hmac_auth::Verdict::ok) match = &k;
    }
    if (verdict == hmac_auth::Verdict::stale)
      return unauthorized("stale_timestamp", "HMAC " + std::string(hmac_auth::to_string(verdict)));
    if (verdict == hmac_auth::Verdict::future)
      return unauthorized("future_timestamp", "HMAC " + std::string(hmac_auth::to_string(verdict)));
    if (verdict == hmac_auth::Verdict::query_unsigned)
      return unauthorized("query_unsigned", "HMAC " + std::string(hmac_auth::to_string(verdict)));
    // The signature covers the body: a head alone is judged once the body is read, but a
    // used signature is refused at once.
    if (req.body_pending) return admit_signature(*creds, true, now_unix);
    if (!match) return unauthorized("bad_signature", "HMAC signature does not match any key");
    if (auto refused = admit_signature(*creds, false, now_unix)) return refused;
    return admit(who, *match);
  }

  // The scheme is not echoed: a client sending a bare key would see it back.
  return unauthorized("malformed_header",
                      "malformed Authorization header: unsupported scheme (expected Bearer or HMAC-SHA256)");
}

}  // namespace http::auth
