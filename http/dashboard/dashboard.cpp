#include "http/dashboard/dashboard.hpp"

#include <string>
#include <string_view>

#include "http/dashboard/assets.hpp"

namespace http {

namespace {

const dashboard::Asset* find_asset(std::string_view name) {
  for (const dashboard::Asset& a : dashboard::assets())
    if (a.name == name) return &a;
  return nullptr;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// If-None-Match is a list of entity tags or "*"; GET compares weakly (RFC 9110
// §13.1.2), so a W/ prefix a proxy may have added still matches.
bool etag_matches(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    std::size_t comma = header.find(',');
    std::string_view tag = trim(header.substr(0, comma));
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == "*" || tag == etag) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

// no-cache: the browser revalidates every load (a daemon upgrade must show at
// once), and the ETag turns that into a body-less 304 on a Pi's slow link.
Response serve(const Request& req, const dashboard::Asset& a) {
  Response r;
  r.headers.set("ETag", std::string(a.etag));
  r.headers.set("Cache-Control", "no-cache");
  if (auto inm = req.headers.get("If-None-Match"); inm && etag_matches(*inm, a.etag)) {
    r.status = 304;
    return r;
  }
  r.status = 200;
  r.headers.set("Content-Type", std::string(a.content_type));
  r.headers.set("X-Content-Type-Options", "nosniff");
  r.body.assign(a.body);
  return r;
}

Response not_found(std::string_view name) {
  return Response::error(404, "no such asset", {{"name", std::string(name)}});
}

}  // namespace

void register_dashboard(Router& router) {
  router.get("/", [](Request& req) -> runtime::Task<Response> {
    const dashboard::Asset* a = find_asset("index.html");
    co_return a ? serve(req, *a) : not_found("index.html");
  });
  router.get("/assets/{file}", [](Request& req) -> runtime::Task<Response> {
    std::string_view name = req.param("file");
    const dashboard::Asset* a = find_asset(name);
    co_return a ? serve(req, *a) : not_found(name);
  });
}

}  // namespace http
