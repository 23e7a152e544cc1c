#pragma once
// The reactor: one thread, one io_uring, one ready queue. Every coroutine in the
// daemon runs here; all waiting goes through the ring.
#include <liburing.h>

#include <coroutine>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <string>

#include "runtime/task.hpp"

namespace runtime {

// The single target of a CQE. The SQE's user_data is the address of a Completion
// (low bits clear) or that address | kLinkedTimeoutTag for the operation's own
// deadline. complete() only records and enqueues; it never resumes a coroutine
// while the CQ is being walked.
class Completion {
 public:
  virtual void complete(int res, std::uint32_t cqe_flags) noexcept = 0;
  virtual void complete_linked_timeout(int /*res*/) noexcept {}

  // Intrusive in-flight list, so shutdown can cancel everything still in the kernel.
  Completion* inflight_prev = nullptr;
  Completion* inflight_next = nullptr;
  bool cancel_sent = false;

 protected:
  ~Completion() = default;
};

// user_data values no object can have (nothing lives in the first page) mark the
// reactor's own SQEs, whose CQEs carry nothing anyone waits for.
inline constexpr std::uint64_t kCancelUserData = 8;
inline constexpr std::uint64_t kLinkedTimeoutTag = 1;

struct ReactorStats {
  std::uint64_t submits = 0;         // io_uring_enter calls that submitted
  std::uint64_t waits = 0;           // times the loop slept in the kernel
  std::uint64_t cqes = 0;            // CQEs walked
  std::uint64_t resumes = 0;         // coroutines resumed from the ready queue
  std::uint64_t cancels = 0;         // async-cancel SQEs issued
  std::uint64_t cq_overflow = 0;     // kernel-side CQ overflow count (should stay 0)
  std::uint64_t sq_full = 0;         // times sqe() had to flush a full SQ
  std::uint64_t inflight = 0;        // operations with a CQE still to come
  std::uint64_t actors = 0;          // spawned actors alive
  std::uint64_t actor_failures = 0;  // actors that ended with an exception
};

struct ReactorFeatures {
  unsigned setup_flags = 0;    // flags the ring was created with
  bool waitid_op = false;      // IORING_OP_WAITID (kernel >= 6.7)
  bool single_issuer = false;
  bool defer_taskrun = false;
  bool coop_taskrun = false;
  std::string describe() const;
};

class Reactor {
 public:
  struct Options {
    unsigned sq_entries = 256;
    // Force plain setup flags (tests of the fallback path; old kernels).
    bool allow_taskrun_flags = true;
    // Ignore IORING_OP_WAITID even where the kernel has it (tests of the
    // pidfd-poll path that kernels before 6.7 take).
    bool allow_waitid_op = true;
  };

  // Throws std::system_error when no ring can be created: that is a start-up failure.
  explicit Reactor(Options opts);
  Reactor() : Reactor(Options{}) {}
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // Runs `root` and everything it spawns until `root` finishes, then shuts down:
  // cancels every operation still in flight, waits for their CQEs, and destroys
  // actors that never finished. Returns root's value (or rethrows its exception).
  template <class T>
  T run(Task<T> root) {
    run_root(root.handle());
    return root.take_result();
  }

  // Space for `n` SQEs that will be queued back to back (a linked pair must not be
  // split by a flush in between). Never fails: a full SQ is submitted first.
  io_uring_sqe* sqe();
  void reserve(unsigned n);

  void schedule(std::coroutine_handle<> h) { ready_.push_back(h); }

  // Asks the kernel to cancel the operation whose user_data is `target`. The
  // operation's own CQE still arrives and is what resumes its waiter.
  void cancel(Completion* target);

  void track(Completion* c) noexcept;
  void untrack(Completion* c) noexcept;

  // True while shutting down: new operations complete at once with ECANCELED.
  bool stopping() const noexcept { return stopping_; }

  // A loop of awaits that never suspend would starve the ring; long loops call
  // `co_await runtime::yield()` when this says so.
  bool should_yield() const noexcept { return resumes_this_round_ > kBudget; }

  // Lets one waiter through per loop round, in arrival order: for work that blocks
  // the thread (a spawn waits for its child's exec), so a burst of it is spread over
  // rounds with the ring served in between. Uncontended, it passes without suspending.
  struct TurnAwaiter {
    Reactor* r;
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
      if (!r->turn_taken_ && r->turn_waiters_.empty()) {
        r->turn_taken_ = true;
        return false;
      }
      r->turn_waiters_.push_back(h);
      return true;
    }
    void await_resume() const noexcept {}
  };
  TurnAwaiter one_per_round() noexcept { return {this}; }

  // Runs `fn` once, the next time the loop is about to sleep in the kernel: the last
  // thing before an idle wait, when no coroutine is ready. For work whose effect the
  // rest of the round would undo (dropping the pages start-up touched: anything that
  // runs after it faults its code back in). `fn` must not schedule coroutines.
  void once_before_sleep(void (*fn)() noexcept) noexcept { before_sleep_ = fn; }
  bool before_sleep_pending() const noexcept { return before_sleep_ != nullptr; }

  using FailureHandler = std::function<void(const std::string& actor, std::exception_ptr)>;
  void on_actor_failure(FailureHandler h) { failure_handler_ = std::move(h); }
  void report_failure(const std::string& actor, const std::exception_ptr& e);

  // Detached actors alive, so shutdown can destroy those that never finished.
  struct ActorNode {
    ActorNode* prev = nullptr;
    ActorNode* next = nullptr;
    std::coroutine_handle<> handle;
    std::string name;
    bool linked = false;
  };
  void link_actor(ActorNode* n) noexcept;
  void unlink_actor(ActorNode* n) noexcept;

  const ReactorStats& stats() const noexcept;
  const ReactorFeatures& features() const noexcept { return features_; }
  io_uring* ring() noexcept { return &ring_; }

 private:
  static constexpr std::uint64_t kBudget = 1024;

  void run_root(std::coroutine_handle<> root);
  void run_ready();
  void flush_and_wait(bool may_block);
  void reap();
  void shutdown();

  io_uring ring_{};
  ReactorFeatures features_;
  std::deque<std::coroutine_handle<>> ready_;
  Completion* inflight_head_ = nullptr;
  mutable ReactorStats stats_;
  std::uint64_t resumes_this_round_ = 0;
  bool turn_taken_ = false;
  std::deque<std::coroutine_handle<>> turn_waiters_;
  void (*before_sleep_)() noexcept = nullptr;
  bool stopping_ = false;
  FailureHandler failure_handler_;
  ActorNode* actors_head_ = nullptr;
};

// The one ring, reached through one function: the reactor of this thread.
Reactor& reactor();
bool has_reactor() noexcept;

// Starts `task` as a detached actor on the current reactor (it first runs on the
// next loop round). An exception escaping it is reported through
// Reactor::on_actor_failure, never swallowed and never std::terminate.
void spawn(Task<void> task, std::string name = "actor");

// Goes to the back of the ready queue, letting I/O completions and other actors run.
struct YieldAwaiter {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const { reactor().schedule(h); }
  void await_resume() const noexcept {}
};
inline YieldAwaiter yield() { return {}; }

}  // namespace runtime
