#pragma once
// EventLog: the daemon's append-only journal, <data_dir>/events.log.
//
// One JSON object per line, `{"seq":12,"time":"2026-11-23T13:30:00.123Z","service":"web",
// "kind":"restarted", ...details}`. `service` is null for daemon-level events. append() never
// blocks and never fails: the line goes to an in-memory ring (the recent history that followers
// and GET /v1/events read) and to a queue that the writer actor (run()) writes through the ring
// in batches as soon as they form (so a kill -9 of the daemon keeps them: the page cache
// outlives it), with one fdatasync for all that was written (group commit), at most one per
// kSyncInterval while events keep coming. An idle log does no I/O at all.
//
// Usage (one reactor thread):
//   auto log = EventLog::open(data_dir + "/events.log");   // start-up, synchronous
//   spawn((*log)->run(stop_token), "event-log");
//   (*log)->append("web", EventType::exited, {{"code", 3}});
//   ... shutdown: co_await log.flush(); request stop; the writer drains what is queued.
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "actors/event_type.hpp"
#include "runtime/notify.hpp"
#include "runtime/fd.hpp"
#include "runtime/reactor.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace actors {

using runtime::Result;
using runtime::Task;

// One event as stored: the JSON text of its line, without the newline.
struct EventRecord {
  std::uint64_t seq = 0;
  std::string line;
  // The parsed object (discarded/empty object if the line is not valid JSON).
  nlohmann::json parse() const;
};

struct EventLogStats {
  std::uint64_t appended = 0;        // events appended since open
  std::uint64_t bytes_written = 0;   // bytes written to the file since open
  std::uint64_t fsyncs = 0;          // fdatasync calls (at most one per kSyncInterval when busy)
  std::uint64_t batches = 0;         // write batches
  std::uint64_t write_errors = 0;    // failed write/fdatasync attempts (ENOSPC, EIO)
  std::uint64_t dropped = 0;         // events never queued for disk (queue over its cap)
  std::uint64_t corrupt_lines = 0;   // unparsable lines skipped at open (in the scanned tail)
  std::uint64_t truncated_bytes = 0; // torn tail removed at open
  std::uint64_t file_size = 0;       // bytes in events.log (written so far)
  std::uint64_t rotations = 0;       // rotations since open
  std::uint64_t rotation_errors = 0; // failed renames/creates/unlinks (writing goes on)
};

// Limits of the rotated files. 0 max_size / max_age: no such limit, so the defaults never
// rotate; the daemon passes [events] from the config (8 MiB x 4 files, 30 days by default).
struct EventLogLimits {
  std::uint64_t max_size = 0;
  int keep = 4;  // files in all, the current one included (< 1 counts as 1)
  std::int64_t max_age_ms = 0;
};

class EventLog {
 public:
  static constexpr std::size_t kDefaultRingCapacity = 1000;
  // Bytes queued for disk while the disk refuses them; beyond this, new events stay in
  // the ring only (counted as `dropped`) so a full disk cannot eat the daemon's memory.
  static constexpr std::size_t kMaxQueuedBytes = 4u << 20;
  // The shortest time between two fdatasyncs: a written event is on disk at most this
  // long (plus the sync's own time) after its write; flush() does not wait for it.
  static constexpr std::chrono::milliseconds kSyncInterval{100};

  // Start-up, synchronous. Opens (creating) `path`, cuts a torn last line (no trailing
  // '\n': a kill -9 or power cut mid-write) with ftruncate, and loads the most recent
  // events into the ring; numbering continues after the last seq found.
  static Result<std::unique_ptr<EventLog>> open(std::string path,
                                                std::size_t ring_capacity = kDefaultRingCapacity,
                                                EventLogLimits limits = {});

  // Reload: new limits apply from the writer's next batch (files beyond a smaller keep go then).
  void set_limits(EventLogLimits limits);
  const EventLogLimits& limits() const noexcept { return limits_; }

  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;
  ~EventLog();

  // Non-blocking, from any actor on the reactor thread. Assigns the next seq, stamps the
  // time (UTC, ms), merges `details` (an object; anything else is stored under "detail")
  // flat into the line. Detail keys seq/time/service/kind are renamed "detail_<key>".
  std::uint64_t append(std::optional<std::string> service, EventType type,
                       nlohmann::json details = nlohmann::json::object());

