#include "http/api/event_output.hpp"

#include <nlohmann/json.hpp>

#include "actors/event_log.hpp"
#include "actors/supervisor.hpp"
#include "runtime/clock.hpp"

namespace http::api {

using actors::LogStore;
using actors::Stream;
using runtime::Task;

namespace {

// Small reads: a chunk of one-character lines frames to ~40 times its size.
constexpr std::size_t kReadChunk = 16 * 1024;
// Framed bytes one collect() gathers over all streams (it may overshoot by one chunk's
// worth): with a chunk's expansion, under 1 MiB held per reader at a time.
constexpr std::size_t kBudget = 256 * 1024;
// A line longer than this goes out in pieces marked "partial" (a service writing without
// newlines must not grow the daemon's memory).
constexpr std::size_t kMaxLine = 16 * 1024;

std::size_t idx(Stream s) { return static_cast<std::size_t>(s); }

// The wakers: each only pokes the reader's loop, which reads for itself. Every co_await
// result goes into a named local first (GCC 12 miscompiles a co_await's temporary result
// inside a condition: see actors/log_actor.cpp).
Task<void> wake_on_growth(std::shared_ptr<LogStore> store, Stream s, runtime::Notify& wake, std::stop_token stop) {
  std::uint64_t known = store->end(s);
  while (!stop.stop_requested()) {
    const runtime::Result<void> grew = co_await store->wait_growth(s, known, stop);
    known = store->end(s);
    wake.notify_all();
    if (!grew.ok()) break;  // stopped, or the store closed (its service is being removed)
  }
}

Task<void> wake_on_table(actors::Supervisor& sup, runtime::Notify& wake, std::stop_token stop) {
  while (!stop.stop_requested()) {
    const runtime::Result<void> changed = co_await sup.changed().wait(stop);
    if (!changed.ok()) break;
    wake.notify_all();
  }
}

}  // namespace

OutputFollow::OutputFollow(ApiContext& ctx, std::set<std::string, std::less<>> services, bool want_out,
                           bool want_err)
    : ctx_(ctx), services_(std::move(services)), want_{want_out, want_err} {}

void OutputFollow::start(runtime::Scope& tasks, const std::stop_token& stop) {
  tasks.spawn(wake_on_table(*ctx_.supervisor, wake_, stop), "events/output-services");
  table_seen_ = ctx_.supervisor->generation() - 1;
  refresh(tasks, stop);
}

void OutputFollow::refresh(runtime::Scope& tasks, const std::stop_token& stop) {
  const std::uint64_t generation = ctx_.supervisor->generation();
  if (generation == table_seen_) return;
  table_seen_ = generation;
  for (const auto& s : ctx_.supervisor->list()) {
    if (!services_.empty() && services_.count(s.name) == 0) continue;
    std::shared_ptr<LogStore> store = ctx_.supervisor->logs(s.name);
    if (!store || store->closed()) continue;
    auto it = followed_.find(s.name);
    // A service removed and added again under its name has a new store (the old one is
    // read out first: it stays in followed_ until then).
    if (it != followed_.end()) continue;
    follow(s.name, store, tasks, stop);
  }
}

void OutputFollow::follow(const std::string& name, const std::shared_ptr<LogStore>& store, runtime::Scope& tasks,
                          const std::stop_token& stop) {
  Followed& f = followed_[name];
  f.store = store;
  for (Stream s : {Stream::out, Stream::err}) {
    if (!want_[idx(s)]) continue;
    f.pos[idx(s)] = store->end(s);  // output from now on: its history is the logs endpoint
    tasks.spawn(wake_on_growth(store, s, wake_, stop), "events/output/" + name);
  }
}

std::vector<OutputEvent> OutputFollow::collect() {
  std::vector<OutputEvent> out;
  behind_ = false;
  collected_ = 0;
  // Round robin from where the last call ran out of budget, so a chatty service cannot
  // starve the others of a slow reader's attention.
  std::vector<std::string> names;
  for (auto it = followed_.lower_bound(next_first_); it != followed_.end(); ++it) names.push_back(it->first);
  for (auto it = followed_.begin(); it != followed_.end() && it->first < next_first_; ++it)
    names.push_back(it->first);
  next_first_.clear();
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    Followed& f = followed_.at(name);
    for (Stream s : {Stream::out, Stream::err}) {
      if (want_[idx(s)]) read_stream(name, f, s, &out);
    }
    f.limit.reset();
    if (collected_ >= kBudget) {
      behind_ = true;
      next_first_ = names[(i + 1) % names.size()];  // this one may have more: the others first
      break;
    }
  }
  // A removed service's store: dropped once read to its end, with its last unfinished line.
  for (auto it = followed_.begin(); it != followed_.end();) {
    Followed& f = it->second;
    bool done = f.store->closed();
    for (Stream s : {Stream::out, Stream::err})
      done = done && (!want_[idx(s)] || f.pos[idx(s)] >= f.store->end(s));
    if (!done || behind_) {
      ++it;
      continue;
    }
    for (Stream s : {Stream::out, Stream::err})
      if (!f.partial[idx(s)].empty()) frame(it->first, s, f.partial[idx(s)], true, &out);
    it = followed_.erase(it);
    table_seen_ = 0;  // a store of the same name may have come meanwhile
  }
  return out;
}

