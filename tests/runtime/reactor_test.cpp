// The reactor loop: feature probing and the plain-flags fallback, sleeping when
// idle, fairness between ready coroutines and the ring, shutdown with operations
// in flight, and back-pressure when the SQ is full.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

#include "run_loop.hpp"
#include "runtime/ops_rw.hpp"
#include "runtime/ops_wait.hpp"
#include "test_util.hpp"

using namespace runtime;
using namespace std::chrono_literals;
using testutil::Pipe;

TEST(Reactor, FeaturesProbed) {
  Reactor r;
  const ReactorFeatures& f = r.features();
  std::printf("reactor features: %s (setup flags 0x%x)\n", f.describe().c_str(), f.setup_flags);
  EXPECT_FALSE(f.describe().empty());
  EXPECT_EQ(f.single_issuer, (f.setup_flags & IORING_SETUP_SINGLE_ISSUER) != 0);
  EXPECT_EQ(f.defer_taskrun, (f.setup_flags & IORING_SETUP_DEFER_TASKRUN) != 0);
  // DEFER_TASKRUN is only valid together with SINGLE_ISSUER.
  if (f.defer_taskrun) {
    EXPECT_TRUE(f.single_issuer);
  }
}

TEST(Reactor, OnlyOneReactorPerThread) {
  Reactor r;
  EXPECT_THROW(Reactor second, std::logic_error);
}

TEST(Reactor, FallbackPlainRingWorks) {
  Reactor r(Reactor::Options{.allow_taskrun_flags = false});
  EXPECT_EQ(r.features().setup_flags, 0u);
  EXPECT_EQ(r.features().describe().rfind("plain", 0), 0u) << r.features().describe();
  Pipe p;
  int got = r.run([](Pipe& p) -> Task<int> {
    EXPECT_TRUE((co_await sleep_for(1ms)).ok());
    EXPECT_TRUE((co_await nop()).ok());
    spawn([](int fd) -> Task<void> {
      co_await sleep_for(2ms);
      (void)co_await write(fd, testutil::bytes("x"));
    }(p.w.get()));
    std::byte b{};
    Result<int> n = co_await read(p.r.get(), std::span(&b, 1));
    co_return n.ok() && b == std::byte{'x'} ? n.value() : -1;
  }(p));
  EXPECT_EQ(got, 1);
}

// 20 timers of 5 ms one after another: an idle loop must sleep in the kernel
// once per timer (a little slack for spurious wake-ups), not spin.
TEST(Reactor, IdleLoopSleepsInKernel) {
  Reactor r;
  const auto start = std::chrono::steady_clock::now();
  r.run([]() -> Task<void> {
    for (int i = 0; i < 20; ++i) EXPECT_TRUE((co_await sleep_for(5ms)).ok());
  }());
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 100ms);
  EXPECT_LE(r.stats().waits, 40u) << "the idle loop is spinning";
  EXPECT_GE(r.stats().waits, 20u);
}

// A coroutine that yields 100k times must not starve the ring: the timer's CQE
// is reaped between rounds and its waiter runs long before the loop ends.
TEST(Reactor, ReadyYieldLoopLetsTimerFire) {
  int seen_at = run_loop([]() -> Task<int> {
    auto fired = std::make_shared<bool>(false);
    spawn([](std::shared_ptr<bool> f) -> Task<void> {
      co_await sleep_for(1ms);
      *f = true;
    }(fired));
    for (int i = 0; i < 100'000; ++i) {
      if (*fired) co_return i;
      co_await yield();
    }
    co_return -1;
  });
  EXPECT_GE(seen_at, 0) << "timer starved by 100k ready yields";
}

