// SignalSet: signals blocked and read from a signalfd through the ring.
#include <gtest/gtest.h>
#include <signal.h>

#include "run_loop.hpp"
#include "runtime/ops_wait.hpp"
#include "runtime/signals.hpp"
#include "test_util.hpp"

using namespace runtime;
using namespace std::chrono_literals;

namespace {
bool blocked(int sig) {
  sigset_t cur;
  pthread_sigmask(SIG_SETMASK, nullptr, &cur);
  return sigismember(&cur, sig) == 1;
}
Task<void> raise_later(int sig, Duration d) {
  co_await sleep_for(d);
  ::kill(::getpid(), sig);
}
}  // namespace

TEST(Signals, ReceivesSighupAndSigtermWhileAwaiting) {
  run_loop([]() -> Task<void> {
    Result<SignalSet> set = SignalSet::open({SIGHUP, SIGTERM});
    CO_ASSERT_TRUE(set.ok()) << set.message();
    EXPECT_TRUE(blocked(SIGHUP));
    EXPECT_TRUE(blocked(SIGTERM));
    spawn(raise_later(SIGHUP, 5ms));
    const std::uint64_t cqes_before = reactor().stats().cqes;
    Result<int> a = co_await set->next();
    EXPECT_EQ(a.value_or(-1), SIGHUP) << a.message();
    // One read waited in the kernel; it did not spin on EAGAIN meanwhile.
    EXPECT_LE(reactor().stats().cqes - cqes_before, 4u);
    spawn(raise_later(SIGTERM, 2ms));
    Result<int> b = co_await set->next();
    EXPECT_EQ(b.value_or(-1), SIGTERM) << b.message();
  });
  EXPECT_FALSE(blocked(SIGHUP)) << "mask not restored";
  EXPECT_FALSE(blocked(SIGTERM));
}

TEST(Signals, SignalBeforeAwaitIsNotLost) {
  run_loop([]() -> Task<void> {
    Result<SignalSet> set = SignalSet::open({SIGUSR1, SIGUSR2});
    CO_ASSERT_TRUE(set.ok()) << set.message();
    ::kill(::getpid(), SIGUSR2);  // queued: blocked, no handler runs
    co_await sleep_for(2ms);
    Result<int> s = co_await set->next();
    EXPECT_EQ(s.value_or(-1), SIGUSR2);
    ::kill(::getpid(), SIGUSR1);
    ::kill(::getpid(), SIGUSR2);
    Result<int> x = co_await set->next();
    Result<int> y = co_await set->next();
    CO_ASSERT_TRUE(x.ok() && y.ok());
    // Standard signals come out lowest number first.
    EXPECT_EQ(x.value(), SIGUSR1);
    EXPECT_EQ(y.value(), SIGUSR2);
  });
}

TEST(Signals, StopTokenCancelsNext) {
  run_loop([]() -> Task<void> {
    Result<SignalSet> set = SignalSet::open({SIGHUP});
    CO_ASSERT_TRUE(set.ok());
    std::stop_source src;
    spawn([](std::stop_source s) -> Task<void> {
      co_await sleep_for(3ms);
      s.request_stop();
    }(src));
    Result<int> r = co_await set->next(src.get_token());
    EXPECT_EQ(r.error(), ECANCELED) << r.message();
    EXPECT_EQ(reactor().stats().inflight, 0u);
    // Still usable afterwards.
    spawn(raise_later(SIGHUP, 1ms));
    EXPECT_EQ((co_await set->next()).value_or(-1), SIGHUP);
  });
}

TEST(Signals, MovedSetKeepsWorking) {
  run_loop([]() -> Task<void> {
    Result<SignalSet> opened = SignalSet::open({SIGHUP});
    CO_ASSERT_TRUE(opened.ok());
    SignalSet set = std::move(opened.value());
    EXPECT_TRUE(blocked(SIGHUP));
    ::kill(::getpid(), SIGHUP);
    EXPECT_EQ((co_await set.next()).value_or(-1), SIGHUP);
  });
  EXPECT_FALSE(blocked(SIGHUP));
}
