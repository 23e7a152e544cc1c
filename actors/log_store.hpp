#pragma once
// LogStore: one service's captured output under <data_dir>/logs/<service>/, kept across
// the service's restarts (one store per service, or per trigger for its jobs).
//
// Files, per stream (stdout, stderr):
//   stdout.log, stdout.log.1 ... stdout.log.<keep-1>     current first, oldest last
//   stdout.log.idx (and .1.idx ...)                       time index, rotated with its log
//   stdout.log.gone, stdout.log.gone.idx                  the dropped oldest pair, unlinked
//                                                         off the loop (leftovers at open)
// Rotation happens when the current file reaches max_size; `keep` files in total remain.
//
// Logical positions: every stream has a monotonic 64-bit byte position across rotations
// (position = base of the file + offset in it). A follower holds a position, never a file
// name, so a rotation cannot lose its place. Bases are stored in each index header, so
// positions continue after a daemon restart.
//
// Index file: a 16-byte header {char magic[8] = "DLIDX001", uint64 base}, then records
// {uint64 offset_in_file, int64 unix_ms} (native endian), at most one per 250 ms per
// stream: "bytes from `offset` on were captured at `unix_ms`".
//
// Threading: one reactor thread. The capturer (LogActor) is the only writer of a stream:
// it splices into current_fd() at current_offset() and then calls commit(). Readers
// (HTTP) call read() in a loop and wait_growth() when caught up.
//
// Lifetime: owners (the Supervisor for a service, the TriggerDispatcher for a job) and
// followers share the store (shared_ptr), so it lives while anyone is parked in it. The owner
// calls close() when it drops the store: every follower wakes, sees closed(), and ends its
// stream; nobody else has to remember to end them first. Writes go on after close(): a
// service's store closes when its removal starts, its capture ends once it has stopped.
#include <array>
#include <cstdint>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>

#include "runtime/notify.hpp"
#include "runtime/fd.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace actors {

using runtime::Result;
using runtime::Task;

enum class Stream : std::uint8_t { out = 0, err = 1 };
std::string_view stream_name(Stream s);  // "stdout", "stderr"

struct LogChunk {
  std::string data;
  std::uint64_t pos = 0;      // logical position of data[0] (after any skip)
  std::uint64_t skipped = 0;  // bytes between the requested position and `pos` that are
                              // gone (rotated away); 0 normally
};

struct LogStreamStats {
  std::uint64_t bytes_written = 0;  // captured into files since open
  std::uint64_t bytes_dropped = 0;  // drained to /dev/null (full disk) since open
  std::uint64_t rotations = 0;
  std::uint64_t index_records = 0;
  std::uint64_t errors = 0;         // rotation/index I/O failures (logging goes on)
};

class LogStore {
 public:
  static constexpr std::int64_t kIndexIntervalMs = 250;

  // Start-up or service registration (synchronous). Creates `dir`, scans existing files
  // (positions continue where they were) and opens the current files for writing.
  // keep < 1 is treated as 1; max_size 0 as "never rotate".
  static Result<std::unique_ptr<LogStore>> open(std::string dir, std::uint64_t max_size, int keep);

  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;
  ~LogStore();

  // ---- capturer side (LogActor) ----
  // The current file (opened without O_APPEND: splice into an O_APPEND file is EINVAL)
  // and the offset to write at. Valid until the next commit()/set_limits().
  int current_fd(Stream s);  // rotates first if the file is full; reopens after a failure
  std::uint64_t current_offset(Stream s) const;
  // Bytes the current file may still take before it rotates (>= 1; SIZE_MAX-ish when
  // rotation is off). The capturer caps its splice to this so files end near max_size.
  std::uint64_t room(Stream s) const;
  // Records `n` bytes just written at current_offset(): indexes them, rotates when the
  // file is full, and wakes every follower. `unix_ms` is the capture time.
  void commit(Stream s, std::uint64_t n, std::int64_t unix_ms);
  // Counts bytes thrown away because the file could not take them.
  void add_dropped(Stream s, std::uint64_t n);
  // Capturers of one stream take turns (an overlap restart runs two instances, each
  // with its own pipe): the turn is held from current_offset() to commit(), so two
  // splices never aim at one offset. try_take_turn() is the uncontended path (no
  // coroutine); wait_turn() waits for it (ECANCELED on stop). end_turn() passes it on.
  bool try_take_turn(Stream s);
  Task<Result<void>> wait_turn(Stream s, std::stop_token stop);
  void end_turn(Stream s);