// Same, while another actor submits an SQE every round: the loop then always has
// something to submit and something ready, and must still run the deferred
// completion work (DEFER_TASKRUN) that a timer's expiry needs.
TEST(Reactor, BusySubmitterAndYielderLetTimerFire) {
  int seen_at = run_loop([]() -> Task<int> {
    auto fired = std::make_shared<bool>(false);
    spawn([](std::shared_ptr<bool> f) -> Task<void> {
      co_await sleep_for(1ms);
      *f = true;
    }(fired));
    spawn([](std::shared_ptr<bool> f) -> Task<void> {
      for (int i = 0; i < 100'000 && !*f; ++i) (void)co_await nop();
    }(fired));
    for (int i = 0; i < 100'000; ++i) {
      if (*fired) co_return i;
      co_await yield();
    }
    co_return -1;
  });
  EXPECT_GE(seen_at, 0) << "timer starved by a busy loop";
}

TEST(Reactor, ShouldYieldAfterBudget) {
  bool said_yield = run_loop([]() -> Task<bool> {
    // Many ready actors in one round push the round's resume count past the budget.
    for (int i = 0; i < 3000; ++i) spawn([]() -> Task<void> { co_return; }());
    co_await yield();
    co_return reactor().should_yield();
  });
  EXPECT_TRUE(said_yield);
}

// one_per_round(): a burst of blocking work (spawns) is spread one per loop round,
// in arrival order, and the loop never sleeps while someone waits for a turn.
TEST(Reactor, OnePerRoundLetsOneThroughEachRound) {
  std::vector<int> order, rounds;
  run_loop([&]() -> Task<void> {
    auto tick = std::make_shared<int>(0);
    auto done = std::make_shared<int>(0);
    spawn([](std::shared_ptr<int> t, std::shared_ptr<int> d) -> Task<void> {
      while (*d < 5) {
        ++*t;
        co_await yield();
      }
    }(tick, done));
    for (int i = 0; i < 5; ++i)
      spawn([](int id, std::shared_ptr<int> t, std::shared_ptr<int> d, std::vector<int>* o,
               std::vector<int>* r) -> Task<void> {
        co_await reactor().one_per_round();
        o->push_back(id);
        r->push_back(*t);
        ++*d;
      }(i, tick, done, &order, &rounds));
    // The root waits too, behind the five: with nothing else ready the loop must not
    // block in the kernel while turns are queued.
    co_await yield();
    co_await reactor().one_per_round();
  });
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  ASSERT_EQ(rounds.size(), 5u);
  for (std::size_t i = 1; i < rounds.size(); ++i) EXPECT_GT(rounds[i], rounds[i - 1]) << i;
}

// once_before_sleep(): the hook waits while anything is ready (five yields of a busy
// actor), runs right before the first idle wait, and only once.
namespace {
int busy_rounds = 0;
std::vector<int> hook_saw;
void record_hook() noexcept { hook_saw.push_back(busy_rounds); }
}  // namespace

TEST(Reactor, OnceBeforeSleepRunsOnceAtTheFirstIdleWait) {
  busy_rounds = 0;
  hook_saw.clear();
  run_loop([]() -> Task<void> {
    reactor().once_before_sleep(&record_hook);
    for (int i = 0; i < 5; ++i) {
      ++busy_rounds;
      co_await yield();
    }
    EXPECT_TRUE(hook_saw.empty()) << "ran while a coroutine was ready";
    (void)co_await sleep_for(1ms);
    (void)co_await sleep_for(1ms);
  });
  EXPECT_EQ(hook_saw, (std::vector<int>{5}));
}

// The root returns while actors are blocked in reads and sleeps: shutdown cancels
// them, waits for every CQE, then destroys the frames. ASan checks the rest.
TEST(Reactor, ShutdownCancelsAndDrainsInFlight) {
  const int fds_before = testutil::count_fds();
  auto alive = std::make_shared<int>(0);
  std::weak_ptr<int> watch = alive;
  {
    std::vector<Pipe> pipes(16);
    Reactor r;
    auto results = std::make_shared<std::vector<int>>();
    r.run([](std::vector<Pipe>& pipes, std::shared_ptr<int> keep,
             std::shared_ptr<std::vector<int>> results) -> Task<void> {
      for (auto& p : pipes)
        spawn([](int fd, std::shared_ptr<int> k, std::shared_ptr<std::vector<int>> out) -> Task<void> {
          char buf[16];
          Result<int> n = co_await read(fd, std::as_writable_bytes(std::span(buf)));
          out->push_back(n.ok() ? 0 : n.error());
          (void)k;
        }(p.r.get(), keep, results), "reader");
      for (int i = 0; i < 16; ++i)
        spawn([](std::shared_ptr<int> k, std::shared_ptr<std::vector<int>> out) -> Task<void> {
          Result<int> n = co_await sleep_for(1h);
          out->push_back(n.ok() ? 0 : n.error());
          (void)k;
        }(keep, results), "sleeper");
      co_await sleep_for(5ms);  // every actor is now blocked in the kernel
      EXPECT_EQ(reactor().stats().inflight, 32u);
      co_return;
    }(pipes, std::move(alive), results));
    EXPECT_EQ(r.stats().inflight, 0u);
    EXPECT_EQ(r.stats().actors, 0u);
    ASSERT_EQ(results->size(), 32u);
    for (int e : *results) EXPECT_EQ(e, ECANCELED);
  }
  EXPECT_TRUE(watch.expired());
  EXPECT_EQ(testutil::count_fds(), fds_before);
}

// 10,000 actors each issue a NOP in the same round through an 8-entry SQ:
// sqe() must flush and reap instead of returning null, and nothing may be lost.
TEST(Reactor, SqFullBackPressure) {
  Reactor r(Reactor::Options{.sq_entries = 8});
  auto done = std::make_shared<int>(0);
  r.run([](std::shared_ptr<int> done) -> Task<void> {
    for (int i = 0; i < 10'000; ++i)
      spawn([](std::shared_ptr<int> d) -> Task<void> {
        if ((co_await nop()).ok()) ++*d;
      }(done));
    while (*done < 10'000) co_await sleep_for(1ms);
  }(done));
  EXPECT_EQ(*done, 10'000);
  EXPECT_GT(r.stats().sq_full, 0u);
  EXPECT_EQ(r.stats().cq_overflow, 0u);
  EXPECT_EQ(r.stats().inflight, 0u);
}

// Linked operation + timeout pairs need two adjacent SQEs; with an 8-entry SQ
// the reservation must flush first rather than split the pair.
TEST(Reactor, SqFullWithLinkedDeadlines) {
  Reactor r(Reactor::Options{.sq_entries = 8});
  auto etime = std::make_shared<int>(0);
  r.run([](std::shared_ptr<int> etime) -> Task<void> {
    auto pipes = std::make_shared<std::vector<Pipe>>(500);
    for (auto& p : *pipes)
      spawn([](int fd, std::shared_ptr<int> e, std::shared_ptr<std::vector<Pipe>>) -> Task<void> {
        std::byte b{};
        Result<int> n = co_await read(fd, std::span(&b, 1)).deadline(2ms);
        if (!n.ok() && n.error() == ETIME) ++*e;
      }(p.r.get(), etime, pipes));
    while (*etime < 500 && reactor().stats().actors > 0) co_await sleep_for(1ms);
  }(etime));
  EXPECT_EQ(*etime, 500);
  EXPECT_EQ(r.stats().inflight, 0u);
}
