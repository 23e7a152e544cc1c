#pragma once
// The signatures of HMAC-signed requests already used, so a captured request cannot be
// sent again. A signature is remembered until its timestamp leaves the window (after
// that the window refuses it anyway), so memory follows the signed request rate over
// ten minutes, never the attacker's: only verified signatures are ever recorded.
//
// At the cap, expired entries are dropped first; if none has expired the new request is
// refused (`full`) rather than a live entry forgotten, since forgetting one would make
// it replayable. Only a key holder signing over `cap` requests in ten minutes meets it.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_set>

namespace http {

class ReplayCache {
 public:
  static constexpr std::size_t kDefaultCap = 65536;
  static constexpr std::int64_t kDefaultWindow = 300;  // hmac_auth::kWindow, seconds

  explicit ReplayCache(std::size_t cap = kDefaultCap, std::int64_t window_s = kDefaultWindow)
      : cap_(cap), window_(window_s) {}
  // The index views strings owned by by_expiry_: a copy would view the original's. A move
  // takes the nodes along, so the views stay valid.
  ReplayCache(const ReplayCache&) = delete;
  ReplayCache& operator=(const ReplayCache&) = delete;
  ReplayCache(ReplayCache&&) = default;
  ReplayCache& operator=(ReplayCache&&) = default;
  ~ReplayCache() = default;

  enum class Admit { fresh, replayed, full };
  // Records `signature` (of a request stamped `timestamp`) unless it was seen already.
  Admit admit(std::string_view signature, std::int64_t timestamp, std::int64_t now_unix);
  // Whether it was seen, recording nothing (before a body is read).
  bool seen(std::string_view signature) const { return index_.count(signature) != 0; }

  std::size_t size() const noexcept { return index_.size(); }
  // Seconds until the oldest entry expires (Retry-After when full); at least 1.
  std::int64_t retry_after(std::int64_t now_unix) const;

 private:
  void expire(std::int64_t now_unix);

  std::size_t cap_;
  std::int64_t window_;
  // Owner, ordered by expiry; the index views the strings, whose nodes never move.
  std::multimap<std::int64_t, std::string> by_expiry_;
  std::unordered_set<std::string_view> index_;
};

}  // namespace http
