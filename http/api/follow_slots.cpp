#include "http/api/follow_slots.hpp"

#include "actors/refusal_limiter.hpp"

namespace http {

void FollowSlots::Slot::release() {
  if (!owner_) return;
  auto it = owner_->held_.find(who_);
  if (it != owner_->held_.end() && --it->second == 0) owner_->held_.erase(it);
  owner_ = nullptr;
}

std::string FollowSlots::owner_of(const Request& req) {
  // Who the gate let through (never a header read again): a made-up key never got here.
  switch (req.principal.access) {
    case Principal::Access::local: return "";
    case Principal::Access::key: return "key:" + req.principal.key_name;
    case Principal::Access::reader: break;
  }
  return "addr:" + actors::source_address(req.peer);
}

std::optional<FollowSlots::Slot> FollowSlots::acquire(const Request& req, Caps caps, std::uint64_t* applied) {
  std::string who = owner_of(req);
  if (who.empty()) return Slot{};
  const std::uint64_t cap = who.starts_with("key:") ? caps.per_key : caps.per_address;
  if (applied) *applied = cap;
  std::uint64_t& n = held_[who];
  if (cap != 0 && n >= cap) {
    if (n == 0) held_.erase(who);
    return std::nullopt;
  }
  ++n;
  return Slot(this, std::move(who));
}

std::uint64_t FollowSlots::held(const std::string& who) const {
  auto it = held_.find(who);
  return it == held_.end() ? 0 : it->second;
}

Response too_many_follows(std::uint64_t cap) {
  nlohmann::json d = nlohmann::json::object();
  d["limit"] = cap;
  Response r = Response::error(429,
                               "too many follow streams for this API key or address: close one, or raise "
                               "[http] max_follow_streams (max_public_follow_streams without a key)",
                               d);
  r.header("Retry-After", "1");
  return r;
}

}  // namespace http
