#pragma once
// Signals arrive as data: the set is blocked for the thread and read from a
// signalfd through the ring. No handler ever runs, so no async-signal-safety
// hazards, and a signal during any await is simply queued.
#include <signal.h>

#include <initializer_list>
#include <stop_token>

#include "runtime/fd.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace runtime {

class SignalSet {
 public:
  // Blocks `signals` and opens the signalfd. The previous mask comes back when the
  // set is destroyed. Children restore an empty mask before exec (process.cpp).
  static Result<SignalSet> open(std::initializer_list<int> signals);
  SignalSet(SignalSet&&) noexcept = default;
  SignalSet& operator=(SignalSet&&) noexcept = default;
  ~SignalSet();

  // The next signal number; ECANCELED when `stop` is requested.
  Task<Result<int>> next(std::stop_token stop = {});
  int fd() const noexcept { return fd_.get(); }

 private:
  SignalSet(Fd fd, sigset_t set, sigset_t old) : fd_(std::move(fd)), set_(set), old_(old) {}
  Fd fd_;
  sigset_t set_{};
  sigset_t old_{};
};

}  // namespace runtime
