#include "http/hmac_auth.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>

#include "http/crypto.hpp"

namespace http::hmac_auth {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool fail(std::string* why, std::string text) {
  if (why) *why = std::move(text);
  return false;
}

}  // namespace

std::optional<Credentials> parse(std::string_view value, std::string* why) {
  constexpr std::string_view scheme = "HMAC-SHA256";
  value = trim(value);
  if (value.size() <= scheme.size() || value[scheme.size()] != ' ' ||
      !std::equal(scheme.begin(), scheme.end(), value.begin(),
                  [](char a, char b) { return a == std::toupper(static_cast<unsigned char>(b)); })) {
    fail(why, "expected \"HMAC-SHA256 v=2,timestamp=<unix seconds>,signature=<base64>\"");
    return std::nullopt;
  }
  std::string_view params = value.substr(scheme.size() + 1);
  Credentials c;
  bool have_ts = false, have_sig = false, have_v = false;
  while (!params.empty()) {
    const auto comma = params.find(',');
    const std::string_view item = trim(params.substr(0, comma));
    params = comma == std::string_view::npos ? std::string_view() : params.substr(comma + 1);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) {
      // No part of the value is echoed: it may be a key sent in the wrong scheme.
      fail(why, "malformed parameter (expected name=value)");
      return std::nullopt;
    }
    const std::string_view name = trim(item.substr(0, eq)), v = trim(item.substr(eq + 1));
    if (name == "v") {
      if (have_v) return fail(why, "v given twice"), std::nullopt;
      if (v != "1" && v != "2") return fail(why, "unsupported version v=" + std::string(v) + " (1 or 2)"), std::nullopt;
      c.version = v == "2" ? 2 : 1;
      have_v = true;
    } else if (name == "timestamp") {
      if (have_ts) return fail(why, "timestamp given twice"), std::nullopt;
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), c.timestamp);
      if (v.empty() || ec != std::errc() || end != v.data() + v.size() || c.timestamp < 0) {
        fail(why, "timestamp must be unix seconds");
        return std::nullopt;
      }
      c.timestamp_text = std::string(v);
      have_ts = true;
    } else if (name == "signature") {
      if (have_sig) return fail(why, "signature given twice"), std::nullopt;
      auto raw = crypto::unbase64(v);
      if (!raw || raw->empty()) return fail(why, "signature is not base64"), std::nullopt;
      c.signature = std::move(*raw);
      have_sig = true;
    } else {
      fail(why, "unknown parameter (expected timestamp and signature)");
      return std::nullopt;
    }
  }
  if (!have_ts) return fail(why, "timestamp missing"), std::nullopt;
  if (!have_sig) return fail(why, "signature missing"), std::nullopt;
  return c;
}

namespace {

std::string canonical(std::string_view method, std::string_view path, const std::string_view* query,
                      std::string_view timestamp, std::string_view body) {
  std::string out;
  out.reserve(method.size() + path.size() + (query ? query->size() + 1 : 0) + timestamp.size() + 67);
  for (char ch : method) out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(ch))));
  out += '\n';
  out += path;
  out += '\n';
  if (query) {
    out += *query;
    out += '\n';
  }
  out += timestamp;
  out += '\n';
  out += crypto::hex(crypto::sha256(body));
  return out;
}

}  // namespace

std::string canonical_string(std::string_view method, std::string_view path, std::string_view timestamp,
                             std::string_view body) {
  return canonical(method, path, nullptr, timestamp, body);
}

std::string canonical_string_v2(std::string_view method, std::string_view path, std::string_view query,
                                std::string_view timestamp, std::string_view body) {
  return canonical(method, path, &query, timestamp, body);
}

std::string sign(std::string_view secret, std::string_view method, std::string_view path, std::string_view timestamp,
                 std::string_view body) {
  return crypto::base64(crypto::hmac_sha256(secret, canonical_string(method, path, timestamp, body)));
}

std::string sign_v2(std::string_view secret, std::string_view method, std::string_view path, std::string_view query,
                    std::string_view timestamp, std::string_view body) {
  return crypto::base64(crypto::hmac_sha256(secret, canonical_string_v2(method, path, query, timestamp, body)));
}

std::string_view query_of(std::string_view target) noexcept {
  const auto q = target.find('?');
  return q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
}

std::string authorization(std::string_view secret, std::string_view method, std::string_view target,
                          std::int64_t timestamp, std::string_view body) {
  const std::string ts = std::to_string(timestamp);
  const std::string_view path = target.substr(0, target.find('?'));
  return "HMAC-SHA256 v=2,timestamp=" + ts + ",signature=" + sign_v2(secret, method, path, query_of(target), ts, body);
}

Verdict verify(std::string_view secret, const Credentials& creds, std::string_view method, std::string_view path,
               std::string_view query, std::string_view body, std::int64_t now_unix, std::chrono::seconds window) {
  if (creds.timestamp < now_unix - window.count()) return Verdict::stale;
  if (creds.timestamp > now_unix + window.count()) return Verdict::future;
  if (creds.version == 1 && !query.empty()) return Verdict::query_unsigned;
  const std::string text = creds.version == 1 ? canonical_string(method, path, creds.timestamp_text, body)
                                              : canonical_string_v2(method, path, query, creds.timestamp_text, body);
  return crypto::equal_constant_time(crypto::hmac_sha256(secret, text), creds.signature) ? Verdict::ok
                                                                                         : Verdict::bad_signature;
}

Verdict verify(std::string_view secret, const Credentials& creds, std::string_view method, std::string_view path,
               std::string_view body, std::int64_t now_unix, std::chrono::seconds window) {
  return verify(secret, creds, method, path, std::string_view(), body, now_unix, window);
}

std::string_view to_string(Verdict v) noexcept {
  switch (v) {
    case Verdict::ok: return "ok";
    case Verdict::stale: return "timestamp too old (more than 5 minutes)";
    case Verdict::future: return "timestamp too far in the future (more than 5 minutes)";
    case Verdict::bad_signature: return "signature does not match";
    case Verdict::query_unsigned:
      return "a v1 signature does not cover the query string: sign with v=2 (docs/api.md)";
  }
  return "?";
}

}  // namespace http::hmac_auth
