// Benchmark 5: does a parked daemon sleep? 1,000 actors wait — half on a
// Channel nobody sends to, half on a ring read of a pipe nobody writes — while
// the reactor runs on its own thread. Over the window we count the loop's trips
// into the kernel and the CQEs it reaped, and the voluntary context switches of
// every thread but the measuring one. The goal is zero of each.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <future>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bench.hpp"
#include "runtime/channel.hpp"
#include "runtime/fd.hpp"
#include "runtime/ops_rw.hpp"
#include "runtime/reactor.hpp"

namespace bench {

namespace {

constexpr int kActors = 1000;

struct Shared {
  int wake_fd = -1;              // main -> reactor: the window is over
  std::promise<void> parked;     // reactor -> main: every actor is suspended
  std::atomic<bool> parked_set{false};
  runtime::ReactorStats before, after;
};

runtime::Task<void> channel_waiter(runtime::Channel<int>& ch, runtime::Channel<int>& ended) {
  (void)co_await ch.recv();
  ended.try_send(0);
}

runtime::Task<void> pipe_reader(int fd, runtime::Channel<int>& ended) {
  std::byte b[1];
  (void)co_await runtime::read(fd, b);
  ended.try_send(0);
}

runtime::Task<void> idle_root(Shared& sh) {
  // Blocking pipe ends: a ring read of an O_NONBLOCK pipe would complete at once
  // with EAGAIN; a blocking one parks as an internal poll, which is the case to test.
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) fail("pipe2");
  runtime::Fd rd(p[0]), wr(p[1]);
  runtime::Channel<int> ended(kActors);
  std::vector<std::unique_ptr<runtime::Channel<int>>> mailboxes;
  for (int i = 0; i < kActors; ++i) {
    if (i % 2 == 0) {
      mailboxes.push_back(std::make_unique<runtime::Channel<int>>(1));
      runtime::spawn(channel_waiter(*mailboxes.back(), ended), "idle-channel");
    } else {
      runtime::spawn(pipe_reader(rd.get(), ended), "idle-pipe");
    }
  }
  // Two trips through the ready queue: every actor has run to its first await.
  co_await runtime::yield();
  co_await runtime::yield();
  sh.before = runtime::reactor().stats();
  sh.parked_set = true;
  sh.parked.set_value();
  std::uint64_t v = 0;
  auto r = co_await runtime::read(sh.wake_fd, std::as_writable_bytes(std::span(&v, 1)));
  sh.after = runtime::reactor().stats();
  if (!r) fail_errno("read eventfd", r.error());
  // Let every actor end normally: EOF for the readers, EPIPE for the receivers.
  wr.reset();
  for (auto& m : mailboxes) m->close();
  for (int i = 0; i < kActors; ++i) (void)co_await ended.recv();
}

rusage usage(int who) {
  rusage u{};
  ::getrusage(who, &u);
  return u;
}

}  // namespace

std::vector<Row> run_idle(const Config& cfg) {
  const int window_s = cfg.quick ? 2 : 10;
  runtime::Fd wake(::eventfd(0, EFD_CLOEXEC));
  if (!wake) fail("eventfd");
  Shared sh;
  sh.wake_fd = wake.get();
  std::future<void> parked = sh.parked.get_future();
  std::exception_ptr error;
  std::thread reactor_thread([&] {
    try {
      runtime::Reactor r;
      r.run(idle_root(sh));
    } catch (...) {
      error = std::current_exception();
    }
    // Failed before parking: release the main thread, which then sees `error`.
    if (!sh.parked_set) sh.parked.set_value();
  });
  parked.wait();
  // Settle: the reactor thread goes from set_value to sleeping in io_uring_enter.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const rusage self0 = usage(RUSAGE_SELF), main0 = usage(RUSAGE_THREAD);
  std::this_thread::sleep_for(std::chrono::seconds(window_s));
  const rusage self1 = usage(RUSAGE_SELF), main1 = usage(RUSAGE_THREAD);
  const std::uint64_t one = 1;
  if (::write(wake.get(), &one, sizeof one) != sizeof one) fail("write eventfd");
  reactor_thread.join();
  if (error) std::rethrow_exception(error);

  // The wake-up that ends the window is one wait and one CQE (the eventfd read).
  const double waits = static_cast<double>(sh.after.waits - sh.before.waits) - 1;
  const double cqes = static_cast<double>(sh.after.cqes - sh.before.cqes) - 1;
  // RUSAGE_SELF sums all threads (io-wq workers too); the main thread's own
  // switches (its sleep) are taken out.
  const double csw = static_cast<double>((self1.ru_nvcsw - self0.ru_nvcsw) -
                                         (main1.ru_nvcsw - main0.ru_nvcsw));
  const std::string window = std::to_string(kActors) + " parked / " + std::to_string(window_s) + " s";
  Row w;
  w.name = "idle ring wakeups, " + window;
  w.unit = Unit::count;
  w.dockless = {waits};
  w.goal = Goal::at_most(0);
  char note[160];
  std::snprintf(note, sizeof note, "idle: %.0f CQEs reaped in the window (one run; not repeated)",
                cqes);
  w.note = note;
  Row c;
  c.name = "idle voluntary ctx switches, " + window;
  c.unit = Unit::count;
  c.dockless = {csw};
  c.goal = Goal::at_most(0);
  return {w, c};
}

}  // namespace bench
