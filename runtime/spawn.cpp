#include "runtime/reactor.hpp"

namespace runtime {

namespace {

// The frame of a detached actor. It links itself into the reactor's actor list so
// that shutdown can destroy it if it never finishes, and unlinks when it ends.
struct Detached {
  struct promise_type {
    Reactor::ActorNode node;

    Detached get_return_object() {
      node.handle = std::coroutine_handle<promise_type>::from_promise(*this);
      return Detached{node.handle};
    }
    // Suspended at first so spawn() only enqueues: an actor never runs inside the
    // caller's stack frame, which keeps spawn() reentrancy-free.
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    // The body catches everything; this is only reached if reporting itself threw.
    void unhandled_exception() noexcept { std::terminate(); }
    ~promise_type() {
      if (node.linked) reactor().unlink_actor(&node);
    }
  };
  std::coroutine_handle<> handle;
};

Detached run_detached(Task<void> task, std::string name) {
  try {
    co_await std::move(task);
  } catch (...) {
    reactor().report_failure(name, std::current_exception());
  }
}

}  // namespace

void spawn(Task<void> task, std::string name) {
  Reactor& r = reactor();
  Detached d = run_detached(std::move(task), name);
  auto h = std::coroutine_handle<Detached::promise_type>::from_address(d.handle.address());
  h.promise().node.name = std::move(name);
  r.link_actor(&h.promise().node);
  r.schedule(d.handle);
}

}  // namespace runtime
