#include "runtime/notify.hpp"

#include "runtime/reactor.hpp"

namespace runtime {

void Notify::Awaiter::await_suspend(std::coroutine_handle<> h) {
  handle_ = h;
  next_ = notify_.head_;
  if (next_) next_->prev_ = this;
  notify_.head_ = this;
  linked_ = true;
  ++notify_.size_;
  // TRICKY: if the stop was requested after await_ready, the callback runs right
  // here; wake() only schedules, so nothing resumes inside await_suspend.
  if (stop_.stop_possible()) on_stop_.emplace(stop_, OnStop{this});
}

Result<void> Notify::Awaiter::await_resume() {
  on_stop_.reset();
  unlink();
  if (stop_.stop_requested()) return Result<void>::failure(ECANCELED);
  return {};
}

void Notify::Awaiter::wake() noexcept {
  if (!linked_) return;  // already woken (notify and stop both fired)
  unlink();
  reactor().schedule(handle_);
}

void Notify::Awaiter::unlink() noexcept {
  if (!linked_) return;
  if (prev_) prev_->next_ = next_;
  else notify_.head_ = next_;
  if (next_) next_->prev_ = prev_;
  prev_ = next_ = nullptr;
  linked_ = false;
  --notify_.size_;
}

void Notify::notify_all() noexcept {
  while (head_) head_->wake();
}

Notify::~Notify() {
  while (head_) head_->unlink();
}

}  // namespace runtime
