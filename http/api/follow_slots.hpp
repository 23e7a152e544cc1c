#pragma once
// FollowSlots: how many follow streams (logs and events with follow=1, SSE) one client holds
// at once. A follower costs a connection, a coroutine and a wake-up per event or log chunk for
// as long as it likes, so each API key gets at most [http] max_follow_streams and each source
// address without a key (public_read) [http] max_public_follow_streams; the unix socket
// (trusted by its permissions) is not counted. The owner is the gate's Principal: a key by
// its configured name, a public reader by its address.
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "http/message.hpp"

namespace http {

class FollowSlots {
 public:
  // Held for the life of a stream; frees its slot when destroyed.
  class Slot {
   public:
    Slot() = default;
    Slot(FollowSlots* owner, std::string who) : owner_(owner), who_(std::move(who)) {}
    Slot(Slot&& o) noexcept : owner_(std::exchange(o.owner_, nullptr)), who_(std::move(o.who_)) {}
    Slot& operator=(Slot&& o) noexcept {
      if (this != &o) {
        release();
        owner_ = std::exchange(o.owner_, nullptr);
        who_ = std::move(o.who_);
      }
      return *this;
    }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { release(); }

   private:
    void release();
    FollowSlots* owner_ = nullptr;
    std::string who_;
  };

  // "key:<key name>", "addr:<source address>" (public readers), or "" (unix socket).
  static std::string owner_of(const Request& req);

  struct Caps {
    std::uint64_t per_key = 0;      // 0: no limit
    std::uint64_t per_address = 0;  // requests without a key
  };
  // A slot for `req`'s owner, or nullopt when it holds its cap already (*applied: that cap).
  std::optional<Slot> acquire(const Request& req, Caps caps, std::uint64_t* applied = nullptr);
  std::uint64_t held(const std::string& who) const;

 private:
  std::unordered_map<std::string, std::uint64_t> held_;
};

// 429 with the limit, for a follow past it.
Response too_many_follows(std::uint64_t cap);

}  // namespace http
