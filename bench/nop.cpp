// Benchmark 1: IORING_OP_NOP round trips, one at a time. This is the cost of one
// trip through the reactor (SQE, submit+wait, CQ walk, ready queue, resume)
// against the bare syscall-and-ring cost of the same trip.
#include "ring_loop.hpp"
#include "runtime/ops_wait.hpp"

namespace bench {

std::vector<Row> run_nop(const Config& cfg) {
  const std::uint64_t count = cfg.quick ? 200'000 : 1'000'000;
  const double cap = cfg.quick ? 0.5 : 2.0;
  const unsigned flags = reactor_setup_flags();
  return {compare(
      "nop round trips /s", Unit::rate, cfg,
      [&] { return actor_round_trips(count, cap, [] { return runtime::nop(); }); },
      "raw liburing",
      [&] {
        return raw_round_trips(count, cap, flags, [](io_uring_sqe* s) { io_uring_prep_nop(s); }, 0);
      })};
}

}  // namespace bench
