// The replay cache on its own: single use, expiry with the window, the cap.
#include <gtest/gtest.h>

#include <string>

#include "http/replay_cache.hpp"

using http::ReplayCache;
using Admit = ReplayCache::Admit;

namespace {
// Built by append: GCC 12's -Wrestrict misfires on sig(i) at -O3.
std::string sig(int i) {
  std::string s = "s";
  s += std::to_string(i);
  return s;
}
}  // namespace

TEST(ReplayCache, ASignatureIsAdmittedOnce) {
  ReplayCache c;
  EXPECT_EQ(c.admit("sig-1", 1000, 1000), Admit::fresh);
  EXPECT_EQ(c.admit("sig-1", 1000, 1000), Admit::replayed);
  EXPECT_EQ(c.admit("sig-1", 1000, 1299), Admit::replayed);
  EXPECT_EQ(c.admit("sig-2", 1000, 1000), Admit::fresh);
  EXPECT_TRUE(c.seen("sig-1"));
  EXPECT_FALSE(c.seen("sig-3"));
}

TEST(ReplayCache, EntriesExpireWhenTheirTimestampLeavesTheWindow) {
  ReplayCache c(ReplayCache::kDefaultCap, 300);
  // Stamped in the future (allowed up to the window): kept until its own timestamp + window.
  EXPECT_EQ(c.admit("future", 1200, 1000), Admit::fresh);
  EXPECT_EQ(c.admit("now", 1000, 1000), Admit::fresh);
  EXPECT_EQ(c.admit("x", 1300, 1300), Admit::fresh);
  EXPECT_EQ(c.size(), 3u);                                // at 1300 "now" may still be used: kept
  EXPECT_EQ(c.admit("y", 1301, 1301), Admit::fresh);      // "now" is refused by the window from 1301
  EXPECT_FALSE(c.seen("now"));
  EXPECT_TRUE(c.seen("future"));
  EXPECT_EQ(c.admit("z", 1501, 1501), Admit::fresh);
  EXPECT_FALSE(c.seen("future"));
  EXPECT_EQ(c.size(), 3u);  // x, y, z
}

TEST(ReplayCache, AtTheCapOnlyExpiredEntriesGo) {
  ReplayCache c(3, 300);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.admit(sig(i), 1000 + i, 1000 + i), Admit::fresh);
  EXPECT_EQ(c.admit("new", 1010, 1010), Admit::full);
  EXPECT_EQ(c.retry_after(1010), 291);
  // Full still tells a replay apart: a replayed request is never mistaken for load.
  EXPECT_EQ(c.admit("s1", 1001, 1010), Admit::replayed);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(c.seen(sig(i)));
  EXPECT_EQ(c.admit("new", 1301, 1301), Admit::fresh);  // s0 expired (1300 < 1301)
  EXPECT_FALSE(c.seen("s0"));
  EXPECT_EQ(c.size(), 3u);
}

TEST(ReplayCache, MemoryStaysBoundedUnderAFlood) {
  ReplayCache c(1000, 300);
  std::int64_t now = 1000;
  int refused = 0;
  for (int i = 0; i < 20000; ++i, now += (i % 10 == 0)) refused += c.admit(std::to_string(i), now, now) == Admit::full;
  EXPECT_LE(c.size(), 1000u);
  EXPECT_GT(refused, 0);
}
