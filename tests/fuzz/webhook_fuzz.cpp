// Webhook deliveries as an attacker sends them: every provider's signature headers
// (X-Hub-Signature-256, webhook-id/-timestamp/-signature, Authorization: HMAC-SHA256)
// with arbitrary values over an arbitrary body.
#include <cstdint>
#include <string>
#include <string_view>

#include "http/message.hpp"
#include "http/webhook.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // Byte 0 picks the provider; the rest is "header value\nheader value\n...\nbody".
  const http::webhook::Provider providers[] = {http::webhook::Provider::github,
                                               http::webhook::Provider::standard_webhooks,
                                               http::webhook::Provider::hmac};
  const auto provider = providers[data[0] % 3];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const char* names[] = {"X-Hub-Signature-256", "X-GitHub-Event", "X-GitHub-Delivery", "webhook-id",
                         "webhook-timestamp", "webhook-signature", "Authorization", "X-Delivery-Id"};
  http::Request req;
  req.method = "POST";
  req.path = "/triggers/fuzz";
  req.target = req.path;
  for (const char* name : names) {
    const auto nl = rest.find('\n');
    if (nl == std::string_view::npos) break;
    req.headers.add(name, std::string(rest.substr(0, nl)));
    rest.remove_prefix(nl + 1);
  }
  req.body = std::string(rest);
  const http::webhook::Verdict v = http::webhook::verify(provider, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", req,
                                                         1700000000);
  if (!v.ok && v.reason.empty()) __builtin_trap();                 // every refusal says why
  if (!v.ok && v.status != 400 && v.status != 401) __builtin_trap();
  // An accepted delivery can always be recognised again: by its signature, and a GitHub one by its id.
  if (v.ok && v.signature.empty()) __builtin_trap();
  if (v.ok && provider == http::webhook::Provider::github && v.delivery_id.empty()) __builtin_trap();
  // The secret never appears in a reason, unless the sender put it in the request
  // (a reason may quote the malformed text it was sent).
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string_view secret = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  if (v.reason.find(secret) != std::string::npos && input.find(secret) == std::string_view::npos) __builtin_trap();
  return 0;
}
