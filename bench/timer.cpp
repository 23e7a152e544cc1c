// Benchmark 2: zero-length IORING_OP_TIMEOUT round trips. A zero timeout still
// arms an hrtimer in the kernel, so this is the floor of every sleep_for and of
// every deadline the daemon sets.
#include <chrono>

#include "ring_loop.hpp"
#include "runtime/ops_wait.hpp"

namespace bench {

std::vector<Row> run_timer(const Config& cfg) {
  using namespace std::chrono_literals;
  const std::uint64_t count = cfg.quick ? 100'000 : 500'000;
  const double cap = cfg.quick ? 0.5 : 2.0;
  const unsigned flags = reactor_setup_flags();
  return {compare(
      "timer(0) round trips /s", Unit::rate, cfg,
      [&] { return actor_round_trips(count, cap, [] { return runtime::sleep_for(0ns); }); },
      "raw liburing",
      [&] {
        return raw_round_trips(
            count, cap, flags,
            [](io_uring_sqe* s) {
              // Static: the kernel reads the timespec at submit, and the loop
              // submits before this returns, but no stack slot needs to argue that.
              static __kernel_timespec zero{0, 0};
              io_uring_prep_timeout(s, &zero, 0, 0);
            },
            -ETIME);
      })};
}

}  // namespace bench
