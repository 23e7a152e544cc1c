// The Authorization: HMAC-SHA256 header parser (v1 and v=2) and its verification, with and
// without a query, and the replay cache fed with whatever parsed.
#include <cstdint>
#include <string>

#include "http/hmac_auth.hpp"
#include "http/replay_cache.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::int64_t kNow = 1700000000;
  const std::string value(reinterpret_cast<const char*>(data), size);
  std::string why;
  auto creds = http::hmac_auth::parse(value, &why);
  if (!creds) {
    if (why.empty()) __builtin_trap();
    return 0;
  }
  if (creds->version != 1 && creds->version != 2) __builtin_trap();
  const auto v = http::hmac_auth::verify("secret", *creds, "POST", "/v1/reload", value, kNow);
  if (http::hmac_auth::to_string(v).empty()) __builtin_trap();
  const auto q = http::hmac_auth::verify("secret", *creds, "POST", "/v1/reload", "a=1", value, kNow);
  // v1 never verifies a request with a query; any verdict must still have a message.
  if (creds->version == 1 && q == http::hmac_auth::Verdict::ok) __builtin_trap();
  if (http::hmac_auth::to_string(q).empty()) __builtin_trap();
  // The gate admits only timestamps inside the window (an older one is refused as stale
  // before the cache, and would expire from it at once): the single-use promise is theirs.
  http::ReplayCache cache(4, 300);
  const auto first = cache.admit(creds->signature, creds->timestamp, kNow);
  const auto again = cache.admit(creds->signature, creds->timestamp, kNow);
  const bool in_window = creds->timestamp >= kNow - 300 && creds->timestamp <= kNow + 300;
  if (in_window && first == http::ReplayCache::Admit::fresh && again != http::ReplayCache::Admit::replayed)
    __builtin_trap();
  return 0;
}
