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

constexpr std::size_t kReadChunk = 64 * 1024;
// A reader whose frames the client has not taken stops reading ahead here.
constexpr std::size_t kMaxBuffered = 256 * 1024;
// A line longer than this goes out in pieces marked "partial" (a service writing without
// newlines must not grow the daemon's memory).
constexpr std::size_t kMaxLine = 16 * 1024;

}  // namespace

OutputLines::OutputLines(ApiContext& ctx, std::string service, bool want_out, bool want_err, bool sse)
    : ctx_(ctx), service_(std::move(service)), want_{want_out, want_err}, sse_(sse) {}

void OutputLines::start(runtime::Scope& tasks, std::stop_token stop) {
  follow_new_services(tasks, stop);
  if (service_.empty()) tasks.spawn(watch_services(tasks, stop), "events/output-services");
}

std::string OutputLines::take() {
  std::string out;
  out.swap(buf_);
  drained_.notify_all();
  return out;
}

void OutputLines::frame(const std::string& service, Stream s, std::string_view line, bool partial) {
  nlohmann::json j = nlohmann::json::object();
  j["kind"] = std::string(actors::stream_name(s));
  j["service"] = service;
  j["time"] = actors::format_utc_ms(runtime::now_unix_ms());
  j["line"] = std::string(line);
  if (partial) j["partial"] = true;
  // Invalid UTF-8 in a service's output is replaced, not a reason to end the stream.
  const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (sse_) buf_ += "data: " + text + "\n\n";  // no id: nothing to resume from
  else buf_ += text + "\n";
}

void OutputLines::follow_new_services(runtime::Scope& tasks, std::stop_token stop) {
  for (const auto& s : ctx_.supervisor->list()) {
    if (!service_.empty() && s.name != service_) continue;
    std::shared_ptr<LogStore> store = ctx_.supervisor->logs(s.name);
    if (!store || store->closed()) continue;
    auto it = followed_.find(s.name);
    if (it != followed_.end() && it->second.lock() == store) continue;
    followed_[s.name] = store;
    for (Stream st : {Stream::out, Stream::err})
      if (want_[static_cast<std::size_t>(st)])
        tasks.spawn(read_stream(store, s.name, st, store->end(st), stop), "events/output/" + s.name);
  }
}

// Services registered or added by a reload while the follow runs are followed from then on.
Task<void> OutputLines::watch_services(runtime::Scope& tasks, std::stop_token stop) {
  while (!stop.stop_requested()) {
    if (!co_await ctx_.supervisor->changed().wait(stop)) break;
    follow_new_services(tasks, stop);
  }
}

Task<void> OutputLines::read_stream(std::shared_ptr<LogStore> store, std::string service, Stream s,
                                    std::uint64_t pos, std::stop_token stop) {
  std::string partial;  // the start of a line whose newline has not come yet
  while (!stop.stop_requested() && !store->closed()) {
    if (buf_.size() >= kMaxBuffered) {
      if (!co_await drained_.wait(stop)) break;
      continue;
    }
    auto chunk = store->read(s, pos, kReadChunk);
    if (!chunk) break;
    if (chunk->data.empty()) {
      pos = std::max(pos, chunk->pos);  // a reader left behind the oldest file moves up
      (void)co_await store->wait_growth(s, pos, stop);
      continue;
    }
    pos = chunk->pos + chunk->data.size();
    const std::size_t before = buf_.size();
    std::string_view data = chunk->data;
    for (std::size_t nl; (nl = data.find('\n')) != std::string_view::npos; data.remove_prefix(nl + 1)) {
      partial.append(data.substr(0, nl));
      frame(service, s, partial, false);
      partial.clear();
    }
    partial.append(data);
    while (partial.size() >= kMaxLine) {
      frame(service, s, std::string_view(partial).substr(0, kMaxLine), true);
      partial.erase(0, kMaxLine);
    }
    if (buf_.size() != before) ready_.notify_all();
  }
  // The service was removed (or the follow ends): what it wrote last still counts.
  if (!partial.empty() && !stop.stop_requested()) {
    frame(service, s, partial, true);
    ready_.notify_all();
  }
}

}  // namespace http::api
