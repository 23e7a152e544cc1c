#pragma once
// The canonical request signature shared by API authentication and the `hmac`
// webhook provider:
//   Authorization: HMAC-SHA256 timestamp=<unix seconds>,signature=<base64>
// where signature = base64(HMAC-SHA256(secret, METHOD "\n" PATH "\n" TIMESTAMP "\n"
// hex(SHA256(body)))), METHOD uppercased and PATH without the query.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace http::hmac_auth {

struct Credentials {
  std::int64_t timestamp = 0;  // unix seconds as sent
  std::string timestamp_text;  // as sent: the signed string uses the client's spelling
  std::string signature;       // decoded bytes
};

// Parses the value of an Authorization header. nullopt with *why set when the
// scheme is not HMAC-SHA256 or the parameters are malformed, missing, repeated or
// unknown.
std::optional<Credentials> parse(std::string_view value, std::string* why);

std::string canonical_string(std::string_view method, std::string_view path, std::string_view timestamp,
                             std::string_view body);

// base64 of the signature a client would send (for tests and the CLI).
std::string sign(std::string_view secret, std::string_view method, std::string_view path,
                 std::string_view timestamp, std::string_view body);

enum class Verdict { ok, stale, future, bad_signature };
inline constexpr std::chrono::seconds kWindow{300};

// Checks the window first (a stale request is refused without computing an HMAC);
// the signature is compared in constant time.
Verdict verify(std::string_view secret, const Credentials& creds, std::string_view method, std::string_view path,
               std::string_view body, std::int64_t now_unix, std::chrono::seconds window = kWindow);

std::string_view to_string(Verdict v) noexcept;

}  // namespace http::hmac_auth
