// Channel<T>: bounded mailbox semantics — back-pressure, FIFO across senders,
// close (drain then EPIPE; waiting senders get false), stop-token cancellation,
// and frames suspended in send/recv destroyed safely at shutdown.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "run_loop.hpp"
#include "runtime/channel.hpp"
#include "runtime/ops_wait.hpp"
#include "test_util.hpp"

using namespace runtime;
using namespace std::chrono_literals;

TEST(Channel, SenderWaitsWhenFull) {
  run_loop([]() -> Task<void> {
    Channel<int> ch(2);
    auto sent = std::make_shared<int>(0);
    spawn([](Channel<int>& ch, std::shared_ptr<int> sent) -> Task<void> {
      for (int i = 0; i < 5; ++i) {
        EXPECT_TRUE(co_await ch.send(i));
        ++*sent;
      }
    }(ch, sent));
    co_await sleep_for(2ms);
    EXPECT_EQ(*sent, 2);  // the third send waits for room
    EXPECT_EQ(ch.size(), 2u);
    EXPECT_FALSE(ch.try_send(99));
    for (int i = 0; i < 5; ++i) {
      Result<int> v = co_await ch.recv();
      EXPECT_TRUE(v.ok());
      EXPECT_EQ(v.value_or(-1), i);
      EXPECT_LE(ch.size(), 2u);
    }
    co_await sleep_for(1ms);
    EXPECT_EQ(*sent, 5);
  });
}

// 20 senders, 200 items each, through 4 slots. Per-sender order must hold, the
// bound must never be exceeded, and nothing may be lost or duplicated.
TEST(Channel, FifoAcrossManySenders) {
  run_loop([]() -> Task<void> {
    constexpr int kSenders = 20, kItems = 200;
    Channel<std::pair<int, int>> ch(4);
    for (int s = 0; s < kSenders; ++s)
      spawn([](Channel<std::pair<int, int>>& ch, int s) -> Task<void> {
        for (int i = 0; i < kItems; ++i) {
          EXPECT_TRUE(co_await ch.send({s, i}));
          if (i % 7 == 0) co_await yield();
        }
      }(ch, s));
    std::vector<int> next(kSenders, 0);
    std::vector<int> arrival;  // sender ids in arrival order, for the fairness check
    for (int n = 0; n < kSenders * kItems; ++n) {
      Result<std::pair<int, int>> v = co_await ch.recv();
      if (!v.ok()) {
        ADD_FAILURE() << v.message();
        co_return;
      }
      EXPECT_LE(ch.size(), 4u);
      auto [s, i] = v.value();
      EXPECT_EQ(i, next[static_cast<std::size_t>(s)]) << "sender " << s << " reordered";
      next[static_cast<std::size_t>(s)] = i + 1;
      arrival.push_back(s);
    }
    for (int s = 0; s < kSenders; ++s) EXPECT_EQ(next[static_cast<std::size_t>(s)], kItems);
    // Waiting senders are served in the order they started waiting, so no sender
    // is starved: within the first 10% of items every sender has been heard.
    std::vector<bool> heard(kSenders, false);
    for (std::size_t k = 0; k < arrival.size() / 10; ++k) heard[static_cast<std::size_t>(arrival[k])] = true;
    for (int s = 0; s < kSenders; ++s) EXPECT_TRUE(heard[static_cast<std::size_t>(s)]) << "sender " << s;
    EXPECT_EQ(ch.size(), 0u);
  });
}

