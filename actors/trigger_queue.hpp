#pragma once
// TriggerQueue: the durable pending queue of accepted webhook deliveries,
// <data_dir>/triggers/queue.log (issue 14).
//
// The file is NDJSON, one record a line, folded in order at open():
//   {"op":"add","event":{id,trigger,provider,event,received,headers,body}}
//   {"op":"attempt","id":..,"n":3,"error":"..."}   a dispatch that failed (n = attempts so far)
//   {"op":"done","id":..}                          the handler succeeded
//   {"op":"dead","id":..,"error":"..."}            dead-lettered after max_attempts
//   {"op":"replay","id":..}                        an operator sent a done/dead event back
// An "add" must be on disk (written and fdatasync'ed) before the sender gets its 2xx; "done" is
// written right after the handler returns, so the only at-least-once window is a crash between
// the handler's success and that record's write: the event is then dispatched again at boot.
// A torn last line (a crash mid-write: no newline, or not JSON) is cut at open, never folded.
//
// compact() rewrites the file with what is still needed (pending and dead events, and the last
// kKeepDone done ones so inspect/replay still find them) into queue.log.tmp, fdatasyncs it and
// renames it over the old one: a crash leaves one of the two whole files.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/fd.hpp"
#include "runtime/result.hpp"

namespace actors {

enum class QueuedState { pending, done, dead };
std::string_view queued_state_name(QueuedState s);

struct TriggerEvent {
  std::string id;
  std::string trigger;
  std::string provider;
  std::string event;
  std::string received;  // RFC 3339 UTC
  nlohmann::json headers = nlohmann::json::object();  // the ones that matter: never signatures
  std::string body;
  // Folded from the later records, not part of "add".
  QueuedState state = QueuedState::pending;
  int attempts = 0;
  std::string last_error;

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
  static constexpr std::size_t kKeepDone = 100;

  // Start-up, synchronous: opens (creating) `path`, cuts a torn tail and folds the records.
  static runtime::Result<std::unique_ptr<TriggerQueue>> open(std::string path,
                                                             std::size_t max_pending = kDefaultMaxPending);

  // The record lines (without the newline) the writer appends.
  static std::string add_record(const TriggerEvent& e);
  static std::string attempt_record(std::string_view id, int n, std::string_view error);
  static std::string done_record(std::string_view id);
  static std::string dead_record(std::string_view id, std::string_view error);
  static std::string replay_record(std::string_view id);

  // Folds one record into memory (what open() does for every line); false if it is not one.
  bool apply(std::string_view line);
  // Writes `line` and a newline, then fdatasyncs. Blocking: the daemon's writer does the same
  // through the ring; this one is for start-up (compaction's caller) and tests.
  runtime::Result<void> append_sync(std::string_view line);
  runtime::Result<void> compact();

  bool full() const { return pending_count() >= max_pending_; }
  std::size_t pending_count() const;
  const TriggerEvent* find(std::string_view id) const;
  std::vector<const TriggerEvent*> in_state(QueuedState s) const;  // oldest first
  const TriggerQueueStats& stats() const { return stats_; }
  const std::string& path() const { return path_; }

 private:
  TriggerQueue(std::string path, runtime::Fd fd, std::size_t max_pending)
      : path_(std::move(path)), fd_(std::move(fd)), max_pending_(max_pending) {}

  std::string path_;
  runtime::Fd fd_;
  std::size_t max_pending_;
  std::deque<std::string> order_;  // ids, oldest first
  std::map<std::string, TriggerEvent, std::less<>> events_;
  TriggerQueueStats stats_;
};

}  // namespace actors
