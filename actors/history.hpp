#pragma once
// History: each service's CPU and memory over the last hour and its starts, exits and
// restarts, in memory only, for the dashboard's sparklines, GET /v1/services/NAME/history
// and `dockless top`.
//
// Memory: one Track per service that has run or had a lifecycle event, allocated once and
// never grown: a UsageRing of kPoints ticks (2 + 4 bytes a point: 2,160 bytes) and a
// Timeline of kMarks events (16 bytes each: 1,024 bytes), ~3.2 KiB a service in all.
//
// Cost: one timer for all services, and only while at least one of them has a process.
// With nothing running the sampler waits on the supervisor's change notice and the daemon
// sleeps as before (no timer, no syscall). Each tick reads memory.current and cpu.stat of
// every running instance's cgroup (or /proc/PID/stat without one): the figures
// GET /v1/services shows (usage.hpp). The timeline follows the event log (it wakes only
// when an event is appended) and keeps the lifecycle kinds only.
#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "actors/event_type.hpp"
#include "actors/service_actor.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/task.hpp"

namespace actors {

class EventLog;
class Supervisor;
struct EventRecord;

// One point per tick for the last kPoints ticks, addressed by tick number (a tick is
// steady-clock time / interval): a slot is reused every kPoints ticks, and ticks nobody
// wrote (the service was down, the sampler asleep) read back as gaps.
class UsageRing {
 public:
  static constexpr std::size_t kPoints = 360;  // an hour at the default 10 s tick
  struct Point {
    std::optional<std::uint32_t> cpu_permille;  // of one CPU: 1000 = one core busy
    std::optional<std::uint64_t> memory_bytes;  // kept in KiB
  };
  // A later tick than the last one put: the ticks in between become gaps. An earlier
  // or equal one overwrites nothing (the sampler never goes back).
  void put(std::int64_t tick, Point p);
  // The points of ticks (now - kPoints, now], oldest first: always kPoints of them.
  std::vector<Point> series(std::int64_t now) const;
  std::optional<std::int64_t> last_tick() const { return last_; }

 private:
  static constexpr std::uint16_t kNoCpu = 0xFFFF;
  static constexpr std::uint32_t kNoMemory = 0xFFFFFFFF;
  void clear_slot(std::size_t i) {
    cpu_[i] = kNoCpu;
    memory_kib_[i] = kNoMemory;
  }
  std::array<std::uint16_t, kPoints> cpu_{};
  std::array<std::uint32_t, kPoints> memory_kib_{};
  std::optional<std::int64_t> last_;
};

// The last kMarks lifecycle events of a service, oldest overwritten first.
class Timeline {
 public:
  static constexpr std::size_t kMarks = 64;
  struct Mark {
    std::int64_t unix_ms = 0;
    EventType kind = EventType::started;
    bool signaled = false;
    std::int32_t code = 0;  // exit code, or the signal number when signaled; exited only
    bool known = false;     // exited: the status was read
  };
  void add(const Mark& m);
  // Marks at or after `since_unix_ms`, oldest first.
  std::vector<Mark> since(std::int64_t since_unix_ms) const;

 private:
  std::array<Mark, kMarks> marks_{};
  std::size_t next_ = 0, size_ = 0;
};

// Whether an event kind goes into the timeline: starts (started, attached), exits
// (exited, oom_killed, spawn_failed) and what the restart policy did (backoff, failed).
bool is_timeline_kind(EventType kind);
// The mark of one event line, nullopt when its kind is not a timeline kind (or the line
// is not one of ours). `service` gets the service's name.
std::optional<Timeline::Mark> timeline_mark(const EventRecord& record, std::string* service);

class History {
 public:
  static constexpr std::chrono::milliseconds kDefaultInterval{10'000};
  struct Options {
    std::chrono::milliseconds interval = kDefaultInterval;
    const runtime::CgroupTree* cgroups = nullptr;
  };
  struct Track {
    UsageRing usage;
    Timeline timeline;
    // The last sample's counter, to turn cumulative CPU time into a rate.
    std::uint64_t generation = 0;  // of the instance the counter belongs to
    std::optional<std::uint64_t> cpu_usec;
    std::chrono::steady_clock::time_point cpu_at;
  };

  History(Options opts, Supervisor& supervisor, EventLog& events);
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  // The sampler: one tick for every running service, asleep while none runs.
  runtime::Task<void> sample(std::stop_token stop);
  // The timeline's feed: the event log's lifecycle events as they are appended.
  runtime::Task<void> follow_events(std::stop_token stop);

  // Null for a service that never ran and had no lifecycle event since the daemon started.
  const Track* track(const std::string& name) const;
  std::chrono::milliseconds interval() const { return opts_.interval; }
  std::int64_t tick_now() const;
  // Wall-clock time (unix ms) of the start of `tick`.
  std::int64_t unix_ms_of(std::int64_t tick) const;
  std::size_t tracks() const { return tracks_.size(); }

  // One sample of `s` at the steady time `at` (the sampler's step; tests call it).
  void take(const ServiceStatus& s, std::chrono::steady_clock::time_point at);

 private:
  Track& track_of(const std::string& name);
  void forget_removed(const std::vector<ServiceStatus>& all);
  std::int64_t tick_of(std::chrono::steady_clock::time_point t) const;

  Options opts_;
  Supervisor& supervisor_;
  EventLog& events_;
  std::map<std::string, std::unique_ptr<Track>, std::less<>> tracks_;
};

}  // namespace actors
