#pragma once
// TriggerQueue: the durable pending queue of accepted webhook deliveries,
// <data_dir>/triggers/queue.log (issue 14).
//
// The file is NDJSON, one record a line, folded in order at open():
//   {"op":"add","event":{id,delivery,trigger,provider,event,received,received_unix_ms,headers,body}}
//   {"op":"start","id":..,"n":3}                   dispatch number n begins (before the handler runs)
//   {"op":"attempt","id":..,"n":3,"error":"..."}   a dispatch that failed (n = attempts so far)
//   {"op":"done","id":..}                          the handler succeeded
//   {"op":"dead","id":..,"n":5,"error":"..."}      dead-lettered after max_attempts (n: attempts, if known)
//   {"op":"replay","id":..}                        an operator sent a done/dead event back
// An "add" must be on disk (written and fdatasync'ed) before the sender gets its 2xx; "start"
// is on disk before the handler runs and "done"/"attempt"/"dead" after it returns. An event
// whose last record is "start" at open was being dispatched when the daemon died: whether its
// handler finished is unknown, so the dispatcher dead-letters it (never runs it twice by
// itself) and an operator replays it. That makes "dispatched exactly once or dead-lettered".
// A torn last line (a crash mid-write: no newline, or not JSON) is cut at open, never folded.
//
// append() is the daemon's writer: lines from any number of coroutines are written through the
// ring in batches with one fdatasync each (group commit); each caller resumes when its own line
// is durable and folded. A failed write is cut back off the file (ftruncate to the size before
// it), so a torn record never glues onto the next one.
//
// compact() rewrites the file with what is still needed (pending and dead events, and the last
// kKeepDone done ones so inspect/replay still find them) into queue.log.tmp, fdatasyncs it and
// renames it over the old one: a crash leaves one of the two whole files.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/fd.hpp"
#include "runtime/notify.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace actors {

enum class QueuedState { pending, done, dead };
std::string_view queued_state_name(QueuedState s);

struct TriggerEvent {
  std::string id;        // the queue's own id ("ev-" + 16 hex digits)
  std::string delivery;  // the sender's delivery id ("" when it sent none)
  std::string trigger;
  std::string provider;
  std::string event;
  std::string received;  // RFC 3339 UTC
  std::int64_t received_unix_ms = 0;
  nlohmann::json headers = nlohmann::json::object();  // the ones that matter: never signatures
  std::string body;
  bool body_json = false;  // the body parsed as JSON when it came (within the depth limit)
  // Folded from the later records, not part of "add".
  QueuedState state = QueuedState::pending;
  int attempts = 0;
  std::string last_error;
  bool dispatching = false;  // a "start" with no outcome after it
  // In memory only: the next dispatch not before this (a failed one's backoff). After a
  // restart every pending event is due at once.
  std::chrono::steady_clock::time_point not_before{};

  nlohmann::json to_json(bool with_body) const;
  static bool from_json(const nlohmann::json& j, TriggerEvent& out);
};

struct TriggerQueueStats {
  std::uint64_t records = 0;          // records folded at open
  std::uint64_t corrupt_lines = 0;    // unparsable lines skipped (not the last)
  std::uint64_t truncated_bytes = 0;  // torn tail cut at open
  std::uint64_t compactions = 0;
};

class TriggerQueue {
 public:
  static constexpr std::size_t kDefaultMaxPending = 1000;
  // Bodies kept (pending and dead events; they are in memory for dispatch and replay).
  static constexpr std::size_t kDefaultMaxBytes = 64u << 20;
  static constexpr std::size_t kKeepDone = 100;
  static constexpr std::uint64_t kCompactAt = 1u << 20;  // file bytes before the first compaction

  // Start-up, synchronous: opens (creating) `path`, cuts a torn tail and folds the records.
  static runtime::Result<std::unique_ptr<TriggerQueue>> open(std::string path,
                                                             std::size_t max_pending = kDefaultMaxPending,
                                                             std::size_t max_bytes = kDefaultMaxBytes);

  // The record lines (without the newline) the writer appends.
  static std::string add_record(const TriggerEvent& e);
  static std::string start_record(std::string_view id, int n);
  static std::string attempt_record(std::string_view id, int n, std::string_view error);
  static std::string done_record(std::string_view id);
  static std::string dead_record(std::string_view id, std::string_view error, int attempts = 0);
  static std::string replay_record(std::string_view id);

  // Folds one record into memory (what open() does for every line); false if it is not one.
  bool apply(std::string_view line);
  // Writes `line` and a newline, then fdatasyncs. Blocking: the daemon's writer does the same
  // through the ring; this one is for start-up (compaction's caller) and tests.
  runtime::Result<void> append_sync(std::string_view line);
  runtime::Result<void> compact();
  // The daemon's durable append (see the top): resumes once `line` is on disk and folded.
  // Compacts (through the ring) when the file has grown past its threshold.
  runtime::Task<runtime::Result<void>> append(std::string line);

  // Why a new event cannot be queued now ("" when it can): the pending cap or the bytes cap.
  std::string full_reason(std::size_t body_bytes) const;
  std::size_t pending_count() const;
  const TriggerEvent* find(std::string_view id) const;
  TriggerEvent* find_mutable(std::string_view id);
  std::vector<const TriggerEvent*> in_state(QueuedState s) const;  // oldest first
  // The oldest pending event of `trigger` that is due and not being dispatched; when none is,
  // *earliest is the soonest not_before among its waiting ones (unset when it has none).
  TriggerEvent* next_due(std::string_view trigger, std::chrono::steady_clock::time_point now,
                         std::optional<std::chrono::steady_clock::time_point>* earliest);
  const TriggerQueueStats& stats() const { return stats_; }
  const std::string& path() const { return path_; }

 private:
  TriggerQueue(std::string path, runtime::Fd fd, std::size_t max_pending, std::size_t max_bytes)
      : path_(std::move(path)), fd_(std::move(fd)), max_pending_(max_pending), max_bytes_(max_bytes) {}
  void prune_done();
  runtime::Task<runtime::Result<void>> write_batch(std::string data);
  runtime::Task<void> compact_async();
  std::string compacted_text(std::deque<std::string>* kept) const;

  std::string path_;
  runtime::Fd fd_;
  std::size_t max_pending_;
  std::size_t max_bytes_;
  std::size_t kept_bytes_ = 0;  // bodies of pending and dead events
  std::uint64_t file_bytes_ = 0;
  std::uint64_t compact_at_ = kCompactAt;
  // Group commit: lines waiting for the next batch, numbered; the writer's progress.
  std::string waiting_;
  std::vector<std::string> waiting_lines_;
  std::uint64_t queued_ = 0;
  std::uint64_t durable_ = 0;
  bool writing_ = false;
  // Lines of a failed batch, by their numbers: [first, last] → errno.
  struct Failed {
    std::uint64_t first, last;
    int error;
  };
  std::deque<Failed> failed_;
  runtime::Notify written_;
  std::deque<std::string> order_;  // ids, oldest first
  std::map<std::string, TriggerEvent, std::less<>> events_;
  TriggerQueueStats stats_;
};

}  // namespace actors
