#include "actors/history.hpp"

#include <algorithm>
#include <cmath>

#include "actors/event_log.hpp"
#include "actors/supervisor.hpp"
#include "actors/usage.hpp"
#include "runtime/clock.hpp"
#include "runtime/footprint.hpp"
#include "runtime/ops_wait.hpp"
#include "runtime/process.hpp"
#include "runtime/reactor.hpp"

namespace actors {

using runtime::Task;

void UsageRing::put(std::int64_t tick, Point p) {
  if (last_ && tick <= *last_) return;
  // The ticks skipped since the last put are gaps; more than a ring's worth clears it all.
  if (last_) {
    const std::int64_t skipped = std::min<std::int64_t>(tick - *last_ - 1, static_cast<std::int64_t>(kPoints));
    for (std::int64_t t = *last_ + 1; t < *last_ + 1 + skipped; ++t)
      clear_slot(static_cast<std::size_t>(t % static_cast<std::int64_t>(kPoints)));
  } else {
    for (std::size_t i = 0; i < kPoints; ++i) clear_slot(i);
  }
  const auto i = static_cast<std::size_t>(tick % static_cast<std::int64_t>(kPoints));
  cpu_[i] = p.cpu_permille ? static_cast<std::uint16_t>(std::min<std::uint32_t>(*p.cpu_permille, kNoCpu - 1)) : kNoCpu;
  memory_kib_[i] = p.memory_bytes
                       ? static_cast<std::uint32_t>(std::min<std::uint64_t>(*p.memory_bytes / 1024, kNoMemory - 1))
                       : kNoMemory;
  last_ = tick;
}

std::vector<UsageRing::Point> UsageRing::series(std::int64_t now) const {
  std::vector<Point> out(kPoints);
  if (!last_) return out;
  const auto n = static_cast<std::int64_t>(kPoints);
  for (std::int64_t k = 0; k < n; ++k) {
    const std::int64_t t = now - n + 1 + k;
    // Only ticks the ring still holds: written at or before the last put, within a ring of it.
    if (t > *last_ || t <= *last_ - n || t < 0) continue;
    const auto i = static_cast<std::size_t>(t % n);
    Point& p = out[static_cast<std::size_t>(k)];
    if (cpu_[i] != kNoCpu) p.cpu_permille = cpu_[i];
    if (memory_kib_[i] != kNoMemory) p.memory_bytes = static_cast<std::uint64_t>(memory_kib_[i]) * 1024;
  }
  return out;
}

void Timeline::add(const Mark& m) {
  marks_[next_] = m;
  next_ = (next_ + 1) % kMarks;
  size_ = std::min(size_ + 1, kMarks);
}

std::vector<Timeline::Mark> Timeline::since(std::int64_t since_unix_ms) const {
  std::vector<Mark> out;
  for (std::size_t k = 0; k < size_; ++k) {
    const Mark& m = marks_[(next_ + kMarks - size_ + k) % kMarks];
    if (m.unix_ms >= since_unix_ms) out.push_back(m);
  }
  return out;
}

bool is_timeline_kind(EventType kind) {
  switch (kind) {
    case EventType::started:
    case EventType::attached:
    case EventType::exited:
    case EventType::oom_killed:
    case EventType::spawn_failed:
    case EventType::backoff:
    case EventType::failed: return true;
    default: return false;
  }
}

namespace {

std::optional<EventType> kind_named(std::string_view name) {
  for (EventType t : kAllEventTypes)
    if (to_string(t) == name) return t;
  return std::nullopt;
}

// The journal names signals as runtime::signal_name does ("SIGSEGV"); 0 if none matches.
std::int32_t signal_number(const std::string& name) {
  for (int sig = 1; sig < 65; ++sig)
    if (runtime::signal_name(sig) == name) return sig;
  return 0;
}

}  // namespace

std::optional<Timeline::Mark> timeline_mark(const EventRecord& record, std::string* service) {
  // Most events are not lifecycle ones: the kind is looked up in the text before the
  // line is parsed (the journal writes compact JSON: "kind":"exited").
  static constexpr std::string_view kKey = "\"kind\":\"";
  const std::size_t at = record.line.find(kKey);
  if (at == std::string::npos) return std::nullopt;
  const std::size_t from = at + kKey.size();
  const std::size_t to = record.line.find('"', from);
  if (to == std::string::npos) return std::nullopt;
  const std::optional<EventType> kind = kind_named(std::string_view(record.line).substr(from, to - from));
  if (!kind || !is_timeline_kind(*kind)) return std::nullopt;
  const nlohmann::json j = record.parse();
  if (!j.is_object() || !j.contains("service") || !j["service"].is_string() || !j.contains("time") ||
      !j["time"].is_string())
    return std::nullopt;
  const std::optional<std::int64_t> ms = parse_utc_ms(j["time"].get<std::string>());
  if (!ms) return std::nullopt;
  *service = j["service"].get<std::string>();
  Timeline::Mark m;
  m.unix_ms = *ms;
  m.kind = *kind;
  if (*kind == EventType::exited && j.contains("signaled")) {
    m.known = true;
    m.signaled = j.value("signaled", false);
    if (m.signaled && j.contains("signal") && j["signal"].is_string())
      m.code = signal_number(j["signal"].get<std::string>());
    else if (j.contains("code") && j["code"].is_number_integer())
      m.code = j["code"].get<std::int32_t>();
  }
  return m;
}

History::History(Options opts, Supervisor& supervisor, EventLog& events)
    : opts_(opts), supervisor_(supervisor), events_(events) {
  if (opts_.interval.count() <= 0) opts_.interval = kDefaultInterval;
}

std::int64_t History::tick_of(std::chrono::steady_clock::time_point t) const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() / opts_.interval.count();
}