TEST(Channel, CloseDrainsThenEpipeAndFailsWaitingSenders) {
  run_loop([]() -> Task<void> {
    Channel<std::string> ch(2);
    auto outcomes = std::make_shared<std::vector<bool>>();
    for (int i = 0; i < 4; ++i)
      spawn([](Channel<std::string>& ch, int i, std::shared_ptr<std::vector<bool>> out) -> Task<void> {
        out->push_back(co_await ch.send(std::to_string(i)));
      }(ch, i, outcomes));
    co_await sleep_for(1ms);  // two delivered, two waiting
    ch.close();
    EXPECT_TRUE(ch.closed());
    EXPECT_FALSE(ch.try_send("late"));
    co_await sleep_for(1ms);
    CO_ASSERT_EQ(outcomes->size(), 4u);
    EXPECT_EQ(*outcomes, (std::vector<bool>{true, true, false, false}));
    Result<std::string> a = co_await ch.recv();
    Result<std::string> b = co_await ch.recv();
    EXPECT_EQ(a.value_or(""), "0");
    EXPECT_EQ(b.value_or(""), "1");
    Result<std::string> c = co_await ch.recv();
    EXPECT_EQ(c.error(), EPIPE);
    EXPECT_FALSE(co_await ch.send("after close"));
  });
}

TEST(Channel, CloseWakesWaitingReceiver) {
  run_loop([]() -> Task<void> {
    Channel<int> ch(4);
    spawn([](Channel<int>& ch) -> Task<void> {
      co_await sleep_for(2ms);
      ch.close();
    }(ch));
    Result<int> r = co_await ch.recv();
    EXPECT_EQ(r.error(), EPIPE);
  });
}

TEST(Channel, RecvStopTokenIsEcanceled) {
  run_loop([]() -> Task<void> {
    Channel<int> ch(4);
    std::stop_source src;
    spawn([](std::stop_source s) -> Task<void> {
      co_await sleep_for(2ms);
      s.request_stop();
    }(src));
    Result<int> r = co_await ch.recv(src.get_token());
    EXPECT_EQ(r.error(), ECANCELED);
    // Already stopped before the await: at once, unless an item is there.
    Result<int> again = co_await ch.recv(src.get_token());
    EXPECT_EQ(again.error(), ECANCELED);
    EXPECT_TRUE(ch.try_send(5));
    Result<int> item = co_await ch.recv(src.get_token());
    EXPECT_EQ(item.value_or(-1), 5);
    // The channel still works after a cancelled receive.
    spawn([](Channel<int>& ch) -> Task<void> { (void)co_await ch.send(6); }(ch));
    EXPECT_EQ((co_await ch.recv()).value_or(-1), 6);
  });
}

// The root returns while actors are suspended in send (channel full) and recv
// (channel empty). Shutdown destroys their frames; the awaiters unregister from
// the channels, which outlive the reactor here. ASan/LSan check the rest.
TEST(Channel, FramesSuspendedInSendRecvDestroyedAtShutdown) {
  Channel<std::string> full(1);
  Channel<std::string> empty(1);
  auto alive = std::make_shared<int>(0);
  std::weak_ptr<int> watch = alive;
  {
    Reactor r;
    r.run([](Channel<std::string>& full, Channel<std::string>& empty, std::shared_ptr<int> keep) -> Task<void> {
      EXPECT_TRUE(full.try_send("fill"));
      for (int i = 0; i < 3; ++i)
        spawn([](Channel<std::string>& ch, std::shared_ptr<int> k) -> Task<void> {
          (void)co_await ch.send(std::string(100, 'x'));
          ADD_FAILURE() << "sender resumed after shutdown";
          (void)k;
        }(full, keep));
      spawn([](Channel<std::string>& ch, std::shared_ptr<int> k) -> Task<void> {
        (void)co_await ch.recv();
        ADD_FAILURE() << "receiver resumed after shutdown";
        (void)k;
      }(empty, keep));
      co_await sleep_for(1ms);
      EXPECT_EQ(reactor().stats().actors, 4u);
    }(full, empty, std::move(alive)));
    EXPECT_EQ(r.stats().actors, 0u);
  }
  EXPECT_TRUE(watch.expired());
  EXPECT_EQ(full.size(), 1u);
  // The channels no longer know of any waiter: sending to them needs no reactor.
  EXPECT_TRUE(empty.try_send("ok"));
}