std::array<std::uint64_t, 2> OutputFollow::captures_ended(std::string_view service) const {
  auto it = followed_.find(service);
  if (it == followed_.end()) return {0, 0};
  return {it->second.store->captures_ended(Stream::out), it->second.store->captures_ended(Stream::err)};
}

bool OutputFollow::capture_settled(std::string_view service, const std::array<std::uint64_t, 2>& ended) const {
  auto it = followed_.find(service);
  if (it == followed_.end()) return true;
  const LogStore& store = *it->second.store;
  for (Stream s : {Stream::out, Stream::err})
    if (want_[idx(s)] && store.capturing(s) > 0 && store.captures_ended(s) == ended[idx(s)]) return false;
  return true;
}

void OutputFollow::stop_at_capture_end(std::string_view service) {
  auto it = followed_.find(service);
  if (it == followed_.end()) return;
  const LogStore& store = *it->second.store;
  it->second.limit = std::array<std::uint64_t, 2>{store.last_capture_end(Stream::out),
                                                  store.last_capture_end(Stream::err)};
}

bool OutputFollow::read_stream(const std::string& name, Followed& f, Stream s, std::vector<OutputEvent>* out) {
  std::uint64_t& pos = f.pos[idx(s)];
  std::string& partial = f.partial[idx(s)];
  bool any = false;
  const std::uint64_t limit = f.limit ? (*f.limit)[idx(s)] : UINT64_MAX;
  while (collected_ < kBudget && pos < limit) {
    runtime::Result<actors::LogChunk> chunk = f.store->read(s, pos, std::min<std::uint64_t>(kReadChunk, limit - pos));
    if (!chunk) break;  // an I/O error: the next wake-up tries again
    if (chunk->skipped > 0) {
      // Fell behind rotation: the oldest kept byte is past this reader's position. Told
      // to every reader of the stream (kind=stdout too): what it lost is part of it.
      {
        nlohmann::json j = nlohmann::json::object();
        j["kind"] = "output_skipped";
        j["service"] = name;
        j["time"] = actors::format_utc_ms(runtime::now_unix_ms());
        j["stream"] = std::string(actors::stream_name(s));
        j["bytes"] = chunk->skipped + partial.size();
        out->push_back({name, "output_skipped", j.dump()});
        collected_ += out->back().text.size();
      }
      partial.clear();
      f.resync[idx(s)] = true;
      any = true;
    }
    if (chunk->data.empty()) {
      pos = std::max(pos, chunk->pos);
      break;
    }
    any = true;
    pos = chunk->pos + chunk->data.size();
    std::string_view data = chunk->data;
    if (f.resync[idx(s)]) {
      // After a skip the oldest kept byte is likely mid-line: that line's end goes too.
      const std::size_t nl = data.find('\n');
      data.remove_prefix(nl == std::string_view::npos ? data.size() : nl + 1);
      f.resync[idx(s)] = nl == std::string_view::npos;
    }
    for (std::size_t nl; (nl = data.find('\n')) != std::string_view::npos; data.remove_prefix(nl + 1)) {
      std::string_view line = data.substr(0, nl);
      if (!partial.empty()) {
        partial.append(line);
        line = partial;
      }
      for (; line.size() > kMaxLine; line.remove_prefix(kMaxLine)) frame(name, s, line.substr(0, kMaxLine), true, out);
      frame(name, s, line, false, out);
      partial.clear();
    }
    partial.append(data);
    while (partial.size() >= kMaxLine) {
      frame(name, s, std::string_view(partial).substr(0, kMaxLine), true, out);
      partial.erase(0, kMaxLine);
    }
  }
  return any;
}

void OutputFollow::frame(const std::string& service, Stream s, std::string_view line, bool partial,
                         std::vector<OutputEvent>* out) {
  nlohmann::json j = nlohmann::json::object();
  j["kind"] = std::string(actors::stream_name(s));
  j["service"] = service;
  j["time"] = actors::format_utc_ms(runtime::now_unix_ms());
  j["line"] = std::string(line);
  if (partial) j["partial"] = true;
  // Invalid UTF-8 in a service's output is replaced, not a reason to end the stream.
  out->push_back({service, actors::stream_name(s), j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
  collected_ += out->back().text.size();
}

}  // namespace http::api