  // The writer actor. Sleeps while nothing is queued or due to sync. On stop it writes and
  // syncs what is already queued, then returns (unless the disk is failing: then at once).
  // Write errors keep the events queued and are retried after 1 s.
  Task<void> run(std::stop_token stop);

  // Resolves once every event appended before the call is durable (written and
  // fdatasync'ed), or when the writer has ended (run() returned). Needs run() to have
  // been spawned: before it starts, flush() waits for it.
  Task<void> flush();

  // Events with seq > after_seq, oldest first, at most `max`. From memory when the ring
  // reaches back far enough, else (synchronously) from the file, then the ring.
  std::vector<EventRecord> since(std::uint64_t after_seq, std::size_t max) const;

  // Resolves once an event with seq > `seq` exists; ECANCELED on stop. Any number of
  // followers may wait at once.
  Task<Result<void>> wait_after(std::uint64_t seq, std::stop_token stop);

  std::uint64_t last_seq() const noexcept { return last_seq_; }
  std::uint64_t durable_seq() const noexcept { return durable_seq_; }
  const EventLogStats& stats() const noexcept { return stats_; }
  const std::string& path() const noexcept { return path_; }

 private:
  EventLog(std::string path, runtime::Fd fd, std::size_t ring_capacity);
  Task<bool> write_batch(std::stop_token stop);
  Task<void> sync();
  void wake_deferred_sync() noexcept;
  // After a batch (and at open): rotates when the current file is full or too old, and
  // removes rotated files beyond keep or max_age. Synchronous, between batches.
  void maybe_rotate(std::int64_t now_ms);
  void rotate();
  void trim(std::int64_t now_ms);

  std::string path_;
  runtime::Fd fd_;
  EventLogLimits limits_;
  std::int64_t current_first_ms_ = 0;  // time of the current file's first event; 0: empty
  std::int64_t last_trim_ms_ = 0;
  std::size_t ring_capacity_;
  std::deque<EventRecord> ring_;
  std::uint64_t last_seq_ = 0;
  std::uint64_t durable_seq_ = 0;
  std::uint64_t written_seq_ = 0;   // write()n, not necessarily synced
  std::uint64_t flush_target_ = 0;  // a flush() waits for this seq: sync without delay
  std::chrono::steady_clock::time_point last_sync_{};
  // Set while the writer waits out kSyncInterval; stopping it ends the wait.
  std::optional<std::stop_source> sync_wait_;
  // Appended but not yet handed to the writer; then the batch being written.
  std::string queue_;
  std::uint64_t queue_last_seq_ = 0;
  std::string batch_;
  std::size_t batch_done_ = 0;
  std::uint64_t batch_last_seq_ = 0;
  bool writer_ended_ = false;
  runtime::Notify writer_wake_;
  runtime::Notify durable_waiters_;
  runtime::Notify followers_;
  EventLogStats stats_;
};

// Rotated files read back at most (a bound on `keep`, so a reader's probe loop ends).
inline constexpr int kMaxEventFiles = 100;

// Reads events with seq > after_seq from events.log and its rotated files (path.1, path.2 ...
// oldest last), oldest first, at most `max`. Only the files that can hold such events are
// read. Tolerant: a torn last line and corrupt lines are skipped (`corrupt` counts them).
std::vector<EventRecord> read_events(const std::string& path, std::uint64_t after_seq,
                               std::size_t max = SIZE_MAX, std::uint64_t* corrupt = nullptr);
// The same from one file only.
std::vector<EventRecord> read_event_file(const std::string& path, std::uint64_t after_seq,
                                         std::size_t max = SIZE_MAX, std::uint64_t* corrupt = nullptr);
// "events.log.3" for generation 3; the path itself for 0.
std::string event_file_path(const std::string& path, int generation);
// Unix ms of a "2026-11-23T13:30:00.123Z" stamp (format_utc_ms); nullopt if malformed.
std::optional<std::int64_t> parse_utc_ms(std::string_view text);

// Parses one line; nullopt unless it is a JSON object with an unsigned "seq".
std::optional<EventRecord> parse_event_line(std::string_view line);

// "2026-11-23T13:30:00.123Z" for a unix time in milliseconds.
std::string format_utc_ms(std::int64_t unix_ms);

}  // namespace actors
