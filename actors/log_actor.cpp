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
// Steps a capturer may take per turn while another capturer of the stream waits.
constexpr int kTurnSteps = 16;
// A stream that moves this much within one window is a bulk writer and gets a staging
// pipe; quieter streams never pay its two descriptors.
constexpr std::uint64_t kBulkBytes = 1u << 20;
constexpr auto kBulkWindow = std::chrono::seconds(1);

class Capturer {
 public:
  Capturer(LogStore& store, Stream stream, runtime::Fd pipe, DropCallback cb)
      : store_(store), stream_(stream), pipe_(std::move(pipe)), on_drop_(std::move(cb)) {}

  CaptureResult result;

  // Moves what the pipe holds right now, once. > 0: bytes moved (into the file or
  // dropped); 0: EOF; -EAGAIN: the pipe is empty; other negative: a pipe-side error.
  //
  // Bulk streams go in two stages. A splice pipe -> file holds the source pipe's lock
  // for the whole page-cache write, so the service cannot write meanwhile and each of
  // our wake-ups finds one write's worth (64 KiB) to move: many io-wq round trips, the
  // writer and the worker taking turns on one lock. So the service pipe is first
  // emptied into a private staging pipe by splice(2) on the loop (page references
  // move; no copy, no disk, NONBLOCK on both pipes: it cannot sleep), then the staging
  // pipe goes to the file by IORING_OP_SPLICE on an io-wq worker, which may block on a
  // slow disk without holding the loop, while the service refills its own pipe.
  Task<int> step() {
    if (!stage_w_) {
      const int n = co_await to_file(pipe_.get(), kSpliceMax);
      if (n > 0) note_volume(static_cast<std::uint64_t>(n));
      co_return n;
    }
    if (staged_ == 0) {
      // The staging pipe is empty, so EAGAIN can only mean the service's pipe is.
      const ssize_t n = ::splice(pipe_.get(), nullptr, stage_w_.get(), nullptr, kSpliceMax, SPLICE_F_NONBLOCK);
      if (n < 0 && errno == EINVAL) {
        // Not a pipe after all (splice between pipes only): back to one stage.
        stage_failed_ = true;
        stage_r_.reset();
        stage_w_.reset();
        co_return co_await to_file(pipe_.get(), kSpliceMax);
      }
      if (n <= 0) co_return n == 0 ? 0 : -errno;
      staged_ = static_cast<std::uint64_t>(n);
      result.staged += staged_;
    }
    co_return co_await flush_staged();
  }

  int pipe_fd() const { return pipe_.get(); }

 private:
  Task<int> flush_staged() {
    int moved = 0;
    while (staged_ > 0) {
      const int r = co_await to_file(stage_r_.get(), staged_);
      if (r > 0) {
        staged_ -= static_cast<std::uint64_t>(r);
        moved += r;
        continue;
      }
      // The ring is going away with the reactor: these bytes already left the
      // service's pipe, so they go out here, synchronously, once.
      if (r == -ECANCELED) flush_staged_now();
      if (moved > 0) break;
      co_return r == 0 ? -EIO : r;  // 0: a staged byte vanished, which cannot happen
    }
    co_return moved;
  }

  void flush_staged_now() {
    while (staged_ > 0) {
      const int fd = dropping_ ? -1 : store_.current_fd(stream_);
      const auto len = static_cast<std::size_t>(std::min(staged_, store_.room(stream_)));
      auto off = static_cast<loff_t>(store_.current_offset(stream_));
      const ssize_t n = fd >= 0 ? ::splice(stage_r_.get(), nullptr, fd, &off, len, 0) : -1;
      if (n > 0) {
        store_.commit(stream_, static_cast<std::uint64_t>(n), runtime::now_unix_ms());
        result.captured += static_cast<std::uint64_t>(n);
        staged_ -= static_cast<std::uint64_t>(n);
        continue;
      }
      store_.add_dropped(stream_, staged_);
      result.dropped += staged_;
      staged_ = 0;
    }
  }

