// EventLog: real files in a temp dir, a real writer actor, a real kill -9.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "actors/event_log.hpp"
#include "run_loop.hpp"
#include "runtime/ops_wait.hpp"

using actors::EventLog;
using runtime::Task;

namespace {

class EventLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dockless-events-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/events.log";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<EventLog> open_log(std::size_t ring = EventLog::kDefaultRingCapacity) {
    auto r = EventLog::open(path_, ring);
    EXPECT_TRUE(r.ok()) << r.message();
    return r.ok() ? std::move(r.value()) : nullptr;
  }
  std::string slurp() {
    std::ifstream f(path_, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  void write_raw(const std::string& s) {
    std::ofstream f(path_, std::ios::binary | std::ios::trunc);
    f << s;
  }

  std::string dir_, path_;
};

// Appends with `fn`, then flushes and stops the writer.
template <class F>
void with_writer(EventLog& log, F fn) {
  run_loop([&]() -> Task<void> {
    std::stop_source stop;
    runtime::spawn(log.run(stop.get_token()), "event-writer");
    co_await fn();
    co_await log.flush();
    stop.request_stop();
  });
}

TEST_F(EventLogTest, AppendAndReadBack) {
  auto log = open_log();
  ASSERT_TRUE(log);
  with_writer(*log, [&]() -> Task<void> {
    EXPECT_EQ(log->append("web", actors::EventType::started, {{"pid", 42}}), 1u);
    EXPECT_EQ(log->append(std::nullopt, actors::EventType::reload_succeeded,
                          {{"seq", 99}, {"kind", "x"}, {"ok", true}}),
              2u);
    EXPECT_EQ(log->append("db", actors::EventType::health, "just a string"), 3u);
    co_return;
  });
  EXPECT_EQ(log->durable_seq(), 3u);
  auto events = actors::read_events(path_, 0);
  ASSERT_EQ(events.size(), 3u);
  auto a = events[0].parse();
  EXPECT_EQ(a["seq"], 1);
  EXPECT_EQ(a["service"], "web");
  EXPECT_EQ(a["kind"], "started");
  EXPECT_EQ(a["pid"], 42);
  EXPECT_EQ(a["time"].get<std::string>().size(), 24u);  // 2026-11-23T13:30:00.123Z
  EXPECT_EQ(events[0].line.rfind("{\"seq\":1,\"time\":", 0), 0u) << events[0].line;
  auto b = events[1].parse();
  EXPECT_TRUE(b["service"].is_null());
  EXPECT_EQ(b["seq"], 2);  // reserved keys cannot be overridden by details
  EXPECT_EQ(b["kind"], "reload_succeeded");
  EXPECT_EQ(b["detail_seq"], 99);
  EXPECT_EQ(b["detail_kind"], "x");
  EXPECT_EQ(events[2].parse()["detail"], "just a string");
  EXPECT_EQ(log->stats().file_size, slurp().size());
  EXPECT_EQ(log->since(1, 10).size(), 2u);
}

TEST_F(EventLogTest, SeqContinuesAfterReopen) {
  {
    auto log = open_log();
    with_writer(*log, [&]() -> Task<void> {
      for (int i = 0; i < 5; ++i) log->append("s", actors::EventType::health);
      co_return;
    });
  }
  auto log = open_log();
  EXPECT_EQ(log->last_seq(), 5u);
  EXPECT_EQ(log->since(0, 100).size(), 5u);  // the tail is back in memory
  with_writer(*log, [&]() -> Task<void> {
    EXPECT_EQ(log->append("s", actors::EventType::health), 6u);
    co_return;
  });
  auto events = actors::read_events(path_, 0);
  ASSERT_EQ(events.size(), 6u);
  for (std::size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].seq, i + 1);
}

