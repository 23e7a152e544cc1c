#include "http/webhook.hpp"

#include <charconv>

#include "http/crypto.hpp"
#include "http/hmac_auth.hpp"

namespace http::webhook {
namespace {

Verdict refuse(int status, std::string reason) {
  Verdict v;
  v.status = status;
  v.reason = std::move(reason);
  return v;
}

std::string header(const Request& req, std::string_view name) {
  auto v = req.headers.get(name);
  return v ? std::string(*v) : std::string();
}

Verdict github(std::string_view secret, const Request& req) {
  std::string sig = header(req, "X-Hub-Signature-256");
  if (sig.empty()) return refuse(401, "missing X-Hub-Signature-256 header");
  constexpr std::string_view kPrefix = "sha256=";
  if (sig.rfind(kPrefix, 0) != 0) return refuse(401, "X-Hub-Signature-256 must be sha256=<hex>");
  std::optional<std::string> got = crypto::unhex(std::string_view(sig).substr(kPrefix.size()));
  if (!got || got->size() != 32) return refuse(401, "X-Hub-Signature-256 is not a 64-digit hex digest");
  if (!crypto::equal_constant_time(*got, crypto::hmac_sha256(secret, req.body)))
    return refuse(401, "signature mismatch");
  Verdict v;
  v.ok = true;
  v.delivery_id = header(req, "X-GitHub-Delivery");
  v.event = header(req, "X-GitHub-Event");
  v.signature = std::move(*got);
  if (v.event.empty()) return refuse(400, "missing X-GitHub-Event header");
  // GitHub always sends one; without it a redelivery could not be told from a new delivery.
  if (v.delivery_id.empty()) return refuse(400, "missing X-GitHub-Delivery header");
  return v;
}

Verdict standard(std::string_view secret, const Request& req, std::int64_t now) {
  std::string id = header(req, "webhook-id");
  std::string ts = header(req, "webhook-timestamp");
  std::string sigs = header(req, "webhook-signature");
  if (id.empty() || ts.empty() || sigs.empty())
    return refuse(401, "missing webhook-id, webhook-timestamp or webhook-signature header");
  std::int64_t t = 0;
  auto [end, ec] = std::from_chars(ts.data(), ts.data() + ts.size(), t);
  if (ec != std::errc() || end != ts.data() + ts.size()) return refuse(401, "webhook-timestamp is not unix seconds");
  // The window is checked before any HMAC: a replayed old delivery costs nothing.
  if (t < now - kWindowSeconds) return refuse(401, "timestamp too old (outside the 5-minute window)");
  if (t > now + kWindowSeconds) return refuse(401, "timestamp too far in the future (outside the 5-minute window)");
  std::string key(secret);
  if (key.rfind("whsec_", 0) == 0) {
    auto decoded = crypto::unbase64(std::string_view(key).substr(6));
    if (!decoded) return refuse(401, "the trigger's whsec_ secret is not base64");
    key = std::move(*decoded);
  }
  std::string signed_content = id;
  signed_content += '.';
  signed_content += ts;
  signed_content += '.';
  signed_content += req.body;
  const std::string expected = crypto::hmac_sha256(key, signed_content);
  // Several signatures may be sent (key rotation): any valid v1 one is enough.
  std::string_view rest = sigs;
  while (!rest.empty()) {
    std::size_t sp = rest.find(' ');
    std::string_view item = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    if (item.rfind("v1,", 0) != 0) continue;
    auto got = crypto::unbase64(item.substr(3));
    if (got && crypto::equal_constant_time(*got, expected)) {
      Verdict v;
      v.ok = true;
      v.delivery_id = std::move(id);
      v.signature = std::move(*got);
      return v;
    }
  }
  return refuse(401, "signature mismatch");
}

Verdict canonical(std::string_view secret, const Request& req, std::int64_t now) {
  std::string auth = header(req, "Authorization");
  if (auth.empty()) return refuse(401, "missing Authorization: HMAC-SHA256 header");
  std::string why;
  auto creds = hmac_auth::parse(auth, &why);
  if (!creds) return refuse(401, "Authorization: " + why);
  hmac_auth::Verdict r =
      hmac_auth::verify(secret, *creds, req.method, req.path, hmac_auth::query_of(req.target), req.body, now);
  switch (r) {
    case hmac_auth::Verdict::ok: break;
    case hmac_auth::Verdict::stale: return refuse(401, "timestamp too old (outside the 5-minute window)");
    case hmac_auth::Verdict::future:
      return refuse(401, "timestamp too far in the future (outside the 5-minute window)");
    case hmac_auth::Verdict::bad_signature: return refuse(401, "signature mismatch");
    case hmac_auth::Verdict::query_unsigned: return refuse(401, std::string(hmac_auth::to_string(r)));
  }
  Verdict v;
  v.ok = true;
  v.signature = creds->signature;
  v.delivery_id = header(req, "X-Delivery-Id");
  if (v.delivery_id.empty()) v.delivery_id = header(req, "Idempotency-Key");
  return v;
}

}  // namespace

std::optional<Provider> provider_from(std::string_view name) {
  if (name == "github") return Provider::github;
  // "webhook": the orchestrator design's name for the Standard Webhooks verifier.
  if (name == "standard-webhooks" || name == "webhook") return Provider::standard_webhooks;
  if (name == "hmac") return Provider::hmac;
  return std::nullopt;
}

namespace {
// A delivery id and an event name are kept (the deliveries file, events) and handed to jobs
// (DOCKLESS_DELIVERY, DOCKLESS_EVENT): providers send short tokens (GitHub: a UUID), so
// anything long or with control characters is refused rather than stored.
constexpr std::size_t kMaxTokenBytes = 200;
}  // namespace

bool plain_token(std::string_view s) {
  if (s.size() > kMaxTokenBytes) return false;
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

namespace {

Verdict verified(Provider provider, std::string_view secret, const Request& req, std::int64_t now_unix) {
  switch (provider) {
    case Provider::github: return github(secret, req);
    case Provider::standard_webhooks: return standard(secret, req, now_unix);
    case Provider::hmac: return canonical(secret, req, now_unix);
  }
  return refuse(500, "unknown provider");
}
}  // namespace

Verdict verify(Provider provider, std::string_view secret, const Request& req, std::int64_t now_unix) {
  Verdict v = verified(provider, secret, req, now_unix);
  if (!v.ok) return v;
  if (!plain_token(v.delivery_id))
    return refuse(400, "delivery id is longer than 200 bytes or holds control characters");
  if (!plain_token(v.event)) return refuse(400, "event name is longer than 200 bytes or holds control characters");
  return v;
}

}  // namespace http::webhook
