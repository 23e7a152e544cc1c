// LogStore without a capturer: bytes are written the way LogActor writes them (at
// current_offset() of current_fd(), then commit()), into real files in a temp dir.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "actors/log_store.hpp"
#include "run_loop.hpp"
#include "runtime/ops_wait.hpp"

using actors::LogStore;
using actors::Stream;
using runtime::Task;

namespace {

class LogStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dockless-logstore-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = std::string(tmpl) + "/logs/web";
  }
  void TearDown() override { std::filesystem::remove_all(std::filesystem::path(dir_).parent_path().parent_path()); }

  std::unique_ptr<LogStore> open(std::uint64_t max, int keep) {
    auto r = LogStore::open(dir_, max, keep);
    EXPECT_TRUE(r.ok()) << r.message();
    return r.ok() ? std::move(r.value()) : nullptr;
  }
  // As the capturer does: never more than room() per write.
  static void put(LogStore& s, Stream st, std::string_view data, std::int64_t ms = 1000) {
    while (!data.empty()) {
      const int fd = s.current_fd(st);
      const auto n = std::min<std::size_t>(data.size(), s.room(st));
      ASSERT_EQ(::pwrite(fd, data.data(), n, static_cast<off_t>(s.current_offset(st))), static_cast<ssize_t>(n));
      s.commit(st, n, ms);
      data.remove_prefix(n);
    }
  }
  static std::string read_all(LogStore& s, Stream st, std::uint64_t from, std::uint64_t* skipped = nullptr) {
    std::string out;
    std::uint64_t pos = from;
    for (int i = 0; i < 100000; ++i) {
      auto c = s.read(st, pos, 1000);
      EXPECT_TRUE(c.ok());
      if (skipped) *skipped += c->skipped;
      if (c->data.empty()) break;
      out += c->data;
      pos = c->pos + c->data.size();
    }
    return out;
  }
  int count_logs() {
    int n = 0;
    for (auto& e : std::filesystem::directory_iterator(dir_)) {
      auto name = e.path().filename().string();
      if (name.rfind("stdout.log", 0) == 0 && name.find(".idx") == std::string::npos) ++n;
    }
    return n;
  }
  static std::string numbered(int from, int to) {
    std::string s;
    for (int i = from; i < to; ++i) {
      s += "line ";
      s += std::to_string(i);
      s += '\n';
    }
    return s;
  }
  std::string dir_;
};

TEST_F(LogStoreTest, WritesReadsAndKeepsStreamsApart) {
  auto s = open(1 << 20, 3);
  put(*s, Stream::out, "hello\n");
  put(*s, Stream::err, "oops\n");
  EXPECT_EQ(read_all(*s, Stream::out, 0), "hello\n");
  EXPECT_EQ(read_all(*s, Stream::err, 0), "oops\n");
  EXPECT_EQ(s->end(Stream::out), 6u);
  EXPECT_EQ(s->stats(Stream::out).bytes_written, 6u);
  std::ifstream f(dir_ + "/stderr.log");
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str(), "oops\n");
}

TEST_F(LogStoreTest, RotationKeepsExactlyNFilesAndFollowersSkipForward) {
  auto s = open(1000, 3);
  const std::string all = numbered(0, 2000);  // ~19 KB: many rotations
  for (std::size_t i = 0; i < all.size(); i += 77) put(*s, Stream::out, std::string_view(all).substr(i, 77));
  EXPECT_EQ(count_logs(), 3);
  EXPECT_GE(s->stats(Stream::out).rotations, 17u);
  EXPECT_EQ(s->end(Stream::out), all.size());
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/stdout.log.2.idx"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/stdout.log.3"));
  const std::uint64_t b = s->begin(Stream::out);
  EXPECT_EQ(b % 1000, 0u);  // files end exactly at max_size
  std::uint64_t skipped = 0;
  EXPECT_EQ(read_all(*s, Stream::out, 0, &skipped), all.substr(b));
  EXPECT_EQ(skipped, b);
  // Every kept rotated file is its slice of the stream.
  std::ifstream f(dir_ + "/stdout.log.1");
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str(), all.substr(s->end(Stream::out) / 1000 * 1000 - 1000, 1000));
}

