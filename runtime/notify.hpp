#pragma once
// Notify: a broadcast wake-up for many waiters (log followers, dependency waits).
// A waiter re-checks its condition after waking; notify_all() only schedules.
#include <coroutine>
#include <optional>
#include <stop_token>
#include <vector>

#include "runtime/reactor.hpp"
#include "runtime/result.hpp"

namespace runtime {

class Notify {
 public:
  Notify() = default;
  Notify(const Notify&) = delete;
  Notify& operator=(const Notify&) = delete;
  // Waiters still parked are woken and forget us (they may resume after we die).
  ~Notify() {
    for (Awaiter* a : waiters_) a->n_ = nullptr;
    notify_all();
  }

  class Awaiter {
   public:
    Awaiter(Notify& n, std::stop_token st) : n_(&n), stop_(std::move(st)) {}
    Awaiter(const Awaiter&) = delete;
    ~Awaiter() { unlink(); }
    bool await_ready() const noexcept { return stop_.stop_requested(); }
    void await_suspend(std::coroutine_handle<> h) {
      waiter_ = h;
      n_->waiters_.push_back(this);
      if (stop_.stop_possible()) on_stop_.emplace(stop_, Wake{this});
    }
    // ECANCELED when woken by the stop token.
    Result<void> await_resume() {
      on_stop_.reset();
      unlink();
      if (stop_.stop_requested()) return Result<void>::failure(ECANCELED);
      return {};
    }

   private:
    friend class Notify;
    struct Wake {
      Awaiter* self;
      void operator()() const noexcept { self->wake(); }
    };
    void wake() {
      if (!waiter_) return;
      unlink();
      reactor().schedule(std::exchange(waiter_, {}));
    }
    void unlink() {
      if (!n_) return;
      auto& w = n_->waiters_;
      for (auto it = w.begin(); it != w.end(); ++it)
        if (*it == this) { w.erase(it); return; }
    }
    Notify* n_;
    std::stop_token stop_;
    std::coroutine_handle<> waiter_;
    std::optional<std::stop_callback<Wake>> on_stop_;
  };

  [[nodiscard]] Awaiter wait(std::stop_token st = {}) { return Awaiter(*this, std::move(st)); }

  void notify_all() {
    // Swap first: a woken waiter that waits again must not be woken twice now.
    std::vector<Awaiter*> now;
    now.swap(waiters_);
    for (Awaiter* a : now)
      if (a->waiter_) reactor().schedule(std::exchange(a->waiter_, {}));
  }
  std::size_t waiting() const noexcept { return waiters_.size(); }

 private:
  std::vector<Awaiter*> waiters_;
};

}  // namespace runtime
