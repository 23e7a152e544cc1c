#pragma once
// Waiting without data: poll readiness (pidfds, signalfds), timers, no-ops.
#include <poll.h>

#include "runtime/io_op.hpp"

namespace runtime {

// One-shot poll; the result is the ready event mask.
class PollOp final : public IoOp {
 public:
  PollOp(int fd, unsigned events) : fd_(fd), events_(events) {}
 private:
  void prep(io_uring_sqe* s) override { io_uring_prep_poll_add(s, fd_, events_); }
  int fd_;
  unsigned events_;
};

// A timer is an IORING_OP_TIMEOUT, so the kernel orders expiries and an idle
// loop sleeps until the earliest one. Expiry (ETIME) is success: 0.
class TimerOp final : public IoOp {
 public:
  enum class Kind { relative, absolute_monotonic };
  TimerOp(Duration d, Kind kind) : ts_(to_timespec(d)), kind_(kind) {}
 private:
  void prep(io_uring_sqe* s) override {
    io_uring_prep_timeout(s, &ts_, 0, kind_ == Kind::absolute_monotonic ? IORING_TIMEOUT_ABS : 0);
  }
  int translate(int res) const noexcept override { return res == -ETIME ? 0 : res; }
  __kernel_timespec ts_;  // read by the kernel at submit; owned here until the CQE
  Kind kind_;
};

class NopOp final : public IoOp {
 private:
  void prep(io_uring_sqe* s) override { io_uring_prep_nop(s); }
};

[[nodiscard]] inline PollOp poll(int fd, unsigned events) { return PollOp(fd, events); }
[[nodiscard]] inline TimerOp sleep_for(Duration d) { return TimerOp(d, TimerOp::Kind::relative); }
// `when` is on CLOCK_MONOTONIC (std::chrono::steady_clock on Linux).
[[nodiscard]] inline TimerOp sleep_until(std::chrono::steady_clock::time_point when) {
  return TimerOp(when.time_since_epoch(), TimerOp::Kind::absolute_monotonic);
}
[[nodiscard]] inline NopOp nop() { return NopOp(); }

}  // namespace runtime
