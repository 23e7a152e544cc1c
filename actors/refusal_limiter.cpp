#include "actors/refusal_limiter.hpp"

#include <algorithm>
#include <utility>

namespace actors {

std::string capped_client_text(std::string_view text, std::size_t max) {
  std::string out;
  const bool cut = text.size() > max;
  if (cut) {
    std::size_t end = max;
    // Back to the start of a UTF-8 sequence: never half a character.
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    text = text.substr(0, end);
  }
  out.reserve(text.size() + 3);
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7F) ? '?' : c;
  }
  if (cut) out += "\xE2\x80\xA6";  // …
  return out;
}

std::string source_address(std::string_view peer) {
  const auto colon = peer.rfind(':');
  if (colon == std::string_view::npos) return std::string(peer);
  if (peer.front() == '[') {
    const auto close = peer.find(']');
    return std::string(peer.substr(0, close == std::string_view::npos ? peer.size() : close + 1));
  }
  // One colon: address:port. More (a bare IPv6 address): as it is.
  if (peer.find(':') != colon) return std::string(peer);
  return std::string(peer.substr(0, colon));
}

bool RefusalLimiter::take(Bucket& b, double burst, std::int64_t now_ms) const {
  if (now_ms > b.updated_ms) {
    const double refill = burst * static_cast<double>(now_ms - b.updated_ms) / static_cast<double>(opts_.window_ms);
    b.tokens = std::min(burst, b.tokens + refill);
    b.updated_ms = now_ms;
  }
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

RefusalLimiter::Decision RefusalLimiter::admit(std::string_view source, std::int64_t now_ms) {
  Decision d;
  auto it = by_source_.find(source);
  if (it == by_source_.end()) {
    if (by_source_.size() >= std::max<std::size_t>(opts_.max_sources, 1)) {
      Entry& oldest = lru_.back();
      if (oldest.bucket.suppressed) d.summaries.push_back({oldest.source, oldest.bucket.suppressed});
      by_source_.erase(oldest.source);
      lru_.pop_back();
    }
    lru_.push_front(Entry{std::string(source), Bucket{opts_.burst, now_ms, 0}});
    it = by_source_.emplace(lru_.front().source, lru_.begin()).first;
  } else {
    lru_.splice(lru_.begin(), lru_, it->second);
  }
  Bucket& mine = it->second->bucket;
  // The source's own bucket first: a source over its share does not eat the global one.
  if (!take(mine, opts_.burst, now_ms)) {
    ++mine.suppressed;
    return d;
  }
  if (!take(global_, opts_.global_burst, now_ms)) {
    ++global_.suppressed;
    return d;
  }
  if (global_.suppressed) d.summaries.push_back({"", std::exchange(global_.suppressed, 0)});
  if (mine.suppressed) d.summaries.push_back({it->second->source, std::exchange(mine.suppressed, 0)});
  d.record = true;
  return d;
}

}  // namespace actors
