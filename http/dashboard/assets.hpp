#pragma once
// The dashboard's files, compiled in by embed.py (a generated .cpp).
#include <span>
#include <string_view>

namespace http::dashboard {

struct Asset {
  std::string_view name;          // "app.js": the file name under assets/
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  std::string_view etag;          // strong, quoted: "\"3f2a…\""
  std::string_view body;
};

std::span<const Asset> assets() noexcept;

}  // namespace http::dashboard