TEST_F(LogStoreTest, PositionsContinueAfterReopen) {
  const std::string all = numbered(0, 500);
  std::uint64_t end_before, begin_before;
  {
    auto s = open(1000, 4);
    put(*s, Stream::out, all);
    end_before = s->end(Stream::out);
    begin_before = s->begin(Stream::out);
  }
  auto s = open(1000, 4);
  EXPECT_EQ(s->end(Stream::out), end_before);
  EXPECT_EQ(s->begin(Stream::out), begin_before);
  put(*s, Stream::out, "more\n");
  EXPECT_EQ(read_all(*s, Stream::out, end_before), "more\n");
  EXPECT_EQ(read_all(*s, Stream::out, s->begin(Stream::out)), (all + "more\n").substr(s->begin(Stream::out)));
  // A smaller keep on reload removes the oldest files at once.
  s->set_limits(1000, 2);
  EXPECT_EQ(count_logs(), 2);
  EXPECT_EQ(read_all(*s, Stream::out, 0), (all + "more\n").substr(s->begin(Stream::out)));
}

TEST_F(LogStoreTest, TailLinesAcrossRotations) {
  auto s = open(100, 50);  // lines straddle file boundaries
  const std::string all = numbered(0, 100);
  put(*s, Stream::out, all);
  auto tail = [&](std::size_t n) { return read_all(*s, Stream::out, s->position_of_tail_lines(Stream::out, n)); };
  EXPECT_EQ(tail(3), numbered(97, 100));
  EXPECT_EQ(tail(40), numbered(60, 100));
  EXPECT_EQ(tail(0), "");
  EXPECT_EQ(tail(1000), all);
  put(*s, Stream::out, "partial");  // an unterminated last line counts as a line
  EXPECT_EQ(tail(2), "line 99\npartial");
}

