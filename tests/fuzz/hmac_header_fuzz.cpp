// The Authorization: HMAC-SHA256 header parser and its verification.
#include <cstdint>
#include <string>

#include "http/hmac_auth.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string value(reinterpret_cast<const char*>(data), size);
  std::string why;
  auto creds = http::hmac_auth::parse(value, &why);
  if (!creds) {
    if (why.empty()) __builtin_trap();
    return 0;
  }
  const auto v = http::hmac_auth::verify("secret", *creds, "POST", "/v1/reload", value, 1700000000);
  if (http::hmac_auth::to_string(v).empty()) __builtin_trap();
  return 0;
}
