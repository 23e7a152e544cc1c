// TriggerQueue's file: records folded at open, a torn tail cut, compaction keeping what is needed.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "actors/trigger_queue.hpp"
#include "run_loop.hpp"
#include "runtime/scope.hpp"

using actors::QueuedState;
using actors::TriggerEvent;
using actors::TriggerQueue;

namespace {

// std::string("d") + to_string: "literal" + string trips GCC 12's -Wrestrict false positive.
std::string done_id(std::size_t i) {
  std::string id = "d";
  id.append(std::to_string(i));
  return id;
}

class TriggerQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dockless-tqueue-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/queue.log";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static TriggerEvent event(const std::string& id) {
    TriggerEvent e;
    e.id = id;
    e.trigger = "t1";
    e.provider = "github";
    e.event = "issues.opened";
    e.received = "2026-12-07T10:00:00.000Z";
    e.headers = {{"X-GitHub-Event", "issues"}};
    e.body = R"({"action":"opened"})";
    return e;
  }
  std::unique_ptr<TriggerQueue> open(std::size_t max_pending = TriggerQueue::kDefaultMaxPending) {
    auto q = TriggerQueue::open(path_, max_pending);
    EXPECT_TRUE(q.ok());
    return q.ok() ? std::move(*q) : nullptr;
  }
  std::string contents() const {
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::string dir_;
  std::string path_;
};

TEST_F(TriggerQueueTest, RecordsSurviveReopen) {
  {
    auto q = open();
    ASSERT_TRUE(q->append_sync(TriggerQueue::add_record(event("a"))).ok());
    ASSERT_TRUE(q->append_sync(TriggerQueue::add_record(event("b"))).ok());
    ASSERT_TRUE(q->append_sync(TriggerQueue::add_record(event("c"))).ok());
    ASSERT_TRUE(q->append_sync(TriggerQueue::attempt_record("a", 1, "exit 1")).ok());
    ASSERT_TRUE(q->append_sync(TriggerQueue::done_record("b")).ok());
    ASSERT_TRUE(q->append_sync(TriggerQueue::dead_record("c", "exit 2")).ok());
  }
  auto q = open();
  ASSERT_EQ(q->stats().records, 6u);
  ASSERT_EQ(q->pending_count(), 1u);
  const TriggerEvent* a = q->find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->attempts, 1);
  EXPECT_EQ(a->last_error, "exit 1");
  EXPECT_EQ(a->body, R"({"action":"opened"})");
  EXPECT_EQ(a->headers["X-GitHub-Event"], "issues");
  EXPECT_EQ(q->find("b")->state, QueuedState::done);
  EXPECT_EQ(q->find("c")->state, QueuedState::dead);
  EXPECT_EQ(q->in_state(QueuedState::dead).size(), 1u);
  // A replay sends a dead event back to pending with its attempts reset.
  ASSERT_TRUE(q->append_sync(TriggerQueue::replay_record("c")).ok());
  EXPECT_EQ(q->find("c")->state, QueuedState::pending);
  EXPECT_EQ(q->find("c")->attempts, 0);
}

TEST_F(TriggerQueueTest, TornLastRecordIsCutNotFolded) {
  {
    auto q = open();
    ASSERT_TRUE(q->append_sync(TriggerQueue::add_record(event("a"))).ok());
  }
  const std::string whole = contents();
  {
    // A crash in the middle of the second record's write.
    std::ofstream out(path_, std::ios::app);
    const std::string rec = TriggerQueue::add_record(event("b"));
    out << rec.substr(0, rec.size() / 2);
  }
  auto q = open();
  EXPECT_EQ(q->pending_count(), 1u);
  EXPECT_EQ(q->find("b"), nullptr);
  EXPECT_GT(q->stats().truncated_bytes, 0u);
  EXPECT_EQ(contents(), whole);
  // Appending after the cut gives well-formed lines again.
  ASSERT_TRUE(q->append_sync(TriggerQueue::add_record(event("c"))).ok());
  auto again = open();
  EXPECT_EQ(again->pending_count(), 2u);
  EXPECT_EQ(again->stats().corrupt_lines, 0u);
}

TEST_F(TriggerQueueTest, CorruptMiddleLineIsSkipped) {
  {
    std::ofstream out(path_);
    out << TriggerQueue::add_record(event("a")) << "\n" << "{not json\n"
        << TriggerQueue::add_record(event("b")) << "\n";
  }
  auto q = open();
  EXPECT_EQ(q->pending_count(), 2u);
  EXPECT_EQ(q->stats().corrupt_lines, 1u);
}

