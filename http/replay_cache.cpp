#include "http/replay_cache.hpp"

#include <algorithm>
#include <limits>

namespace http {

void ReplayCache::expire(std::int64_t now_unix) {
  // An entry stamped t is refused by the window once now > t + window: it can go then.
  while (!by_expiry_.empty() && by_expiry_.begin()->first < now_unix) {
    index_.erase(by_expiry_.begin()->second);
    by_expiry_.erase(by_expiry_.begin());
  }
}

ReplayCache::Admit ReplayCache::admit(std::string_view signature, std::int64_t timestamp, std::int64_t now_unix) {
  expire(now_unix);
  if (index_.count(signature)) return Admit::replayed;
  if (index_.size() >= cap_) return Admit::full;
  // Callers admit only in-window timestamps; saturate anyway rather than overflow.
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  const std::int64_t expiry = timestamp > kMax - window_ ? kMax : timestamp + window_;
  const auto it = by_expiry_.emplace(expiry, std::string(signature));
  index_.insert(it->second);
  return Admit::fresh;
}

std::int64_t ReplayCache::retry_after(std::int64_t now_unix) const {
  if (by_expiry_.empty()) return 1;
  return std::max<std::int64_t>(1, by_expiry_.begin()->first - now_unix + 1);
}

}  // namespace http