TEST_F(LogStoreTest, PositionOfTime) {
  auto s = open(64, 50);
  put(*s, Stream::out, std::string(40, 'a'), 10'000);
  put(*s, Stream::out, std::string(40, 'b'), 10'100);  // within 250 ms: no record of its own
  put(*s, Stream::out, std::string(40, 'c'), 20'000);
  put(*s, Stream::out, std::string(40, 'd'), 30'000);
  EXPECT_EQ(s->position_of_time(Stream::out, 0), 0u);
  EXPECT_EQ(s->position_of_time(Stream::out, 10'200), 0u);  // a and b share an interval
  EXPECT_EQ(s->position_of_time(Stream::out, 15'000), 80u);
  EXPECT_EQ(s->position_of_time(Stream::out, 20'000), 80u);
  EXPECT_EQ(s->position_of_time(Stream::out, 25'000), 120u);
  EXPECT_EQ(s->position_of_time(Stream::out, 40'000), s->end(Stream::out));
  EXPECT_EQ(read_all(*s, Stream::out, s->position_of_time(Stream::out, 25'000)), std::string(40, 'd'));
}

// On the loop, the oldest pair is renamed to ".gone" names and unlinked through the
// ring, so its pages are not freed on the loop thread; a second rotation while that
// unlink is in flight unlinks in place. Either way exactly `keep` files stay and the
// stream reads back whole.
TEST_F(LogStoreTest, RotationOnTheLoopUnlinksTheOldestThroughTheRing) {
  auto s = open(1000, 2);
  const std::string all = numbered(0, 1000);
  bool renamed_away = false;
  bool gone_removed = false;
  run_loop([&]() -> Task<void> {
    put(*s, Stream::out, std::string_view(all).substr(0, 2500));  // rotations 1 and 2
    renamed_away = std::filesystem::exists(dir_ + "/stdout.log.gone") &&
                   !std::filesystem::exists(dir_ + "/stdout.log.2");
    put(*s, Stream::out, std::string_view(all).substr(2500));  // more, some while in flight
    for (int i = 0; i < 400; ++i) {
      if (!std::filesystem::exists(dir_ + "/stdout.log.gone") &&
          !std::filesystem::exists(dir_ + "/stdout.log.gone.idx")) {
        gone_removed = true;
        break;
      }
      co_await runtime::sleep_for(std::chrono::milliseconds(5));
    }
  });
  EXPECT_TRUE(renamed_away);
  EXPECT_TRUE(gone_removed);
  EXPECT_EQ(count_logs(), 2);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/stdout.log.2"));
  std::uint64_t skipped = 0;
  EXPECT_EQ(read_all(*s, Stream::out, 0, &skipped), all.substr(s->begin(Stream::out)));
  EXPECT_EQ(skipped, s->begin(Stream::out));
}

// A daemon that died between the rename and the unlink leaves the pair behind.
TEST_F(LogStoreTest, OpenRemovesAPairLeftGone) {
  std::filesystem::create_directories(dir_);
  for (const char* name : {"/stdout.log.gone", "/stdout.log.gone.idx", "/stderr.log.gone"})
    std::ofstream(dir_ + name) << "old";
  auto s = open(1000, 2);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/stdout.log.gone"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/stdout.log.gone.idx"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/stderr.log.gone"));
  EXPECT_EQ(s->end(Stream::out), 0u);
}

TEST_F(LogStoreTest, WaitGrowthWakesEveryFollowerAndStops) {
  auto s = open(1 << 20, 2);
  int woken = 0, cancelled = 0;
  run_loop([&]() -> Task<void> {
    std::stop_source stop, never;
    auto follower = [&](std::stop_token t) -> Task<void> {
      auto r = co_await s->wait_growth(Stream::out, 0, t);
      if (r.ok()) ++woken;
      else if (r.error() == ECANCELED) ++cancelled;
    };
    for (int i = 0; i < 10; ++i) runtime::spawn(follower(never.get_token()));
    runtime::spawn(follower(stop.get_token()));
    co_await runtime::sleep_for(std::chrono::milliseconds(10));
    put(*s, Stream::err, "x");  // another stream: nobody here cares
    co_await runtime::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(woken, 0);
    stop.request_stop();
    put(*s, Stream::out, "y");
    for (int i = 0; i < 20 && woken < 10; ++i) co_await runtime::sleep_for(std::chrono::milliseconds(5));
  });
  EXPECT_EQ(woken, 10);
  EXPECT_EQ(cancelled, 1);
}

// A removed service's followers used to depend on someone ending them before the store
// was destroyed; now the owner's close() wakes them, and a store shared with a follower
// stays valid after its owner let go.
TEST_F(LogStoreTest, CloseWakesEveryFollowerAndLaterWaitsFailAtOnce) {
  std::shared_ptr<LogStore> s = open(1 << 20, 2);
  int shut = 0;
  run_loop([&]() -> Task<void> {
    std::stop_source never;
    auto follower = [&](std::shared_ptr<LogStore> own) -> Task<void> {
      auto r = co_await own->wait_growth(Stream::out, own->end(Stream::out), never.get_token());
      if (!r.ok() && r.error() == ESHUTDOWN) ++shut;
    };
    for (int i = 0; i < 5; ++i) runtime::spawn(follower(s));
    co_await runtime::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(shut, 0);
    EXPECT_FALSE(s->closed());
    std::weak_ptr<LogStore> alive = s;
    s->close();
    s.reset();  // the owner drops it: the parked followers keep it
    EXPECT_FALSE(alive.expired());
    for (int i = 0; i < 20 && shut < 5; ++i) co_await runtime::sleep_for(std::chrono::milliseconds(5));
    EXPECT_TRUE(alive.expired());
  });
  EXPECT_EQ(shut, 5);
  auto again = open(1 << 20, 2);
  put(*again, Stream::out, "x");
  again->close();
  run_loop([&]() -> Task<void> {
    // Growth already there still resolves (a reader drains); a wait beyond it fails.
    EXPECT_TRUE((co_await again->wait_growth(Stream::out, 0, {})).ok());
    auto r = co_await again->wait_growth(Stream::out, 1, {});
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error(), ESHUTDOWN);
  });
}

}  // namespace
