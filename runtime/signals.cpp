#include "runtime/signals.hpp"

#include <sys/signalfd.h>

#include <cstddef>
#include <span>

#include "runtime/ops_rw.hpp"

namespace runtime {

Result<SignalSet> SignalSet::open(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) sigaddset(&set, s);
  sigset_t old;
  // Blocked first, so a signal arriving between here and signalfd() is queued,
  // not delivered with its default (fatal) action.
  if (int rc = pthread_sigmask(SIG_BLOCK, &set, &old); rc != 0) return Result<SignalSet>::failure(rc);
  int fd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) {
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return Result<SignalSet>::failure(err);
  }
  return SignalSet(Fd(fd), set, old);
}

SignalSet::~SignalSet() {
  if (fd_.valid()) pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

Task<Result<int>> SignalSet::next(std::stop_token stop) {
  signalfd_siginfo info{};
  auto buf = std::as_writable_bytes(std::span(&info, 1));
  for (;;) {
    Result<int> r = co_await read(fd_.get(), buf).stop_on(stop);
    if (r.ok() && static_cast<std::size_t>(r.value()) == sizeof info)
      co_return Result<int>(static_cast<int>(info.ssi_signo));
    // EAGAIN: another reader took it (a non-blocking fd polled by the ring can race
    // with nothing here, but be tolerant). Anything else is final.
    if (!r.ok() && r.error() != EAGAIN) co_return Result<int>::failure(r.error());
  }
}

}  // namespace runtime
