#pragma once
// LogActor: moves a service's stdout or stderr from its pipe into the LogStore with
// IORING_OP_SPLICE (pipe -> file at an explicit offset; no copy through user space).
// A bulk stream (1 MiB within a second) is staged: splice(2) on the loop moves the pipe's
// pages into a private pipe, which IORING_OP_SPLICE writes out (log_actor.cpp says why).
//
// The service must never block on its output: when the file refuses bytes (ENOSPC,
// EDQUOT, EFBIG, EIO...) the pipe is drained into /dev/null, the bytes are counted as
// dropped, the episode is reported once, the file is retried every second, and the
// recovery is reported with the dropped count.
#include <cstdint>
#include <functional>
#include <stop_token>

#include "actors/log_store.hpp"
#include "runtime/fd.hpp"
#include "runtime/task.hpp"

namespace actors {

// A full-disk episode: reported once when it begins (resumed == false, dropped == 0)
// and once when the file takes bytes again (resumed == true, dropped = bytes lost
// during the episode). The Supervisor turns these into "log_dropped"/"log_resumed".
struct DropEpisode {
  Stream stream = Stream::out;
  bool resumed = false;
  int error = 0;              // the errno that started the episode
  std::uint64_t dropped = 0;  // bytes dropped in this episode (when resumed)
};

struct CaptureResult {
  std::uint64_t captured = 0;  // bytes spliced into files by this capture
  std::uint64_t dropped = 0;   // bytes drained to /dev/null by this capture
  std::uint64_t staged = 0;    // of captured + dropped, bytes that went through the
                               // staging pipe (0 for a stream that never was bulk)
  bool eof = false;            // the pipe's write ends are all closed
  bool stopped = false;        // ended by the stop token
  int error = 0;               // a pipe-side error that ended capture
};

// Captures until EOF (the service and every child holding the pipe closed it), a
// pipe-side error, or `stop`. On stop, what is already in the pipe is drained without
// waiting (bounded to a few pipe-fulls, so a service still writing cannot hold it), then
// capture returns; bytes written after that stay in the pipe for the next reader, or
// are lost when the pipe is closed. Raises the pipe to 1 MiB (F_SETPIPE_SZ) where allowed.
// `pipe_read_end` must be non-blocking (runtime::Process makes it so). Two captures of
// one stream (an overlap restart's two instances) take turns (LogStore::try_take_turn):
// the file gets whole pipe chunks of each, never one on top of the other.
using DropCallback = std::function<void(const DropEpisode&)>;
runtime::Task<CaptureResult> capture(LogStore& store, Stream stream, runtime::Fd pipe_read_end,
                                     std::stop_token stop, DropCallback on_drop = {});

}  // namespace actors
