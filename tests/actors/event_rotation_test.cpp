// EventLog rotation: real files in a temp dir, a real writer actor; readers across rotations.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "actors/event_log.hpp"
#include "actors/refusal_limiter.hpp"
#include "run_loop.hpp"
#include "runtime/ops_wait.hpp"

using actors::EventLog;
using actors::EventLogLimits;
using actors::EventType;
using runtime::Task;

namespace {

class EventRotationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dockless-evrot-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/events.log";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static EventLogLimits limits(std::uint64_t max_size, int keep, std::int64_t max_age_ms = 0) {
    EventLogLimits l;
    l.max_size = max_size;
    l.keep = keep;
    l.max_age_ms = max_age_ms;
    return l;
  }
  std::unique_ptr<EventLog> open_log(EventLogLimits l, std::size_t ring = 10) {
    auto r = EventLog::open(path_, ring, l);
    EXPECT_TRUE(r.ok()) << r.message();
    return r.ok() ? std::move(r.value()) : nullptr;
  }
  // `n` events of about 100 bytes, one batch each (a flush after every append).
  static void append_flushed(EventLog& log, int n) {
    run_loop([&]() -> Task<void> {
      std::stop_source stop;
      runtime::spawn(log.run(stop.get_token()), "event-writer");
      // The writer runs from the next round: until then flush() of a log whose previous
      // writer ended would return at once.
      co_await runtime::yield();
      for (int i = 0; i < n; ++i) {
        log.append("web", EventType::exited, {{"pad", std::string(60, 'x')}, {"i", i}});
        co_await log.flush();
      }
      stop.request_stop();
    });
  }
  bool exists(int generation) const { return std::filesystem::exists(actors::event_file_path(path_, generation)); }

  std::string dir_, path_;
};

TEST_F(EventRotationTest, RotatesBySizeAndKeepsAtMostKeepFiles) {
  auto log = open_log(limits(4096, 3));
  ASSERT_TRUE(log);
  append_flushed(*log, 300);  // ~36 KiB: many rotations
  EXPECT_GE(log->stats().rotations, 5u);
  EXPECT_EQ(log->stats().rotation_errors, 0u);
  EXPECT_TRUE(exists(0));
  EXPECT_TRUE(exists(1));
  EXPECT_TRUE(exists(2));
  EXPECT_FALSE(exists(3));
  for (int g = 0; g < 3; ++g) {
    struct stat st{};
    ASSERT_EQ(::stat(actors::event_file_path(path_, g).c_str(), &st), 0);
    EXPECT_LE(static_cast<std::uint64_t>(st.st_size), 4096u + 200u);
    EXPECT_EQ(st.st_mode & 0027, 0u) << "no world bits, no group write";
  }
  // Read back across the kept files: consecutive seqs up to the last, none twice.
  auto all = actors::read_events(path_, 0);
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.back().seq, 300u);
  for (std::size_t i = 1; i < all.size(); ++i) EXPECT_EQ(all[i].seq, all[i - 1].seq + 1);
  EXPECT_GT(all.front().seq, 1u) << "the oldest files were deleted";
}

TEST_F(EventRotationTest, SinceReadsAcrossRotatedFilesAndSkipsGoneEvents) {
  auto log = open_log(limits(4096, 4), /*ring=*/5);
  ASSERT_TRUE(log);
  append_flushed(*log, 120);
  ASSERT_GE(log->stats().rotations, 2u);
  auto all = actors::read_events(path_, 0);
  ASSERT_FALSE(all.empty());
  const std::uint64_t oldest = all.front().seq;
  // A cursor inside a rotated file continues exactly after it, through the newer files.
  auto from = log->since(oldest + 3, 1000);
  ASSERT_FALSE(from.empty());
  EXPECT_EQ(from.front().seq, oldest + 4);
  EXPECT_EQ(from.back().seq, 120u);
  EXPECT_EQ(from.size(), 120u - oldest - 3);
  // A cursor older than every kept file gets the oldest event still kept.
  auto gone = log->since(0, 3);
  ASSERT_EQ(gone.size(), 3u);
  EXPECT_EQ(gone.front().seq, oldest);
}

TEST_F(EventRotationTest, AFollowerKeepsItsPlaceAcrossRotations) {
  auto log = open_log(limits(4096, 2), /*ring=*/3);
  ASSERT_TRUE(log);
  std::vector<std::uint64_t> seen;
  run_loop([&]() -> Task<void> {
    std::stop_source stop;
    runtime::spawn(log->run(stop.get_token()), "event-writer");
    std::uint64_t after = 0;
    for (int i = 0; i < 200; ++i) {
      log->append("web", EventType::exited, {{"pad", std::string(60, 'x')}});
      co_await log->flush();
      // The follower reads every few events: some of what it needs is only on disk.
      if (i % 2 == 1) {
        for (auto& ev : log->since(after, 1000)) {
          seen.push_back(ev.seq);
          after = ev.seq;
        }
      }
    }
    stop.request_stop();
  });
  ASSERT_EQ(seen.size(), 200u);
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 1);
  EXPECT_GE(log->stats().rotations, 3u);
}

