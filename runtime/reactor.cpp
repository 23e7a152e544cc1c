#include "runtime/reactor.hpp"

#include <sys/utsname.h>

#include <cstdio>
#include <system_error>
#include <utility>

namespace runtime {

namespace {
thread_local Reactor* current_reactor = nullptr;

// IORING_OP_WAITID: opcode 50 in kernels >= 6.7; neither liburing 2.3 nor Debian 12's
// headers name it, so the number is spelled out here and probed, never assumed.
constexpr int kOpWaitid = 50;

// Tried best first. DEFER_TASKRUN runs completion work only when we enter the
// kernel to wait, which suits a loop that always waits through the ring; it needs
// SINGLE_ISSUER. COOP_TASKRUN is the next best (5.19+). Plain flags work on 5.15.
constexpr unsigned kSetupCandidates[] = {
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    0,
};

bool probe_waitid(io_uring* ring) {
  io_uring_probe* probe = io_uring_get_probe_ring(ring);
  if (!probe) return false;
  bool ok = probe->last_op >= kOpWaitid && (probe->ops[kOpWaitid].flags & IO_URING_OP_SUPPORTED);
  io_uring_free_probe(probe);
  return ok;
}
}  // namespace

std::string ReactorFeatures::describe() const {
  std::string s;
  if (single_issuer) s += "SINGLE_ISSUER ";
  if (defer_taskrun) s += "DEFER_TASKRUN ";
  if (coop_taskrun) s += "COOP_TASKRUN ";
  if (s.empty()) s = "plain ";
  s += waitid_op ? "waitid-op" : "pidfd-poll";
  return s;
}

Reactor::Reactor(Options opts) {
  if (current_reactor) throw std::logic_error("one reactor per thread");
  int rc = -EINVAL;
  for (unsigned flags : kSetupCandidates) {
    if (!opts.allow_taskrun_flags && flags != 0) continue;
    io_uring_params params{};
    // A CQ four times the SQ: bursts of completions (a thousand timers firing at
    // once) must not overflow into the kernel's backlog list.
    params.flags = flags | IORING_SETUP_CQSIZE;
    params.cq_entries = opts.sq_entries * 4;
    rc = io_uring_queue_init_params(opts.sq_entries, &ring_, &params);
    if (rc == 0) {
      features_.setup_flags = flags;
      break;
    }
    // EINVAL: the kernel does not know a flag; try the next set. Anything else
    // (ENOMEM, EPERM from io_uring_disabled, ENOSYS) will not improve.
    if (rc != -EINVAL) break;
  }
  if (rc != 0) throw std::system_error(-rc, std::generic_category(), "io_uring_queue_init");
  features_.single_issuer = features_.setup_flags & IORING_SETUP_SINGLE_ISSUER;
  features_.defer_taskrun = features_.setup_flags & IORING_SETUP_DEFER_TASKRUN;
  features_.coop_taskrun = features_.setup_flags & IORING_SETUP_COOP_TASKRUN;
  features_.waitid_op = opts.allow_waitid_op && probe_waitid(&ring_);
  // A child between clone and exec must not see the rings (it would share them).
  io_uring_ring_dontfork(&ring_);
  current_reactor = this;
}

Reactor::~Reactor() {
  // Anything still queued here belongs to frames run() already shut down.
  io_uring_queue_exit(&ring_);
  current_reactor = nullptr;
}

Reactor& reactor() {
  if (!current_reactor) std::abort();  // programming error: no reactor on this thread
  return *current_reactor;
}
bool has_reactor() noexcept { return current_reactor != nullptr; }

io_uring_sqe* Reactor::sqe() {
  for (;;) {
    if (io_uring_sqe* s = io_uring_get_sqe(&ring_)) {
      // Fresh user_data: a stale pointer from the slot's last use must never leak
      // into a CQE (every caller sets its own afterwards).
      io_uring_sqe_set_data64(s, kCancelUserData);
      return s;
    }
    ++stats_.sq_full;
    flush_and_wait(false);
  }
}

void Reactor::reserve(unsigned n) {
  while (io_uring_sq_space_left(&ring_) < n) {
    ++stats_.sq_full;
    flush_and_wait(false);
  }
}

void Reactor::cancel(Completion* target) {
  if (target->cancel_sent) return;  // one request is enough; the CQE will come
  target->cancel_sent = true;
  io_uring_sqe* s = sqe();
  io_uring_prep_cancel64(s, reinterpret_cast<std::uint64_t>(target), 0);
  io_uring_sqe_set_data64(s, kCancelUserData);
  ++stats_.cancels;
}

void Reactor::track(Completion* c) noexcept {
  c->inflight_prev = nullptr;
  c->cancel_sent = false;
  c->inflight_next = inflight_head_;
  if (inflight_head_) inflight_head_->inflight_prev = c;
  inflight_head_ = c;
  ++stats_.inflight;
}

void Reactor::untrack(Completion* c) noexcept {
  if (c->inflight_prev) c->inflight_prev->inflight_next = c->inflight_next;
  else inflight_head_ = c->inflight_next;
  if (c->inflight_next) c->inflight_next->inflight_prev = c->inflight_prev;
  c->inflight_prev = c->inflight_next = nullptr;
  --stats_.inflight;
}

void Reactor::link_actor(ActorNode* n) noexcept {
  n->linked = true;
  n->prev = nullptr;
  n->next = actors_head_;
  if (actors_head_) actors_head_->prev = n;
  actors_head_ = n;
  ++stats_.actors;
}

void Reactor::unlink_actor(ActorNode* n) noexcept {
  if (n->prev) n->prev->next = n->next;
  else if (actors_head_ == n) actors_head_ = n->next;
  if (n->next) n->next->prev = n->prev;
  n->prev = n->next = nullptr;
  n->linked = false;
  --stats_.actors;
}

void Reactor::report_failure(const std::string& actor, const std::exception_ptr& e) {
  ++stats_.actor_failures;
  if (failure_handler_) {
    failure_handler_(actor, e);
    return;
  }
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "actor %s failed: %s\n", actor.c_str(), ex.what());
  } catch (...) {
    std::fprintf(stderr, "actor %s failed with a non-standard exception\n", actor.c_str());
  }
}

