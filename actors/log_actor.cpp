#include "actors/log_actor.hpp"

#include <fcntl.h>
#include <poll.h>

#include <algorithm>
#include <chrono>

#include "runtime/ops_rw.hpp"
#include "runtime/ops_wait.hpp"
#include "runtime/reactor.hpp"
#include "runtime/clock.hpp"

namespace actors {

namespace {

using runtime::Task;
using Clock = std::chrono::steady_clock;

constexpr unsigned kSpliceMax = 1u << 20;
constexpr int kPipeSize = 1 << 20;
// NONBLOCK: an empty pipe answers EAGAIN instead of parking an io-wq worker, so the
// only wait is the ring poll (which the stop token can cancel). MOVE is a hint the
// kernel may ignore; it costs nothing.
constexpr unsigned kSpliceFlags = SPLICE_F_NONBLOCK | SPLICE_F_MOVE;
constexpr auto kRetryFile = std::chrono::seconds(1);
// After a stop, at most this many splices drain what is already in the pipe.
constexpr int kDrainSteps = 8;

class Capturer {
 public:
  Capturer(LogStore& store, Stream stream, runtime::Fd pipe, DropCallback cb)
      : store_(store), stream_(stream), pipe_(std::move(pipe)), on_drop_(std::move(cb)) {}

  CaptureResult result;

  // Moves what the pipe holds right now, once. > 0: bytes moved (into the file or
  // dropped); 0: EOF; -EAGAIN: the pipe is empty; other negative: a pipe-side error.
  Task<int> step() {
    if (!dropping_ || Clock::now() - last_try_ >= kRetryFile) {
      last_try_ = Clock::now();
      const int fd = store_.current_fd(stream_);
      // Offset explicit: the file is not O_APPEND (splice rejects O_APPEND with EINVAL),
      // and the store's committed size is the only truth about where bytes go.
      const std::uint64_t off = store_.current_offset(stream_);
      const auto len = static_cast<unsigned>(std::min<std::uint64_t>(kSpliceMax, store_.room(stream_)));
      runtime::Result<int> r = runtime::Result<int>::failure(EBADF);
      if (fd >= 0)
        r = co_await runtime::splice(pipe_.get(), -1, fd, static_cast<std::int64_t>(off), len, kSpliceFlags);
      if (r.ok()) {
        if (r.value() == 0) co_return 0;
        const auto n = static_cast<std::uint64_t>(r.value());
        store_.commit(stream_, n, runtime::now_unix_ms());
        result.captured += n;
        if (dropping_) {
          dropping_ = false;
          report(DropEpisode{stream_, true, drop_error_, episode_dropped_});
        }
        co_return r.value();
      }
      if (r.error() == EAGAIN || r.error() == ECANCELED) co_return -r.error();
      // The file refused (ENOSPC, EDQUOT, EFBIG, EIO, a failed reopen): the bytes must
      // still leave the pipe, or the service blocks in write().
      if (!dropping_) {
        dropping_ = true;
        drop_error_ = r.error();
        episode_dropped_ = 0;
        report(DropEpisode{stream_, false, drop_error_, 0});
      }
    }
    if (!devnull_) {
      devnull_.reset(::open("/dev/null", O_WRONLY | O_CLOEXEC));
      if (!devnull_) co_return -errno;
    }
    auto r = co_await runtime::splice(pipe_.get(), -1, devnull_.get(), -1, kSpliceMax, kSpliceFlags);
    if (!r.ok()) co_return -r.error();
    const auto n = static_cast<std::uint64_t>(r.value());
    store_.add_dropped(stream_, n);
    result.dropped += n;
    episode_dropped_ += n;
    co_return r.value();
  }

  int pipe_fd() const { return pipe_.get(); }

 private:
  void report(const DropEpisode& e) {
    if (on_drop_) on_drop_(e);
  }

  LogStore& store_;
  Stream stream_;
  runtime::Fd pipe_;
  DropCallback on_drop_;
  runtime::Fd devnull_;
  bool dropping_ = false;
  int drop_error_ = 0;
  std::uint64_t episode_dropped_ = 0;
  Clock::time_point last_try_{};
};

}  // namespace

runtime::Task<CaptureResult> capture(LogStore& store, Stream stream, runtime::Fd pipe_read_end,
                                     std::stop_token stop, DropCallback on_drop) {
  if (!store.claim(stream)) {
    CaptureResult busy;
    busy.error = EBUSY;
    co_return busy;
  }
  struct Release {
    LogStore& store;
    Stream stream;
    ~Release() { store.release(stream); }
  } release{store, stream};

  // Fewer wake-ups per MiB and more room before a slow disk stalls the writer. EPERM
  // (over /proc/sys/fs/pipe-max-size for an unprivileged daemon) keeps the default.
  (void)::fcntl(pipe_read_end.get(), F_SETPIPE_SZ, kPipeSize);
  Capturer cap(store, stream, std::move(pipe_read_end), std::move(on_drop));

  for (;;) {
    if (stop.stop_requested()) break;
    // POLLHUP (all writers gone) is reported even though only POLLIN is asked for;
    // the splice that follows then returns 0.
    auto p = co_await runtime::poll(cap.pipe_fd(), POLLIN).stop_on(stop);
    if (!p.ok()) {
      if (p.error() == ECANCELED) break;
      cap.result.error = p.error();
      co_return cap.result;
    }
    for (;;) {
      const int n = co_await cap.step();
      if (n > 0) continue;
      if (n == 0) {
        cap.result.eof = true;
        co_return cap.result;
      }
      if (n == -EAGAIN) break;
      if (n == -ECANCELED) break;  // the reactor is shutting down
      cap.result.error = -n;
      co_return cap.result;
    }
    if (runtime::reactor().stopping()) break;
  }

  // Stopped: take what is already in the pipe without waiting for more.
  cap.result.stopped = true;
  for (int i = 0; i < kDrainSteps && !runtime::reactor().stopping(); ++i) {
    const int n = co_await cap.step();
    if (n == 0) cap.result.eof = true;
    if (n <= 0) break;
  }
  co_return cap.result;
}

}  // namespace actors
