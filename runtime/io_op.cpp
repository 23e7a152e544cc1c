#include "runtime/io_op.hpp"

namespace runtime {

void IoOp::await_suspend(std::coroutine_handle<> waiter) {
  Reactor& r = reactor();
  waiter_ = waiter;
  // TRICKY: the operation and its linked timeout must be adjacent in the SQ; if
  // getting the second SQE flushed the first, IOSQE_IO_LINK would chain it to
  // whatever SQE came next. Reserve both slots before taking either.
  r.reserve(has_deadline_ ? 2 : 1);
  io_uring_sqe* sqe = r.sqe();
  prep(sqe);
  io_uring_sqe_set_data(sqe, static_cast<Completion*>(this));
  pending_cqes_ = 1;
  if (has_deadline_) {
    sqe->flags |= IOSQE_IO_LINK;
    io_uring_sqe* t = r.sqe();
    // The kernel copies the timespec while preparing the SQE, but deadline_ lives
    // as long as this op anyway.
    io_uring_prep_link_timeout(t, &deadline_, 0);
    io_uring_sqe_set_data64(t, reinterpret_cast<std::uint64_t>(static_cast<Completion*>(this)) |
                                   kLinkedTimeoutTag);
    pending_cqes_ = 2;
  }
  state_ = State::in_flight;
  r.track(this);
  // Registered last: the callback runs at once if stop was requested meanwhile,
  // and cancelling requires the op to be in flight.
  if (stop_.stop_possible()) stop_callback_.emplace(stop_, CancelOnStop{this});
}

void IoOp::complete(int res, std::uint32_t cqe_flags) noexcept {
  res_ = translate(res);
  cqe_flags_ = cqe_flags;
  if (--pending_cqes_ == 0) finish();
}

// A linked timeout yields -ETIME when it fired (the op then got -ECANCELED),
// -ECANCELED when the op finished first, -ENOENT/-EALREADY in the narrow race
// where both happened together. Only the first case changes what the waiter sees.
void IoOp::complete_linked_timeout(int res) noexcept {
  deadline_res_ = res;
  if (--pending_cqes_ == 0) finish();
}

void IoOp::finish() noexcept {
  if (deadline_res_ == -ETIME && (res_ == -ECANCELED || res_ == -EINTR)) res_ = -ETIME;
  // An operation the cancel interrupted mid-way (rather than removed before it ran)
  // reports -EINTR on some kernels: seen on 6.1 (the Pi's) for pipe reads in
  // tests/runtime/cancel_test.cpp. To the waiter both are the cancel it asked for.
  else if (cancel_sent && res_ == -EINTR) res_ = -ECANCELED;
  state_ = State::completed;
  Reactor& r = reactor();
  r.untrack(this);
  r.schedule(waiter_);
}

}  // namespace runtime
