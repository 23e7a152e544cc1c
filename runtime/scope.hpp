#pragma once
// Scope: the child actors of one owner. The owner can ask them all to stop and
// wait until every one has finished, so no child outlives what it references
// ("an actor closes, drains, then dies").
#include <memory>
#include <stop_token>
#include <string>

#include "runtime/reactor.hpp"
#include "runtime/notify.hpp"

namespace runtime {

class Scope {
 public:
  Scope() : state_(std::make_shared<State>()) {}
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

  // Starts `task` as a detached actor counted by this scope.
  void spawn(Task<void> task, std::string name) {
    ++state_->live;
    runtime::spawn(run_child(state_, std::move(task)), std::move(name));
  }
  std::stop_token token() const { return state_->stop.get_token(); }
  void request_stop() { state_->stop.request_stop(); }
  std::size_t live() const noexcept { return state_->live; }

  // Resolves when every child has finished.
  Task<void> join() {
    std::shared_ptr<State> s = state_;
    while (s->live > 0) (void)co_await s->done.wait();
  }

 private:
  // Shared, because at reactor shutdown frames are destroyed in no set order.
  struct State {
    std::stop_source stop;
    std::size_t live = 0;
    Notify done;
  };
  struct LiveGuard {
    std::shared_ptr<State> s;
    ~LiveGuard() {
      --s->live;
      s->done.notify_all();
    }
  };
  static Task<void> run_child(std::shared_ptr<State> s, Task<void> task) {
    LiveGuard guard{std::move(s)};
    co_await std::move(task);
  }
  std::shared_ptr<State> state_;
};

}  // namespace runtime