const ReactorStats& Reactor::stats() const noexcept {
  stats_.cq_overflow = ring_.cq.koverflow ? *ring_.cq.koverflow : 0;
  return stats_;
}

// Phase 1: resume what is ready. Only the coroutines queued when the phase began
// run now; whatever they schedule waits one round, so I/O is polled between.
void Reactor::run_ready() {
  resumes_this_round_ = 0;
  turn_taken_ = !turn_waiters_.empty();
  if (turn_taken_) {
    ready_.push_back(turn_waiters_.front());
    turn_waiters_.pop_front();
  }
  for (std::size_t n = ready_.size(); n > 0 && !ready_.empty(); --n) {
    std::coroutine_handle<> h = ready_.front();
    ready_.pop_front();
    ++stats_.resumes;
    ++resumes_this_round_;
    // Through the trampoline, so task hand-overs inside run in constant stack.
    detail::drive(h);
  }
}

// Phase 2: submit, and sleep in the kernel only when nothing is ready. Timers are
// io_uring timeouts, so there is no timer wheel to consult: an idle daemon sleeps
// until the kernel posts a CQE.
void Reactor::flush_and_wait(bool may_block) {
  for (;;) {
    const bool block = may_block && ready_.empty() && turn_waiters_.empty();
    int rc;
    if (block) {
      if (before_sleep_) std::exchange(before_sleep_, nullptr)();
      rc = io_uring_submit_and_wait(&ring_, 1);
    } else if (io_uring_sq_ready(&ring_) > 0) {
      // TRICKY: with DEFER_TASKRUN a plain submit never runs the deferred
      // completion work (timer expiries, poll-driven reads), so a loop that always
      // has something ready and something to submit would starve them forever.
      rc = features_.defer_taskrun ? io_uring_submit_and_get_events(&ring_) : io_uring_submit(&ring_);
    } else {
      // Nothing to submit, but with DEFER_TASKRUN completions only appear when we
      // enter the kernel; get_events runs that deferred work without waiting.
      rc = features_.defer_taskrun ? io_uring_get_events(&ring_) : 0;
    }
    if (rc >= 0) {
      if (rc > 0 || block) ++stats_.submits;
      if (block) ++stats_.waits;
      break;
    }
    if (rc == -EINTR) continue;
    // EBUSY/EAGAIN: the kernel holds completions we have not reaped (CQ full or
    // overflowed). Reaping only enqueues coroutines, so it is safe from anywhere.
    if (rc == -EBUSY || rc == -EAGAIN) {
      reap();
      continue;
    }
    throw std::system_error(-rc, std::generic_category(), "io_uring_enter");
  }
  reap();
}

// Phase 3 and 4: walk the CQ, dispatch each CQE to its one target, advance once.
void Reactor::reap() {
  unsigned head;
  unsigned count = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    ++count;
    const std::uint64_t data = io_uring_cqe_get_data64(cqe);
    if (data == kCancelUserData) continue;  // cancel outcome; the target's own CQE follows
    // user_data is the Completion's address (tag bits below its alignment): io_uring hands
    // back an integer, so this cast is the design, not an accident.
    auto* target = reinterpret_cast<Completion*>(data & ~std::uint64_t{7});  // NOLINT(performance-no-int-to-ptr)
    if (data & kLinkedTimeoutTag) target->complete_linked_timeout(cqe->res);
    else target->complete(cqe->res, cqe->flags);
  }
  io_uring_cq_advance(&ring_, count);
  stats_.cqes += count;
}

void Reactor::run_root(std::coroutine_handle<> root) {
  schedule(root);
  while (!root.done()) {
    run_ready();
    if (root.done()) break;
    flush_and_wait(true);
  }
  shutdown();
}

// Shutdown = cancel everything, then drain (tokio-uring's rule): no frame is freed
// while the kernel may still write into it.
void Reactor::shutdown() {
  stopping_ = true;
  // Bounded: a coroutine that loops on ECANCELED forever must not hang exit.
  for (int round = 0; round < 100000 && (inflight_head_ || !ready_.empty()); ++round) {
    for (Completion* c = inflight_head_; c; c = c->inflight_next) cancel(c);
    run_ready();
    if (inflight_head_) flush_and_wait(ready_.empty());
  }
  // Actors now suspended on something other than the ring (a channel, a child
  // task) are destroyed; their frames release what they own.
  while (actors_head_) {
    ActorNode* n = actors_head_;
    unlink_actor(n);
    n->handle.destroy();
  }
  // Only reachable if the bounded drain above gave up: whatever is still queued
  // may belong to the frames just destroyed, and must never be resumed.
  ready_.clear();
  turn_waiters_.clear();
  stopping_ = false;
}

}  // namespace runtime