  // Bulk detection: kBulkBytes within kBulkWindow opens the staging pipe (for good:
  // a stream that bursts once tends to burst again). Without one (EMFILE, ENFILE) the
  // stream stays on the single-stage path, which only costs CPU.
  void note_volume(std::uint64_t n) {
    const auto now = Clock::now();
    if (now - window_start_ > kBulkWindow) {
      window_start_ = now;
      window_bytes_ = 0;
    }
    window_bytes_ += n;
    if (window_bytes_ < kBulkBytes || stage_failed_) return;
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
      stage_failed_ = true;
      return;
    }
    stage_r_.reset(fds[0]);
    stage_w_.reset(fds[1]);
    // As big as the service's pipe, so one splice can take all of it.
    (void)::fcntl(fds[0], F_SETPIPE_SZ, kPipeSize);
  }

  // Splices up to `max` bytes from `src` (the service's pipe or the staging pipe) into
  // the file, or into /dev/null while the file refuses them. Returns as step() does.
  Task<int> to_file(int src, std::uint64_t max) {
    if (!dropping_ || Clock::now() - last_try_ >= kRetryFile) {
      last_try_ = Clock::now();
      const int fd = store_.current_fd(stream_);
      // Offset explicit: the file is not O_APPEND (splice rejects O_APPEND with EINVAL),
      // and the store's committed size is the only truth about where bytes go.
      const std::uint64_t off = store_.current_offset(stream_);
      const auto len = static_cast<unsigned>(std::min(max, store_.room(stream_)));
      runtime::Result<int> r = runtime::Result<int>::failure(EBADF);
      if (fd >= 0) r = co_await runtime::splice(src, -1, fd, static_cast<std::int64_t>(off), len, kSpliceFlags);
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
    const auto len = static_cast<unsigned>(std::min<std::uint64_t>(max, kSpliceMax));
    auto r = co_await runtime::splice(src, -1, devnull_.get(), -1, len, kSpliceFlags);
    if (!r.ok()) co_return -r.error();
    const auto n = static_cast<std::uint64_t>(r.value());
    store_.add_dropped(stream_, n);
    result.dropped += n;
    episode_dropped_ += n;
    co_return r.value();
  }

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
  runtime::Fd stage_r_, stage_w_;  // the staging pipe, once the stream is bulk
  std::uint64_t staged_ = 0;       // bytes in it: taken from the service, not yet placed
  bool stage_failed_ = false;
  Clock::time_point window_start_{};
  std::uint64_t window_bytes_ = 0;
};

// The stream's turn (LogStore::try_take_turn), held across one batch of steps and
// given back on every way out.
struct StreamTurn {
  LogStore& store;
  Stream stream;
  bool held = false;
  void end() {
    if (held) store.end_turn(stream);
    held = false;
  }
  StreamTurn(LogStore& s, Stream st) : store(s), stream(st) {}
  StreamTurn(const StreamTurn&) = delete;
  StreamTurn& operator=(const StreamTurn&) = delete;
  ~StreamTurn() { end(); }
  // Not `if (!try_take_turn() && !(co_await wait_turn()).ok())`: GCC 12 miscompiled that
  // co_await (its result a temporary Result with a destructor, on the right of `&&`):
  // the awaited Task never ran, or the resume switch hit its unreachable default (SIGILL).
  Task<bool> take(std::stop_token st) {
    if (!store.try_take_turn(stream)) {
      runtime::Result<void> r = co_await store.wait_turn(stream, std::move(st));
      if (!r.ok()) co_return false;
    }
    held = true;
    co_return true;
  }
};

}  // namespace

runtime::Task<CaptureResult> capture(LogStore& store, Stream stream, runtime::Fd pipe_read_end,
                                     std::stop_token stop, DropCallback on_drop) {
  StreamTurn turn{store, stream};
  struct Capturing {
    LogStore& store;
    Stream stream;
    ~Capturing() { store.capture_ended(stream); }
  };
  store.capture_began(stream);
  const Capturing capturing{store, stream};

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
    // Uncontended (one instance) the turn is taken without a coroutine; with two, a
    // batch of kTurnSteps each keeps one chatty instance from starving the other.
    if (!store.try_take_turn(stream)) {
      if (!co_await turn.take(stop)) break;
    } else {
      turn.held = true;
    }
    for (int steps = 0; steps < kTurnSteps; ++steps) {
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
    turn.end();
    if (runtime::reactor().stopping()) break;
  }

  // Stopped: take what is already in the pipe without waiting for more.
  cap.result.stopped = true;
  turn.end();
  if (!co_await turn.take({})) co_return cap.result;
  for (int i = 0; i < kDrainSteps && !runtime::reactor().stopping(); ++i) {
    const int n = co_await cap.step();
    if (n == 0) cap.result.eof = true;
    if (n <= 0) break;
  }
  co_return cap.result;
}

}  // namespace actors
