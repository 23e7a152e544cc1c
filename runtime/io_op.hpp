#pragma once
// IoOp: the base of every io_uring operation awaitable. It owns what the kernel
// reads at submit time (the deadline's timespec; subclasses add iovecs, sockaddrs,
// paths) and the result slot, and is its operations' only completion target.
//
// State machine (cppcoro's cancellable operation, written down):
//   idle --await_suspend--> in_flight --CQE(s)--> completed --await_resume
//   in_flight --stop requested--> in_flight + cancel_sent (an ASYNC_CANCEL SQE)
// The waiter is resumed only from `completed`, i.e. when every CQE the operation
// will ever produce (its own, and its linked timeout's) has been reaped. Nothing
// completes early, so the frame is never freed under the kernel's feet.
#include <linux/time_types.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <stop_token>

#include "runtime/reactor.hpp"
#include "runtime/result.hpp"

namespace runtime {

using Duration = std::chrono::nanoseconds;

inline __kernel_timespec to_timespec(Duration d) {
  if (d < Duration::zero()) d = Duration::zero();
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(d);
  return {secs.count(), static_cast<long long>((d - secs).count())};
}

class IoOp;

// What deadline()/stop_on() return. TRICKY: GCC 12 copies an awaiter handed to
// co_await as an lvalue reference; a pointer-sized handle avoids that copy (the
// op itself is not copyable) while the temporary op lives in the coroutine frame.
struct IoOpRef {
  IoOp* op;
  IoOpRef deadline(Duration d);
  IoOpRef stop_on(std::stop_token token);
  bool await_ready() noexcept;
  void await_suspend(std::coroutine_handle<> waiter);
  Result<int> await_resume() noexcept;
};

class IoOp : public Completion {
 public:
  IoOp() = default;
  IoOp(const IoOp&) = delete;
  IoOp& operator=(const IoOp&) = delete;
  ~IoOp() {
    // Programming error, not a runtime condition: a frame is dying while the
    // kernel may still write into it. Fail loudly rather than corrupt memory.
    if (state_ == State::in_flight) std::abort();
  }

  // Gives up after `d`: the operation is cancelled by a linked timeout and
  // resolves with ETIME. Call before co_await.
  IoOpRef deadline(Duration d) {
    deadline_ = to_timespec(d);
    has_deadline_ = true;
    return IoOpRef{this};
  }
  // A stop request on `token` cancels the operation (it resolves with ECANCELED,
  // or with its real result if the kernel finished it first).
  IoOpRef stop_on(std::stop_token token) {
    stop_ = std::move(token);
    return IoOpRef{this};
  }

  bool await_ready() noexcept {
    if (reactor().stopping() || stop_.stop_requested()) {
      res_ = -ECANCELED;
      return true;
    }
    return false;
  }
  void await_suspend(std::coroutine_handle<> waiter);
  Result<int> await_resume() noexcept {
    stop_callback_.reset();
    return from_res(res_);
  }

  // Completion interface, called while the CQ is walked: record, never resume.
  void complete(int res, std::uint32_t cqe_flags) noexcept override;
  void complete_linked_timeout(int res) noexcept override;

  bool in_flight() const noexcept { return state_ == State::in_flight; }

 protected:
  // Fills the SQE for this operation (everything but user_data and link flags).
  virtual void prep(io_uring_sqe* sqe) = 0;
  // Some operations report success as an error code (a timer's ETIME).
  virtual int translate(int res) const noexcept { return res; }

 private:
  enum class State : std::uint8_t { idle, in_flight, completed };
  struct CancelOnStop {
    IoOp* op;
    void operator()() const noexcept {
      if (op->state_ == State::in_flight) reactor().cancel(op);
    }
  };
  void finish() noexcept;

  State state_ = State::idle;
  std::uint8_t pending_cqes_ = 0;
  bool has_deadline_ = false;
  int res_ = 0;
  int deadline_res_ = 0;
  std::uint32_t cqe_flags_ = 0;
  __kernel_timespec deadline_{};
  std::coroutine_handle<> waiter_;
  std::stop_token stop_;
  std::optional<std::stop_callback<CancelOnStop>> stop_callback_;
};

inline IoOpRef IoOpRef::deadline(Duration d) { return op->deadline(d); }
inline IoOpRef IoOpRef::stop_on(std::stop_token token) { return op->stop_on(std::move(token)); }
inline bool IoOpRef::await_ready() noexcept { return op->await_ready(); }
inline void IoOpRef::await_suspend(std::coroutine_handle<> waiter) { op->await_suspend(waiter); }
inline Result<int> IoOpRef::await_resume() noexcept { return op->await_resume(); }

}  // namespace runtime
