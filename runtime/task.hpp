#pragma once
// Task<T>: a lazy coroutine that starts when awaited and hands control back to its
// awaiter when done. Control passes through a per-thread trampoline rather than
// symmetric transfer: GCC 12 emits the symmetric-transfer resume as a plain call at
// -O0, so a loop of a million synchronously completing awaits overflowed the stack
// there. The trampoline keeps every hand-over flat whatever the optimiser does
// (checked at -O0 and -O2 by tests/runtime/task_test.cpp).
#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

namespace runtime {

template <class T = void>
class Task;

namespace detail {

// The trampoline: while `active`, a hand-over only records the next coroutine and
// returns, so the running resume() returns to drive()'s loop, which resumes the
// next one. The stack depth stays one resume() deep however long the chain is.
struct Trampoline {
  std::coroutine_handle<> next;
  bool active = false;
};
inline thread_local Trampoline trampoline;

// Resumes `h` and everything handed over from it until a coroutine suspends
// without naming a successor (it waits for I/O, a timer, a channel).
inline void drive(std::coroutine_handle<> h) noexcept {
  Trampoline& t = trampoline;
  const bool outer = !t.active;
  if (!outer) {  // already inside a loop further up: let it run `h`
    t.next = h;
    return;
  }
  t.active = true;
  while (h) {
    t.next = nullptr;
    h.resume();
    h = std::exchange(t.next, nullptr);
  }
  t.active = false;
}

// Called from an await_suspend: the current coroutine is already suspended.
// TRICKY: when no loop is active, drive() runs `h` right here, inside the caller's
// await_suspend; `h` may resume the caller and even destroy its frame before this
// returns, so callers touch nothing of theirs after transfer(). The reactor
// resumes through drive(), so in the daemon this case does not arise.
inline void transfer(std::coroutine_handle<> h) noexcept { drive(h); }

struct TaskPromiseBase {
  std::coroutine_handle<> continuation = std::noop_coroutine();
  std::exception_ptr exception;

  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    // This frame is suspended from here on; the awaiter may destroy it at once.
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) noexcept {
      transfer(h.promise().continuation);
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  // Stored, never rethrown here: rethrowing from unhandled_exception would escape
  // into whoever resumed us (the reactor loop).
  void unhandled_exception() noexcept { exception = std::current_exception(); }
};

template <class T>
struct TaskPromise : TaskPromiseBase {
  std::optional<T> value;
  Task<T> get_return_object() noexcept;
  template <class U>
  void return_value(U&& v) { value.emplace(std::forward<U>(v)); }
  T take() {
    if (exception) std::rethrow_exception(exception);
    return std::move(*value);
  }
};

template <>
struct TaskPromise<void> : TaskPromiseBase {
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() {
    if (exception) std::rethrow_exception(exception);
  }
};

}  // namespace detail

template <class T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using Handle = std::coroutine_handle<promise_type>;

  Task() = default;
  explicit Task(Handle h) noexcept : handle_(h) {}
  Task(Task&& o) noexcept : handle_(std::exchange(o.handle_, {})) {}
  Task& operator=(Task&& o) noexcept {
    if (this != &o) {
      reset();
      handle_ = std::exchange(o.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { reset(); }

  bool valid() const noexcept { return static_cast<bool>(handle_); }
  bool done() const noexcept { return !handle_ || handle_.done(); }

  auto operator co_await() && noexcept {
    struct Awaiter {
      Handle handle;
      bool await_ready() const noexcept { return !handle || handle.done(); }
      void await_suspend(std::coroutine_handle<> awaiting) noexcept {
        handle.promise().continuation = awaiting;
        detail::transfer(handle);
      }
      T await_resume() { return handle.promise().take(); }
    };
    return Awaiter{handle_};
  }

  // For the reactor: start a root task and read its outcome once it is done.
  Handle handle() const noexcept { return handle_; }
  T take_result() { return handle_.promise().take(); }

 private:
  void reset() noexcept {
    if (handle_) handle_.destroy();
    handle_ = {};
  }
  Handle handle_;
};

namespace detail {
template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}
}  // namespace detail

}  // namespace runtime
