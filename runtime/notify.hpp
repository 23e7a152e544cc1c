#pragma once
// Notify: any number of coroutines waiting for "something changed" (log followers,
// event followers, dependency waits, a writer's wake-up). notify_all() only
// schedules the waiters; each re-checks its own condition when it runs. The list
// is intrusive (O(1) unlink), so hundreds of followers stay cheap.
#include <coroutine>
#include <cstddef>
#include <optional>
#include <stop_token>

#include "runtime/result.hpp"

namespace runtime {

class Notify {
 public:
  class Awaiter {
   public:
    Awaiter(Notify& n, std::stop_token stop) : notify_(n), stop_(std::move(stop)) {}
    Awaiter(const Awaiter&) = delete;
    Awaiter& operator=(const Awaiter&) = delete;
    ~Awaiter() { unlink(); }
    bool await_ready() const noexcept { return stop_.stop_requested(); }
    void await_suspend(std::coroutine_handle<> h);
    // ECANCELED when the stop token fired, success otherwise.
    Result<void> await_resume();

   private:
    friend class Notify;
    struct OnStop {
      Awaiter* self;
      void operator()() const noexcept { self->wake(); }
    };
    void wake() noexcept;
    void unlink() noexcept;
    Notify& notify_;
    std::stop_token stop_;
    std::coroutine_handle<> handle_;
    Awaiter* prev_ = nullptr;
    Awaiter* next_ = nullptr;
    bool linked_ = false;
    std::optional<std::stop_callback<OnStop>> on_stop_;
  };

  Notify() = default;
  Notify(const Notify&) = delete;
  Notify& operator=(const Notify&) = delete;
  // Waiters still linked belong to frames the reactor's shutdown destroys; they are
  // detached, not resumed (resuming them would touch the owner being destroyed).
  ~Notify();

  [[nodiscard]] Awaiter wait(std::stop_token stop = {}) { return Awaiter(*this, std::move(stop)); }
  void notify_all() noexcept;
  std::size_t waiting() const noexcept { return size_; }

 private:
  Awaiter* head_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace runtime