  // Captures in progress (capture() brackets itself with these). An instance's last
  // bytes are often spliced after its exit was recorded (the pipe drains once the exit is
  // seen): a reader that puts lines before their "exited" waits for the capture to end.
  void capture_began(Stream s) { ++capturing_[static_cast<std::size_t>(s)]; }
  void capture_ended(Stream s) {
    const auto i = static_cast<std::size_t>(s);
    --capturing_[i];
    ++captures_ended_[i];
    last_capture_end_[i] = end(s);
  }
  int capturing(Stream s) const { return capturing_[static_cast<std::size_t>(s)]; }
  std::uint64_t captures_ended(Stream s) const { return captures_ended_[static_cast<std::size_t>(s)]; }
  // end() when the last capture ended.
  std::uint64_t last_capture_end(Stream s) const { return last_capture_end_[static_cast<std::size_t>(s)]; }

  // ---- follower side (HTTP) ----
  // Up to `max` bytes from logical position `pos` (from one file: a chunk never spans a
  // rotation boundary, so the loop may return fewer bytes than available). A position
  // older than the oldest kept byte jumps forward, reporting `skipped`. At end: empty data.
  Result<LogChunk> read(Stream s, std::uint64_t pos, std::size_t max) const;
  // One past the last captured byte.
  std::uint64_t end(Stream s) const;
  // The oldest position still on disk.
  std::uint64_t begin(Stream s) const;
  // First position whose bytes may have been captured at or after `unix_ms` (may start
  // up to one index interval, 250 ms, earlier). end() when everything is older.
  std::uint64_t position_of_time(Stream s, std::int64_t unix_ms) const;
  // Start of the last `n` lines (an unterminated last line counts as one), looking back
  // across rotated files; begin() when there are fewer lines.
  std::uint64_t position_of_tail_lines(Stream s, std::size_t n) const;
  // Resolves once end(s) > known_end; ECANCELED on stop, ESHUTDOWN once the store is
  // closed (at once when it already is). Every follower is woken after each captured chunk.
  Task<Result<void>> wait_growth(Stream s, std::uint64_t known_end, std::stop_token stop);

  // ---- owner side ----
  // The owner is done with the store (the service is being removed): wakes every follower
  // and makes each later wait_growth() fail. Reads still work. Idempotent.
  void close();
  bool closed() const noexcept { return closed_; }

  // Reload: new limits apply from the next rotation; files beyond a smaller `keep` go now.
  void set_limits(std::uint64_t max_size, int keep);

  const LogStreamStats& stats(Stream s) const;
  const std::string& dir() const noexcept { return dir_; }
  std::uint64_t max_size() const noexcept { return max_size_; }
  int keep() const noexcept { return keep_; }

 private:
  struct StreamState;
  LogStore(std::string dir, std::uint64_t max_size, int keep);
  StreamState& st(Stream s) const { return *streams_[static_cast<std::size_t>(s)]; }
  std::string file_path(Stream s, int generation) const;  // 0 = current
  Result<void> open_stream(Stream s);
  void rotate(Stream s);
  void trim(Stream s);
  // Removes the oldest generation `g` (log and index) without freeing its pages on the
  // loop: see log_store.cpp.
  void discard_oldest(Stream s, int g);

  std::string dir_;
  std::uint64_t max_size_;
  int keep_;
  bool closed_ = false;
  std::array<int, 2> capturing_{};
  std::array<std::uint64_t, 2> captures_ended_{};
  std::array<std::uint64_t, 2> last_capture_end_{};
  std::array<std::unique_ptr<StreamState>, 2> streams_;
};

}  // namespace actors
