#include "http/router.hpp"

#include <set>
#include <stdexcept>

#include "http/url.hpp"

namespace http {

namespace {
bool is_capture(std::string_view seg) noexcept {
  return seg.size() >= 3 && seg.front() == '{' && seg.back() == '}';
}

// Matches decoded path segments against a route. `score` orders candidates:
// lexicographically, a literal at a position beats a capture there.
bool match_route(const Router::Route& r, const std::vector<std::string>& segs,
                 std::map<std::string, std::string>* params, std::vector<bool>* score) {
  if (r.segments.size() != segs.size()) return false;
  score->clear();
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const std::string& pat = r.segments[i];
    if (is_capture(pat)) {
      if (segs[i].empty()) return false;  // "/v1/services//logs" names no service
      if (params) (*params)[pat.substr(1, pat.size() - 2)] = segs[i];
      score->push_back(true);
    } else {
      if (pat != segs[i]) return false;
      score->push_back(false);
    }
  }
  return true;
}
}  // namespace

void Router::add(std::string method, std::string pattern, Handler h) {
  Route r;
  r.method = std::move(method);
  r.pattern = std::move(pattern);
  r.handler = std::move(h);
  insert(std::move(r));
}

void Router::add_stream(std::string method, std::string pattern, StreamHandler h) {
  Route r;
  r.method = std::move(method);
  r.pattern = std::move(pattern);
  r.stream_handler = std::move(h);
  insert(std::move(r));
}

void Router::insert(Route r) {
  if (r.pattern.empty() || r.pattern.front() != '/')
    throw std::invalid_argument("route pattern must start with '/': " + r.pattern);
  std::set<std::string> names;
  for (std::string_view seg : split_path(r.pattern)) {
    const bool brace = seg.find_first_of("{}") != std::string_view::npos;
    if (brace && !is_capture(seg))
      throw std::invalid_argument("route segment must be literal or {name}: " + r.pattern);
    if (is_capture(seg) && !names.insert(std::string(seg)).second)
      throw std::invalid_argument("route repeats a capture name: " + r.pattern);
    r.segments.emplace_back(seg);
  }
  for (const Route& o : routes_)
    if (o.method == r.method && o.segments == r.segments)
      throw std::invalid_argument("route registered twice: " + r.method + " " + r.pattern);
  routes_.push_back(std::move(r));
}

std::shared_ptr<const void> Router::pin(std::string_view target) const {
  if (!delegate_.pin) return nullptr;
  return delegate_.pin(target.substr(0, target.find('?')));
}

Router::Match Router::match(std::string_view method, std::string_view path) const {
  Match m;
  std::vector<std::string> segs;
  for (std::string_view raw : split_path(path)) {
    auto decoded = percent_decode(raw);
    // A decoded '/' would let "a%2Fb" pose as two segments to later code that
    // rebuilds paths from params; refuse it outright.
    if (!decoded || decoded->find('/') != std::string::npos) {
      m.kind = Match::Kind::bad_path;
      return m;
    }
    segs.push_back(std::move(*decoded));
  }

  std::set<std::string> allowed;
  const Route* best = nullptr;
  const Route* get_fallback = nullptr;
  std::vector<bool> best_score, get_score, score;
  for (const Route& r : routes_) {
    if (!match_route(r, segs, nullptr, &score)) continue;
    allowed.insert(r.method);
    if (r.method == method && (!best || score < best_score)) {
      best = &r;
      best_score = score;
    }
    if (method == "HEAD" && r.method == "GET" && (!get_fallback || score < get_score)) {
      get_fallback = &r;
      get_score = score;
    }
  }
  if (!best) best = get_fallback;
  if (best) {
    m.kind = Match::Kind::found;
    m.route = best;
    match_route(*best, segs, &m.params, &score);
    return m;
  }
  if (allowed.empty()) return m;  // not_found
  if (allowed.count("GET")) allowed.insert("HEAD");
  m.kind = Match::Kind::method_not_allowed;
  for (const std::string& a : allowed) {
    if (!m.allow.empty()) m.allow += ", ";
    m.allow += a;
  }
  return m;
}

}  // namespace http
