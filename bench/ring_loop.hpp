#pragma once
// Round-trip loops shared by the nop and timer benchmarks: the same count of
// one-at-a-time operations through an actor on the reactor, and through a bare
// liburing ring set up with the reactor's own flags (so the comparison measures
// the runtime's overhead, not a difference in ring setup).
#include <liburing.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "bench.hpp"
#include "runtime/channel.hpp"
#include "runtime/reactor.hpp"

namespace bench {

// Runs `make_op()` co_awaited `count` times in a spawned actor (or until `cap_s`
// seconds); returns round trips per second.
template <class MakeOp>
double actor_round_trips(std::uint64_t count, double cap_s, MakeOp make_op) {
  struct Loop {
    static runtime::Task<void> actor(std::uint64_t n, double cap, MakeOp mk,
                                     runtime::Channel<double>& out) {
      const auto t0 = Clock::now();
      std::uint64_t done = 0;
      while (done < n) {
        runtime::Result<int> r = co_await mk();
        if (!r) throw std::runtime_error("op failed: " + r.message());
        // The clock is read rarely: a vDSO call per op would be a visible share.
        if ((++done & 1023) == 0 && seconds_since(t0) > cap) break;
      }
      out.try_send(static_cast<double>(done) / seconds_since(t0));
    }
    static runtime::Task<double> root(std::uint64_t n, double cap, MakeOp mk) {
      runtime::Channel<double> out(1);
      runtime::spawn(actor(n, cap, mk, out), "bench-loop");
      runtime::Result<double> r = co_await out.recv();
      if (!r) throw std::runtime_error("bench actor ended without a result");
      co_return r.value();
    }
  };
  runtime::Reactor reactor;
  return reactor.run(Loop::root(count, cap_s, make_op));
}

// The same loop on a raw ring: get_sqe, prep, submit_and_wait(1), seen.
// `prep` fills the SQE; `expected_res` is what a successful CQE carries.
template <class Prep>
double raw_round_trips(std::uint64_t count, double cap_s, unsigned setup_flags, Prep prep,
                       int expected_res) {
  io_uring ring;
  io_uring_params params{};
  params.flags = setup_flags;
  if (int rc = io_uring_queue_init_params(256, &ring, &params); rc < 0)
    fail_errno("io_uring_queue_init_params", -rc);
  const auto t0 = Clock::now();
  std::uint64_t done = 0;
  std::string error;
  while (done < count) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    prep(sqe);
    int rc = io_uring_submit_and_wait(&ring, 1);
    if (rc < 0 && rc != -EINTR) {
      error = "io_uring_submit_and_wait: " + std::to_string(-rc);
      break;
    }
    io_uring_cqe* cqe = nullptr;
    if (io_uring_peek_cqe(&ring, &cqe) != 0 || !cqe) continue;  // EINTR before the CQE
    const int res = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    if (res != expected_res) {
      error = "unexpected cqe res " + std::to_string(res);
      break;
    }
    if ((++done & 1023) == 0 && seconds_since(t0) > cap_s) break;
  }
  const double rate = static_cast<double>(done) / seconds_since(t0);
  io_uring_queue_exit(&ring);
  if (!error.empty()) throw std::runtime_error(error);
  return rate;
}

// The setup flags the reactor picks on this kernel (probed once).
unsigned reactor_setup_flags();

}  // namespace bench