TEST_F(EventRotationTest, ReopenAfterRotationContinuesNumbering) {
  {
    auto log = open_log(limits(4096, 3));
    ASSERT_TRUE(log);
    append_flushed(*log, 60);
    ASSERT_GE(log->stats().rotations, 1u);
  }
  auto rotated = actors::read_event_file(actors::event_file_path(path_, 1), 0);
  ASSERT_FALSE(rotated.empty());
  const std::uint64_t last_rotated = rotated.back().seq;
  // An empty current file (a rotation just before a crash) must not restart at seq 1.
  std::ofstream(path_, std::ios::trunc).close();
  auto log = open_log(limits(4096, 3));
  ASSERT_TRUE(log);
  EXPECT_EQ(log->last_seq(), last_rotated) << "numbering continues from the rotated file";
  append_flushed(*log, 1);
  auto all = actors::read_events(path_, last_rotated);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all.back().seq, last_rotated + 1);
}

TEST_F(EventRotationTest, OldRotatedFilesGoAfterMaxAgeAndASmallerKeepTrimsAtOnce) {
  auto log = open_log(limits(4096, 5));
  ASSERT_TRUE(log);
  append_flushed(*log, 160);
  ASSERT_TRUE(exists(4));
  log->set_limits(limits(4096, 2));
  EXPECT_TRUE(exists(1));
  EXPECT_FALSE(exists(2));
  EXPECT_FALSE(exists(4));
  // Age: .1 last written two days ago, with max_age one day, goes at the next batch.
  const std::string one = actors::event_file_path(path_, 1);
  const auto two_days_ago = std::filesystem::file_time_type::clock::now() - std::chrono::hours(48);
  std::filesystem::last_write_time(one, two_days_ago);
  log->set_limits(limits(1 << 20, 2, 24LL * 3600 * 1000));  // no size rotation meanwhile
  append_flushed(*log, 1);
  EXPECT_FALSE(exists(1));
  EXPECT_TRUE(exists(0));
}

TEST_F(EventRotationTest, CurrentFileOlderThanMaxAgeRotatesAtOpen) {
  std::ofstream(path_) << R"({"seq":1,"time":"2020-01-01T00:00:00.000Z","service":null,"kind":"daemon_started"})"
                       << "\n";
  auto log = open_log(limits(1 << 20, 3, 24LL * 3600 * 1000));
  ASSERT_TRUE(log);
  EXPECT_EQ(log->stats().rotations, 1u);
  EXPECT_EQ(log->last_seq(), 1u);
  append_flushed(*log, 1);
  auto all = actors::read_events(path_, 0);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].seq, 2u);
}

TEST(UtcMs, RoundTrips) {
  EXPECT_EQ(actors::parse_utc_ms(actors::format_utc_ms(1'764'000'123'456)), 1'764'000'123'456);
  EXPECT_FALSE(actors::parse_utc_ms("2026-13-xxT00:00:00.000Z"));
  EXPECT_FALSE(actors::parse_utc_ms(""));
}

TEST(RefusalLimiter, BurstThenSuppressedThenOneSummary) {
  actors::RefusalLimiter::Options o;
  o.burst = 3;
  o.global_burst = 100;
  o.window_ms = 60'000;
  actors::RefusalLimiter lim(o);
  int recorded = 0;
  for (int i = 0; i < 50; ++i) recorded += lim.admit("10.0.0.1", 1000).record;
  EXPECT_EQ(recorded, 3);
  // Another source has its own budget.
  EXPECT_TRUE(lim.admit("10.0.0.2", 1000).record);
  // A minute later: recorded again, with the 47 suppressed ones summarised once.
  auto d = lim.admit("10.0.0.1", 61'000);
  EXPECT_TRUE(d.record);
  ASSERT_EQ(d.summaries.size(), 1u);
  EXPECT_EQ(d.summaries[0].source, "10.0.0.1");
  EXPECT_EQ(d.summaries[0].count, 47u);
  EXPECT_TRUE(lim.admit("10.0.0.1", 61'000).summaries.empty());
}

TEST(RefusalLimiter, GlobalBudgetAndBoundedTable) {
  actors::RefusalLimiter::Options o;
  o.burst = 2;
  o.global_burst = 10;
  o.max_sources = 8;
  actors::RefusalLimiter lim(o);
  int recorded = 0;
  for (int i = 0; i < 1000; ++i) recorded += lim.admit("10.1." + std::to_string(i), 5000).record;
  EXPECT_EQ(recorded, 10) << "many sources together stay within the global budget";
  EXPECT_LE(lim.sources(), 8u);
  auto d = lim.admit("10.2.0.1", 5000 + 60'000);
  EXPECT_TRUE(d.record);
  bool global = false;
  for (auto& s : d.summaries) global |= s.source.empty() && s.count == 990;
  EXPECT_TRUE(global);
}

TEST(CappedClientText, CutsAndStripsControls) {
  EXPECT_EQ(actors::capped_client_text("a\nb\x1b[31m"), "a?b?[31m");
  const std::string huge(100'000, 'z');
  const std::string capped = actors::capped_client_text(huge);
  EXPECT_EQ(capped.size(), 128u + 3u);
  EXPECT_EQ(capped.substr(128), "\xE2\x80\xA6");
  // Never half a UTF-8 character.
  std::string accents;
  for (int i = 0; i < 100; ++i) accents += "\xC3\xA9";
  const std::string cut = actors::capped_client_text(accents, 9);
  EXPECT_EQ(cut, "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xE2\x80\xA6");
  EXPECT_EQ(actors::source_address("127.0.0.1:5000"), "127.0.0.1");
  EXPECT_EQ(actors::source_address("[::1]:5000"), "[::1]");
  EXPECT_EQ(actors::source_address("unix"), "unix");
}

}  // namespace
