#pragma once
// Service output as events on GET /v1/events?follow=1&output=1: each line the followed
// services write to stdout/stderr from the moment the follow began, framed like an event
// ({"kind":"stdout","service":"web","time":"…","line":"…"}).
//
// One reader per HTTP stream, pull-driven: the handler's own loop calls collect(), which
// reads each followed stream of the on-disk LogStore from this reader's own positions, a
// bounded amount per call. Nothing is pushed to a reader, so a slow client only slows
// itself: its positions lag on disk, its memory stays bounded (about 256 KiB of framed events per
// call, plus at most kMaxLine of an unfinished line per stream). A reader that falls behind the oldest
// kept log file jumps forward and gets an "output_skipped" event saying how many bytes
// it lost.
//
// Small waker tasks (one per followed stream, one for the service table) only wake the
// handler's loop; they hold no data and end on stop or when their store closes.
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include "actors/log_store.hpp"
#include "http/api/api.hpp"
#include "runtime/notify.hpp"
#include "runtime/scope.hpp"
#include "runtime/task.hpp"

namespace http::api {

// One framed output event (NDJSON line or SSE message, without the trailing newline(s)).
struct OutputEvent {
  std::string service;
  std::string_view kind;  // "stdout", "stderr", "output_skipped"
  std::string text;
};

class OutputFollow {
 public:
  // `services` empty: every service, also those a reload or a registration adds later.
  OutputFollow(ApiContext& ctx, std::set<std::string, std::less<>> services, bool want_out, bool want_err);
  OutputFollow(const OutputFollow&) = delete;
  OutputFollow& operator=(const OutputFollow&) = delete;

  // Follows the services there are now from their current end, and starts the wakers
  // in `tasks` (they stop with `stop`; the owner joins `tasks` before this dies).
  void start(runtime::Scope& tasks, const std::stop_token& stop);
  // Picks up services added since the last call (cheap when nothing changed).
  void refresh(runtime::Scope& tasks, const std::stop_token& stop);
  // Up to about kBudget bytes of new output, as framed events in the order each stream
  // wrote them. Drops followed services whose store closed once they are read out.
  std::vector<OutputEvent> collect();
  // The last collect() stopped at its budget with more to read: call it again soon.
  bool behind() const noexcept { return behind_; }
  // Ordering at an exit: the counts of captures of `service` ended so far, and whether
  // its instance's capture has ended since `ended` was taken (or none runs).
  bool follows(std::string_view service) const { return followed_.find(service) != followed_.end(); }
  std::array<std::uint64_t, 2> captures_ended(std::string_view service) const;
  bool capture_settled(std::string_view service, const std::array<std::uint64_t, 2>& ended) const;
  // The next collect() reads `service` only up to where its last capture ended.
  void stop_at_capture_end(std::string_view service);
  // Fired when a followed stream grew or the service table changed.
  runtime::Notify& wake() noexcept { return wake_; }

 private:
  struct Followed {
    std::shared_ptr<actors::LogStore> store;
    std::uint64_t pos[2] = {0, 0};
    std::string partial[2];  // the start of a line whose newline has not come yet
    bool resync[2] = {false, false};  // skipping to the next line start after a skip
    std::optional<std::array<std::uint64_t, 2>> limit;  // for the next collect() only
  };
  void follow(const std::string& name, const std::shared_ptr<actors::LogStore>& store, runtime::Scope& tasks,
              const std::stop_token& stop);
  // Reads what `f`'s stream `s` has beyond its position; false when nothing was new.
  bool read_stream(const std::string& name, Followed& f, actors::Stream s, std::vector<OutputEvent>* out);
  void frame(const std::string& service, actors::Stream s, std::string_view line, bool partial,
             std::vector<OutputEvent>* out);

  ApiContext& ctx_;
  std::set<std::string, std::less<>> services_;
  bool want_[2];
  std::map<std::string, Followed, std::less<>> followed_;
  std::string next_first_;  // round robin: where the next collect() starts
  runtime::Notify wake_;
  bool behind_ = false;
  std::size_t collected_ = 0;  // framed bytes of the current collect()
  // The supervisor's generation at the last scan: refresh() rescans only when it moved.
  std::uint64_t table_seen_ = 0;
};

}  // namespace http::api