TEST_F(TriggerQueueTest, CompactionKeepsPendingDeadAndRecentDone) {
  const std::size_t total = TriggerQueue::kKeepDone + 20;
  {
    auto q = open(total + 10);
    for (std::size_t i = 0; i < total; ++i) {
      const std::string id = done_id(i);
      ASSERT_TRUE(q->append_sync(TriggerQueue::add_record(event(id))).ok());
      ASSERT_TRUE(q->append_sync(TriggerQueue::done_record(id)).ok());
    }
    ASSERT_TRUE(q->append_sync(TriggerQueue::add_record(event("p"))).ok());
    ASSERT_TRUE(q->append_sync(TriggerQueue::attempt_record("p", 2, "refused")).ok());
    ASSERT_TRUE(q->append_sync(TriggerQueue::add_record(event("x"))).ok());
    ASSERT_TRUE(q->append_sync(TriggerQueue::dead_record("x", "exit 1")).ok());
    const auto before = std::filesystem::file_size(path_);
    ASSERT_TRUE(q->compact().ok());
    EXPECT_LT(std::filesystem::file_size(path_), before);
    EXPECT_EQ(q->find("d0"), nullptr);
    ASSERT_NE(q->find(done_id(total - 1)), nullptr);
    // Appends after the compaction land in the new file.
    ASSERT_TRUE(q->append_sync(TriggerQueue::add_record(event("n"))).ok());
  }
  auto q = open();
  EXPECT_EQ(q->find("d19"), nullptr);
  EXPECT_EQ(q->in_state(QueuedState::done).size(), TriggerQueue::kKeepDone);
  ASSERT_NE(q->find("p"), nullptr);
  EXPECT_EQ(q->find("p")->attempts, 2);
  EXPECT_EQ(q->find("p")->state, QueuedState::pending);
  EXPECT_EQ(q->find("x")->state, QueuedState::dead);
  EXPECT_EQ(q->find("n")->state, QueuedState::pending);
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
}

TEST_F(TriggerQueueTest, FullAtMaxPending) {
  auto q = open(2);
  ASSERT_TRUE(q->append_sync(TriggerQueue::add_record(event("a"))).ok());
  EXPECT_EQ(q->full_reason(0), "");
  ASSERT_TRUE(q->append_sync(TriggerQueue::add_record(event("b"))).ok());
  EXPECT_EQ(q->full_reason(0), "the trigger queue holds 2 pending events");
  ASSERT_TRUE(q->append_sync(TriggerQueue::done_record("a")).ok());
  EXPECT_EQ(q->full_reason(0), "");
}

TEST_F(TriggerQueueTest, FullAtMaxBytesOfKeptBodies) {
  auto opened = TriggerQueue::open(path_, 100, 64);
  ASSERT_TRUE(opened.ok());
  auto& q = *opened;
  TriggerEvent e = event("a");
  e.body = std::string(40, 'x');
  ASSERT_TRUE(q->append_sync(TriggerQueue::add_record(e)).ok());
  EXPECT_EQ(q->full_reason(20), "");
  EXPECT_NE(q->full_reason(30), "");
  // A dead event keeps its body (for replay); a done one no longer counts.
  ASSERT_TRUE(q->append_sync(TriggerQueue::dead_record("a", "x")).ok());
  EXPECT_NE(q->full_reason(30), "");
  ASSERT_TRUE(q->append_sync(TriggerQueue::replay_record("a")).ok());
  ASSERT_TRUE(q->append_sync(TriggerQueue::done_record("a")).ok());
  EXPECT_EQ(q->full_reason(60), "");
}

TEST_F(TriggerQueueTest, StartWithoutOutcomeIsDispatchingAfterReopen) {
  {
    auto q = open();
    ASSERT_TRUE(q->append_sync(TriggerQueue::add_record(event("a"))).ok());
    ASSERT_TRUE(q->append_sync(TriggerQueue::add_record(event("b"))).ok());
    ASSERT_TRUE(q->append_sync(TriggerQueue::start_record("a", 1)).ok());
    ASSERT_TRUE(q->append_sync(TriggerQueue::start_record("b", 1)).ok());
    ASSERT_TRUE(q->append_sync(TriggerQueue::attempt_record("b", 1, "exit 3")).ok());
  }
  auto q = open();
  EXPECT_TRUE(q->find("a")->dispatching);
  EXPECT_FALSE(q->find("b")->dispatching);
  EXPECT_EQ(q->find("b")->attempts, 1);
  std::optional<std::chrono::steady_clock::time_point> earliest;
  const actors::TriggerEvent* next = q->next_due("t1", std::chrono::steady_clock::now(), &earliest);
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(next->id, "b");
  // Compaction keeps the "start" of an event being dispatched.
  ASSERT_TRUE(q->compact().ok());
  auto again = open();
  EXPECT_TRUE(again->find("a")->dispatching);
}

TEST_F(TriggerQueueTest, AsyncAppendsFromManyCoroutinesAreAllDurableAndFolded) {
  auto q = open();
  run_loop([&]() -> runtime::Task<void> {
    runtime::Scope scope;
    int ok = 0;
    for (int i = 0; i < 50; ++i)
      scope.spawn([](TriggerQueue& q, int i, int& ok) -> runtime::Task<void> {
        TriggerEvent e = event("x");
        e.id = done_id(static_cast<std::size_t>(i));
        runtime::Result<void> w = co_await q.append(TriggerQueue::add_record(e));
        if (w) ++ok;
      }(*q, i, ok), "append");
    co_await scope.join();
    EXPECT_EQ(ok, 50);
  });
  EXPECT_EQ(q->pending_count(), 50u);
  auto again = open();
  EXPECT_EQ(again->pending_count(), 50u);
}

TEST_F(TriggerQueueTest, NonUtf8BodyIsStoredNotThrown) {
  auto q = open();
  TriggerEvent e = event("bin");
  e.body = std::string("\xff\xfe", 2);
  ASSERT_TRUE(q->append_sync(TriggerQueue::add_record(e)).ok());
  EXPECT_NE(q->find("bin"), nullptr);
}

}  // namespace
