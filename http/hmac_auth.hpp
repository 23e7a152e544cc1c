#pragma once
// The canonical request signature shared by API authentication and the `hmac`
// webhook provider (docs/api.md, "HMAC signatures"):
//   v2: Authorization: HMAC-SHA256 v=2,timestamp=<unix seconds>,signature=<base64>
//       signature = base64(HMAC-SHA256(secret, METHOD "\n" PATH "\n" QUERY "\n" TIMESTAMP "\n"
//       hex(SHA256(body)))), QUERY the raw text after '?' ("" when none).
//   v1 (no v=, deprecated): the same without the QUERY line. It signs no query, so it is
//       accepted only on a request without one: a v1 signature can never be lifted onto
//       another query.
// METHOD is uppercased, PATH is the target up to '?'. A verified signature is single-use
// (http/replay_cache.hpp).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace http::hmac_auth {

struct Credentials {
  int version = 1;             // v= (absent: 1)
  std::int64_t timestamp = 0;  // unix seconds as sent
  std::string timestamp_text;  // as sent: the signed string uses the client's spelling
  std::string signature;       // decoded bytes
};

// Parses the value of an Authorization header. nullopt with *why set when the
// scheme is not HMAC-SHA256 or the parameters are malformed, missing, repeated or
// unknown.
std::optional<Credentials> parse(std::string_view value, std::string* why);

// v1 (no query line).
std::string canonical_string(std::string_view method, std::string_view path, std::string_view timestamp,
                             std::string_view body);
std::string canonical_string_v2(std::string_view method, std::string_view path, std::string_view query,
                                std::string_view timestamp, std::string_view body);

// base64 of the v1 signature (tests of the deprecated form).
std::string sign(std::string_view secret, std::string_view method, std::string_view path,
                 std::string_view timestamp, std::string_view body);
// base64 of the v2 signature, and the whole Authorization value a client sends.
std::string sign_v2(std::string_view secret, std::string_view method, std::string_view path, std::string_view query,
                    std::string_view timestamp, std::string_view body);
std::string authorization(std::string_view secret, std::string_view method, std::string_view target,
                          std::int64_t timestamp, std::string_view body);

// The raw query of a request target: the text after the first '?', "" when none.
std::string_view query_of(std::string_view target) noexcept;

// query_unsigned: a v1 signature on a request that has a query.
enum class Verdict { ok, stale, future, bad_signature, query_unsigned };
inline constexpr std::chrono::seconds kWindow{300};

// Checks the window first (a stale request is refused without computing an HMAC);
// the signature is compared in constant time. `query` is the raw query (query_of).
Verdict verify(std::string_view secret, const Credentials& creds, std::string_view method, std::string_view path,
               std::string_view query, std::string_view body, std::int64_t now_unix,
               std::chrono::seconds window = kWindow);
// A request without a query.
Verdict verify(std::string_view secret, const Credentials& creds, std::string_view method, std::string_view path,
               std::string_view body, std::int64_t now_unix, std::chrono::seconds window = kWindow);

std::string_view to_string(Verdict v) noexcept;

}  // namespace http::hmac_auth