std::int64_t History::tick_now() const { return tick_of(std::chrono::steady_clock::now()); }

std::int64_t History::unix_ms_of(std::int64_t tick) const {
  // Ticks are steady-clock time: a wall-clock step changes where the series is shown, never
  // which slot a sample goes to.
  const auto steady_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  return runtime::now_unix_ms() - (steady_ms - tick * opts_.interval.count());
}

const History::Track* History::track(const std::string& name) const {
  auto it = tracks_.find(name);
  return it == tracks_.end() ? nullptr : it->second.get();
}

History::Track& History::track_of(const std::string& name) {
  std::unique_ptr<Track>& t = tracks_[name];
  if (!t) t = std::make_unique<Track>();
  return *t;
}

void History::forget_removed(const std::vector<ServiceStatus>& all) {
  std::erase_if(tracks_, [&](const auto& kv) {
    return std::none_of(all.begin(), all.end(), [&](const ServiceStatus& s) { return s.name == kv.first; });
  });
}

void History::take(const ServiceStatus& s, std::chrono::steady_clock::time_point at) {
  if (!s.pid) return;
  Track& t = track_of(s.name);
  const UsageSample u = sample_usage(s, opts_.cgroups);
  UsageRing::Point p;
  p.memory_bytes = u.memory_bytes;
  if (u.cpu_usec) {
    double elapsed_usec = 0, used_usec = 0;
    if (t.cpu_usec && t.generation == s.generation && *u.cpu_usec >= *t.cpu_usec) {
      elapsed_usec = static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(at - t.cpu_at).count());
      used_usec = static_cast<double>(*u.cpu_usec - *t.cpu_usec);
    } else if (s.started_at) {
      // An instance's first sample: its average since it started.
      elapsed_usec = static_cast<double>(
          std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now() - *s.started_at).count());
      used_usec = static_cast<double>(*u.cpu_usec);
    }
    if (elapsed_usec > 0) p.cpu_permille = static_cast<std::uint32_t>(std::lround(used_usec * 1000.0 / elapsed_usec));
    t.generation = s.generation;
    t.cpu_usec = u.cpu_usec;
    t.cpu_at = at;
  }
  t.usage.put(tick_of(at), p);
}

Task<void> History::sample(std::stop_token stop) {
  std::vector<ServiceStatus> all = supervisor_.list();
  while (!stop.stop_requested()) {
    forget_removed(all);
    const bool any = std::any_of(all.begin(), all.end(), [](const ServiceStatus& s) { return s.pid.has_value(); });
    if (!any) {
      // Nothing to sample: no timer until a status changes, so an idle daemon sleeps on.
      if (!co_await supervisor_.changed().wait(stop)) co_return;
      all = supervisor_.list();
      continue;
    }
    // Every tick on its boundary, whenever the sampler woke: a point per tick.
    const std::int64_t next = tick_now() + 1;
    const auto when = std::chrono::steady_clock::time_point(std::chrono::milliseconds(next * opts_.interval.count()));
    if (!co_await runtime::sleep_until(when).stop_on(stop)) co_return;
    all = supervisor_.list();
    const auto at = std::chrono::steady_clock::now();
    for (const ServiceStatus& s : all) take(s, at);
    // The tick's code goes out of the page tables again until the next tick (the start-up
    // release, when pending, drops more and comes first).
    if (!runtime::reactor().before_sleep_pending())
      runtime::reactor().once_before_sleep(&runtime::release_own_code_pages);
  }
}

Task<void> History::follow_events(std::stop_token stop) {
  std::uint64_t seen = events_.last_seq();
  while (true) {
    if (!co_await events_.wait_after(seen, stop)) co_return;
    // Far behind (a burst of thousands at boot): the oldest of the burst are skipped rather
    // than read back from the file, which since() would do synchronously.
    constexpr std::uint64_t kReach = EventLog::kDefaultRingCapacity / 2;
    if (events_.last_seq() - seen > kReach) seen = events_.last_seq() - kReach;
    for (const EventRecord& r : events_.since(seen, kReach)) {
      seen = r.seq;
      std::string service;
      if (std::optional<Timeline::Mark> m = timeline_mark(r, &service)) {
        // Only services that exist: a removed one's late events do not bring its track back.
        if (supervisor_.spec(service)) track_of(service).timeline.add(*m);
      }
    }
  }
}

}  // namespace actors