TEST_F(EventLogTest, TornLastLineIsTruncatedOnOpen) {
  const std::string good = "{\"seq\":1,\"kind\":\"a\"}\n{\"seq\":2,\"kind\":\"b\"}\n";
  write_raw(good + "{\"seq\":3,\"ki");
  auto log = open_log();
  EXPECT_EQ(log->stats().truncated_bytes, 12u);
  EXPECT_EQ(slurp(), good);
  EXPECT_EQ(log->last_seq(), 2u);
  with_writer(*log, [&]() -> Task<void> {
    EXPECT_EQ(log->append("x", actors::EventType::exited), 3u);
    co_return;
  });
  auto events = actors::read_events(path_, 0);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].parse()["kind"], "exited");
}

TEST_F(EventLogTest, TornOnlyLineLeavesEmptyFile) {
  write_raw("{\"seq\":1,\"ki");
  auto log = open_log();
  EXPECT_EQ(slurp(), "");
  EXPECT_EQ(log->last_seq(), 0u);
}

TEST_F(EventLogTest, CorruptLineInTheMiddleIsSkipped) {
  write_raw("{\"seq\":1,\"kind\":\"a\"}\ngarbage{{\n" + std::string(5, '\0') +
            "\n{\"seq\":3,\"kind\":\"c\"}\n");
  auto log = open_log();
  EXPECT_EQ(log->stats().corrupt_lines, 2u);
  EXPECT_EQ(log->last_seq(), 3u);
  std::uint64_t corrupt = 0;
  auto events = actors::read_events(path_, 0, SIZE_MAX, &corrupt);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].seq, 3u);
  EXPECT_EQ(corrupt, 2u);
}

TEST_F(EventLogTest, BurstIsGroupCommitted) {
  auto log = open_log();
  constexpr int kEvents = 10'000;
  with_writer(*log, [&]() -> Task<void> {
    for (int i = 0; i < kEvents; ++i) {
      log->append("svc", actors::EventType::health, {{"i", i}});
      // Let the writer run now and then, so batches form while fsyncs are in flight.
      if (i % 500 == 0) co_await runtime::yield();
    }
  });
  const auto& st = log->stats();
  EXPECT_EQ(st.appended, static_cast<std::uint64_t>(kEvents));
  EXPECT_GE(st.fsyncs, 1u);
  EXPECT_LT(st.fsyncs, 200u) << "one fsync per batch, not per event";
  EXPECT_LE(st.fsyncs, st.batches);
  auto events = actors::read_events(path_, 0);
  ASSERT_EQ(events.size(), static_cast<std::size_t>(kEvents));
  for (int i = 0; i < kEvents; ++i) ASSERT_EQ(events[i].seq, static_cast<std::uint64_t>(i + 1));
  EXPECT_EQ(st.bytes_written, slurp().size());
}

TEST_F(EventLogTest, IdleWriterDoesNoIo) {
  auto log = open_log();
  with_writer(*log, [&]() -> Task<void> {
    log->append("a", actors::EventType::health);
    co_await log->flush();
    const auto before = log->stats().fsyncs;
    co_await runtime::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(log->stats().fsyncs, before);
  });
  EXPECT_EQ(log->stats().fsyncs, 1u);
}

