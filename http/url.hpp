#pragma once
// Request-target pieces: percent-decoding, query strings, path segments.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace http {

// "%41" → "A"; with `plus_is_space` (query strings), '+' → ' '. nullopt for a
// malformed escape ("%4", "%zz") or an encoded NUL, which no path or key needs.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space = false);

// "a=1&b=x%20y&flag" → {a:1, b:"x y", flag:""}. nullopt if any part is malformed.
std::optional<std::map<std::string, std::string>> parse_query(std::string_view query);

// "/v1/services/web/logs" → {"v1","services","web","logs"} (still encoded; empty
// segments kept, so "/a//b" and "/a/b" are different paths).
std::vector<std::string_view> split_path(std::string_view path);

}  // namespace http
