#pragma once
// Verification of webhook deliveries, one function per provider, pure (no I/O, the clock is a
// parameter) so every refusal can be tested against vectors made with the openssl CLI.
//   github            X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>,
//                     X-GitHub-Delivery (id, required), X-GitHub-Event (event)
//   standard-webhooks webhook-id, webhook-timestamp, webhook-signature ("v1,<base64>" items
//                     separated by spaces) over "{id}.{timestamp}.{body}"; a "whsec_" secret is
//                     base64-decoded, any other is used as raw bytes; 5-minute window both ways
//   hmac              the canonical Authorization: HMAC-SHA256 of http/hmac_auth.hpp (v2 signs
//                     the query; v1 only without one); delivery id from X-Delivery-Id or
//                     Idempotency-Key when present
// A delivery id is not signed (GitHub, hmac): the verified signature comes back too, so the
// dispatcher can refuse the same signed content under a new id.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/message.hpp"

namespace http::webhook {

enum class Provider { github, standard_webhooks, hmac };
std::optional<Provider> provider_from(std::string_view name);

struct Verdict {
  bool ok = false;
  int status = 401;          // when !ok: 401 (signature), 400 (malformed headers)
  std::string reason;        // when !ok: why, safe to send back (never the expected signature)
  std::string delivery_id;   // may be empty (hmac without an id header)
  std::string event;         // github: X-GitHub-Event; others: filled in by the caller from the body
  std::string signature;     // when ok: the verified signature's bytes
};

inline constexpr std::int64_t kWindowSeconds = 300;

Verdict verify(Provider provider, std::string_view secret, const Request& req, std::int64_t now_unix);

// At most 200 bytes, no control characters: what a delivery id or event name may be.
bool plain_token(std::string_view s);

}  // namespace http::webhook