// A crash loop's pace: a few events every millisecond or so. Each batch is written at
// once (a kill -9 keeps it), but the fdatasyncs are paced by kSyncInterval; the first
// after a quiet spell and a flush() are not delayed.
TEST_F(EventLogTest, SustainedAppendsAreWrittenAtOnceAndSyncedPaced) {
  auto log = open_log();
  using namespace std::chrono_literals;
  constexpr int kRounds = 300;
  int written_before_durable = 0;
  std::chrono::steady_clock::duration elapsed{};
  with_writer(*log, [&]() -> Task<void> {
    log->append("svc", actors::EventType::health, {{"i", -1}});
    // Bounded generously: a loaded disk may take a while; what matters is that it syncs
    // without further appends or a flush to push it.
    for (int i = 0; i < 2000 && log->durable_seq() < 1; ++i) co_await runtime::sleep_for(1ms);
    EXPECT_EQ(log->durable_seq(), 1u) << "the first event after a quiet spell is synced on its own";
    const auto t0 = std::chrono::steady_clock::now();
    for (int round = 0; round < kRounds; ++round) {
      const std::uint64_t seq = log->append("svc", actors::EventType::exited, {{"i", round}});
      log->append("svc", actors::EventType::started, {{"i", round}});
      co_await runtime::sleep_for(1ms);
      // Written (in the page cache) while its sync is still to come: the write does not
      // wait for the paced fdatasync. Counted, not required of every round: a loaded
      // machine may delay the write past a sync now and then.
      if (round % 10 == 0 && log->durable_seq() < seq &&
          slurp().find("\"seq\":" + std::to_string(seq) + ",") != std::string::npos)
        ++written_before_durable;
    }
    elapsed = std::chrono::steady_clock::now() - t0;
    co_await log->flush();
    EXPECT_EQ(log->durable_seq(), log->last_seq()) << "flush() leaves everything durable";
  });
  const auto& st = log->stats();
  EXPECT_GT(written_before_durable, 0) << "no event was ever seen written before it was synced";
  // The first sync, at most one per 100 ms of appends (however long the machine made them
  // take), the flush's; one more for a pacing interval cut by the end.
  const auto allowed = 3 + static_cast<std::uint64_t>(elapsed / 100ms);
  EXPECT_LE(st.fsyncs, allowed) << "over " << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
                                << " ms of appends";
  EXPECT_LT(st.fsyncs, static_cast<std::uint64_t>(kRounds) / 4) << "not one sync per batch";
  EXPECT_EQ(actors::read_events(path_, 0).size(), static_cast<std::size_t>(2 * kRounds + 1));
}

TEST_F(EventLogTest, FollowersAreWokenAndCancelled) {
  auto log = open_log();
  int woken = 0, cancelled = 0;
  with_writer(*log, [&]() -> Task<void> {
    std::stop_source never, cancel;
    auto follower = [&](std::stop_token st) -> Task<void> {
      auto r = co_await log->wait_after(0, st);
      if (r.ok()) {
        EXPECT_FALSE(log->since(0, 10).empty());
        ++woken;
      } else {
        EXPECT_EQ(r.error(), ECANCELED);
        ++cancelled;
      }
    };
    for (int i = 0; i < 20; ++i) runtime::spawn(follower(never.get_token()), "follower");
    runtime::spawn(follower(cancel.get_token()), "cancelled-follower");
    co_await runtime::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(woken, 0);
    cancel.request_stop();
    log->append("svc", actors::EventType::started);
    for (int i = 0; i < 10 && woken < 20; ++i) co_await runtime::sleep_for(std::chrono::milliseconds(5));
  });
  EXPECT_EQ(woken, 20);
  EXPECT_EQ(cancelled, 1);
}

TEST_F(EventLogTest, SinceReadsOlderEventsFromTheFile) {
  auto log = open_log(/*ring=*/10);
  with_writer(*log, [&]() -> Task<void> {
    for (int i = 0; i < 50; ++i) log->append("s", actors::EventType::health, {{"i", i}});
    co_return;
  });
  auto ev = log->since(5, 1000);
  ASSERT_EQ(ev.size(), 45u);
  for (std::size_t i = 0; i < ev.size(); ++i) EXPECT_EQ(ev[i].seq, 6 + i);
  EXPECT_EQ(log->since(5, 7).size(), 7u);
  EXPECT_EQ(log->since(45, 1000).size(), 5u);
  EXPECT_TRUE(log->since(50, 1000).empty());
}

