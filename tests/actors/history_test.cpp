// actors/history: the fixed-size usage ring (tick-addressed slots, gaps, wrap-around),
// the timeline ring, how event lines become timeline marks, and the node figures'
// parsers. The sampler's loop and the API on top are tested end to end in
// tests/api/history_test.py with a real daemon and a real busy child.
#include <gtest/gtest.h>

#include <type_traits>

#include "actors/event_log.hpp"
#include "actors/history.hpp"
#include "actors/node_stats.hpp"

using namespace actors;

namespace {

UsageRing::Point at(std::uint32_t cpu, std::uint64_t memory) { return {cpu, memory}; }

TEST(UsageRing, IsFixedSizeWhateverItHolds) {
  // The ring is its arrays: no allocation grows with what it holds, and a point costs 6 bytes.
  static_assert(std::is_trivially_destructible_v<std::array<std::uint16_t, UsageRing::kPoints>>);
  EXPECT_LE(sizeof(UsageRing), UsageRing::kPoints * 6 + 32);
  UsageRing r;
  for (std::int64_t t = 0; t < 10'000; ++t) r.put(t, at(1, 4096));
  EXPECT_EQ(r.series(9'999).size(), UsageRing::kPoints);
}

TEST(UsageRing, EmptyRingIsAllGaps) {
  UsageRing r;
  for (const auto& p : r.series(1000)) {
    EXPECT_FALSE(p.cpu_permille);
    EXPECT_FALSE(p.memory_bytes);
  }
}

TEST(UsageRing, PointsComeBackOldestFirstAtTheirTicks) {
  UsageRing r;
  r.put(1000, at(10, 1024 * 5));
  r.put(1001, at(20, 1024 * 6));
  const auto s = r.series(1001);
  ASSERT_EQ(s.size(), UsageRing::kPoints);
  EXPECT_EQ(s.back().cpu_permille, 20u);
  EXPECT_EQ(s.back().memory_bytes, 1024u * 6);
  EXPECT_EQ(s[s.size() - 2].cpu_permille, 10u);
  EXPECT_FALSE(s[s.size() - 3].cpu_permille);
  // Later, with nothing put since: the points slide left, the newest ticks are gaps.
  const auto later = r.series(1003);
  EXPECT_EQ(later[later.size() - 3].cpu_permille, 20u);
  EXPECT_FALSE(later.back().memory_bytes);
}

TEST(UsageRing, WrapsAroundKeepingTheLastKPoints) {
  UsageRing r;
  const std::int64_t n = UsageRing::kPoints;
  for (std::int64_t t = 0; t < n + 50; ++t) r.put(t, at(static_cast<std::uint32_t>(t), 0));
  const auto s = r.series(n + 49);
  for (std::int64_t k = 0; k < n; ++k) EXPECT_EQ(s[static_cast<std::size_t>(k)].cpu_permille, 50 + k) << k;
}

TEST(UsageRing, SkippedTicksAreGapsNotStaleSlots) {
  UsageRing r;
  const std::int64_t n = UsageRing::kPoints;
  for (std::int64_t t = 0; t < n; ++t) r.put(t, at(7, 1024));
  // The service was down for 100 ticks: their slots held points of a ring ago.
  r.put(n + 100, at(9, 2048));
  const auto s = r.series(n + 100);
  EXPECT_EQ(s.back().cpu_permille, 9u);
  for (std::size_t k = s.size() - 101; k < s.size() - 1; ++k) EXPECT_FALSE(s[k].cpu_permille) << k;
  EXPECT_EQ(s[s.size() - 102].cpu_permille, 7u);
  // Down for longer than the ring: nothing from before survives.
  r.put(10 * n, at(3, 1024));
  const auto t = r.series(10 * n);
  for (std::size_t k = 0; k + 1 < t.size(); ++k) EXPECT_FALSE(t[k].memory_bytes) << k;
  EXPECT_EQ(t.back().cpu_permille, 3u);
}

TEST(UsageRing, NeverGoesBackAndClampsWhatDoesNotFit) {
  UsageRing r;
  r.put(50, at(5, 1024));
  r.put(40, at(6, 2048));
  r.put(50, at(7, 2048));
  EXPECT_EQ(r.series(50).back().cpu_permille, 5u);
  r.put(51, {std::nullopt, 1ull << 50});
  r.put(52, at(1u << 20, 1024));
  const auto s = r.series(52);
  EXPECT_FALSE(s[s.size() - 2].cpu_permille);  // unknown stays unknown
  EXPECT_EQ(s[s.size() - 2].memory_bytes, (0xFFFFFFFEull) * 1024);
  EXPECT_EQ(s.back().cpu_permille, 0xFFFEu);
}

TEST(Timeline, KeepsTheLastMarksOldestFirst) {
  Timeline tl;
  for (int i = 0; i < static_cast<int>(Timeline::kMarks) + 10; ++i) {
    Timeline::Mark m;
    m.unix_ms = 1000 + i;
    tl.add(m);
  }
  const auto all = tl.since(0);
  ASSERT_EQ(all.size(), Timeline::kMarks);
  EXPECT_EQ(all.front().unix_ms, 1010);
  EXPECT_EQ(all.back().unix_ms, 1000 + static_cast<int>(Timeline::kMarks) + 9);
  EXPECT_EQ(tl.since(1000 + static_cast<int>(Timeline::kMarks) + 8).size(), 2u);
}

EventRecord line(std::string text) { return EventRecord{1, std::move(text)}; }

TEST(TimelineMark, ExitsWithCodeOrSignal) {
  std::string svc;
  auto m = timeline_mark(line(R"({"seq":1,"time":"2026-11-23T13:30:00.123Z","service":"web","kind":"exited",)"
                              R"("signaled":false,"code":3,"description":"exited with 3"})"),
                         &svc);
  ASSERT_TRUE(m);
  EXPECT_EQ(svc, "web");
  EXPECT_EQ(m->kind, EventType::exited);
  EXPECT_TRUE(m->known);
  EXPECT_FALSE(m->signaled);
  EXPECT_EQ(m->code, 3);
  EXPECT_EQ(m->unix_ms, *parse_utc_ms("2026-11-23T13:30:00.123Z"));
  m = timeline_mark(line(R"({"seq":2,"time":"2026-11-23T13:30:01.000Z","service":"web","kind":"exited",)"
                         R"("signaled":true,"signal":"SIGSEGV","description":"killed by SIGSEGV"})"),
                    &svc);
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->signaled);
  EXPECT_EQ(m->code, 11);
  m = timeline_mark(line(R"({"seq":3,"time":"2026-11-23T13:30:01.000Z","service":"web","kind":"exited",)"
                         R"("description":"exit status unknown","exit_status":"unknown"})"),
                    &svc);
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->known);
}

TEST(TimelineMark, OnlyLifecycleKindsOfServices) {
  std::string svc;
  EXPECT_TRUE(timeline_mark(line(R"({"seq":1,"time":"2026-11-23T13:30:00.000Z","service":"a","kind":"started","pid":5})"), &svc));
  EXPECT_TRUE(timeline_mark(line(R"({"seq":1,"time":"2026-11-23T13:30:00.000Z","service":"a","kind":"backoff"})"), &svc));
  EXPECT_FALSE(timeline_mark(line(R"({"seq":1,"time":"2026-11-23T13:30:00.000Z","service":"a","kind":"health"})"), &svc));
  EXPECT_FALSE(timeline_mark(line(R"({"seq":1,"time":"2026-11-23T13:30:00.000Z","service":null,"kind":"started"})"), &svc));
  EXPECT_FALSE(timeline_mark(line(R"({"seq":1,"time":"bad","service":"a","kind":"started"})"), &svc));
  EXPECT_FALSE(timeline_mark(line("not json"), &svc));
  EXPECT_FALSE(is_timeline_kind(EventType::stop_requested));
}

TEST(NodeStats, ParsesLoadavgAndMeminfo) {
  NodeStats n;
  ASSERT_TRUE(parse_loadavg("0.52 1.58 2.59 1/123 4567\n", &n));
  EXPECT_DOUBLE_EQ(*n.load1, 0.52);
  EXPECT_DOUBLE_EQ(*n.load15, 2.59);
  EXPECT_FALSE(parse_loadavg("garbage", &n));
  parse_meminfo("MemTotal:        8000000 kB\nMemFree:  10 kB\nMemAvailable:    4000000 kB\n", &n);
  EXPECT_EQ(n.memory_total, 8000000ull * 1024);
  EXPECT_EQ(n.memory_available, 4000000ull * 1024);
}

TEST(NodeStats, ReadsThisMachine) {
  const NodeStats n = read_node_stats("/");
  EXPECT_TRUE(n.load1);
  EXPECT_GT(n.memory_total.value_or(0), 0u);
  EXPECT_GT(n.disk_total.value_or(0), 0u);
  EXPECT_GE(n.cpus, 1u);
}

}  // namespace