// ENOSPC: appends never block, the events wait in memory, the writer retries every
// second, and once space is freed everything (including a line cut by a partial write)
// reaches the file whole.
TEST_F(EventLogTest, FullDiskKeepsEventsAndRetries) {
  const std::string mnt = dir_ + "/tiny";
  std::filesystem::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  struct Unmount {
    std::string dir;
    ~Unmount() { ::umount2(dir.c_str(), MNT_DETACH); }
  } unmount{mnt};
  const std::string filler = mnt + "/filler";
  {
    std::ofstream f(filler, std::ios::binary);
    f << std::string(60 * 1024, 'f');
  }
  path_ = mnt + "/events.log";
  auto log = open_log();
  ASSERT_TRUE(log);
  constexpr int kEvents = 200;
  with_writer(*log, [&]() -> Task<void> {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kEvents; ++i) {
      log->append("svc", actors::EventType::health, {{"pad", std::string(100, 'p')}, {"i", i}});
      if (i % 20 == 0) co_await runtime::yield();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
    for (int i = 0; i < 100 && log->stats().write_errors == 0; ++i)
      co_await runtime::sleep_for(std::chrono::milliseconds(10));
    EXPECT_GT(log->stats().write_errors, 0u);
    EXPECT_LT(log->durable_seq(), static_cast<std::uint64_t>(kEvents));
    EXPECT_EQ(log->since(0, 1000).size(), static_cast<std::size_t>(kEvents));  // all in memory
    std::filesystem::remove(filler);
    // with_writer's flush() now waits for the retry (after <= 1 s).
  });
  EXPECT_EQ(log->durable_seq(), static_cast<std::uint64_t>(kEvents));
  std::uint64_t corrupt = 0;
  auto events = actors::read_events(path_, 0, SIZE_MAX, &corrupt);
  EXPECT_EQ(corrupt, 0u);
  ASSERT_EQ(events.size(), static_cast<std::size_t>(kEvents));
  for (int i = 0; i < kEvents; ++i) EXPECT_EQ(events[i].parse()["i"], i);
}

// A child appends in a loop and is SIGKILLed at a random moment (possibly mid-write);
// after reopening, every line parses and seqs strictly increase. Five rounds, one file.
TEST_F(EventLogTest, SurvivesKillMinus9MidWrite) {
  std::mt19937 rng(std::random_device{}());
  std::uint64_t prev_total = 0;
  { std::ofstream touch(path_); }
  for (int round = 0; round < 5; ++round) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto r = EventLog::open(path_);
      if (!r.ok()) _exit(3);
      auto& log = *r.value();
      runtime::Reactor reactor;
      reactor.run([&]() -> Task<void> {
        std::stop_source stop;
        runtime::spawn(log.run(stop.get_token()), "writer");
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        for (int i = 0; std::chrono::steady_clock::now() < deadline; ++i) {
          log.append("svc", actors::EventType::health,
                     {{"payload", std::string(static_cast<std::size_t>(i % 300), 'x')}});
          if (i % 64 == 0) co_await runtime::yield();
        }
      }());
      _exit(0);
    }
    // Kill only once the child is writing (its start-up, parsing the tail, is slow under
    // ASan), at a random moment after that.
    const auto size_before = std::filesystem::file_size(path_);
    for (int i = 0; i < 1000 && std::filesystem::file_size(path_) == size_before; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 200)(rng)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child ended early: " << status;

    auto log = open_log();
    ASSERT_TRUE(log);
    EXPECT_EQ(log->stats().corrupt_lines, 0u);
    std::ifstream f(path_, std::ios::binary);
    std::string line;
    std::uint64_t last = 0, count = 0;
    while (std::getline(f, line)) {
      auto ev = actors::parse_event_line(line);
      ASSERT_TRUE(ev) << "round " << round << " line " << count << ": " << line.substr(0, 80);
      ASSERT_GT(ev->seq, last);
      last = ev->seq;
      ++count;
    }
    EXPECT_EQ(last, log->last_seq());
    EXPECT_GT(count, prev_total) << "the child wrote nothing in round " << round;
    prev_total = count;
  }
}

}  // namespace
