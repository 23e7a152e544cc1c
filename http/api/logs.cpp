// GET /v1/services/{name}/logs: history (tail/since), then with follow=1 new bytes
// as they are captured, across restarts and rotations, until the client leaves.
//
// History of both streams is sent stdout's first, then stderr's (each in order):
// LogStore has no "time of a position" lookup to interleave them precisely. The
// follow part interleaves by arrival: one reader per stream appends what it reads
// to a shared buffer, the handler sends the buffer as one chunk.
#include <ctime>
#include <memory>

#include "actors/log_store.hpp"
#include "http/api/handlers.hpp"
#include "http/stream.hpp"
#include "runtime/notify.hpp"
#include "runtime/scope.hpp"
#include "runtime/clock.hpp"

namespace http::api {

using actors::LogStore;
using actors::Stream;
using nlohmann::json;
using runtime::Task;

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
// A follower that cannot send keeps at most this much read ahead.
constexpr std::size_t kMaxBuffered = 256 * 1024;

struct LogQuery {
  bool streams[2] = {true, true};
  std::optional<std::int64_t> since_ms;
  bool tail_all = false;
  std::size_t tail = 100;
  bool follow = false;
};

std::optional<LogQuery> parse_query(const Request& req, std::string* why) {
  LogQuery q;
  if (auto s = req.query_param("stream")) {
    if (*s == "stdout") q.streams[1] = false;
    else if (*s == "stderr") q.streams[0] = false;
    else if (*s != "both" && !s->empty()) {
      *why = "stream: expected stdout, stderr or both";
      return std::nullopt;
    }
  }
  if (auto t = req.query_param("tail")) {
    if (*t == "all") {
      q.tail_all = true;
    } else if (t->empty() || t->find_first_not_of("0123456789") != std::string_view::npos || t->size() > 9) {
      *why = "tail: expected a number of lines or \"all\"";
      return std::nullopt;
    } else {
      q.tail = std::stoul(std::string(*t));
    }
  }
  if (auto s = req.query_param("since")) {
    q.since_ms = parse_time_arg(*s, runtime::now_unix_ms(), why);
    if (!q.since_ms) {
      *why = "since: " + *why;
      return std::nullopt;
    }
    // since alone: everything from that time; with tail too: the later start wins.
    if (!req.query_param("tail")) q.tail_all = true;
  }
  if (auto f = req.query_param("follow")) q.follow = truthy(*f);
  return q;
}

Response bad_query(const std::string& why) {
  json d = json::object();
  d["message"] = why;
  return Response::error(400, "bad query", d);
}

std::uint64_t start_of(const LogStore& store, Stream s, const LogQuery& q) {
  std::uint64_t pos = q.tail_all ? store.begin(s) : store.position_of_tail_lines(s, q.tail);
  if (q.since_ms) pos = std::max(pos, store.position_of_time(s, *q.since_ms));
  return pos;
}

// What the readers and the sender share; lives in the handler's frame, which
// outlives the readers (joined before it returns). The store is shared with its owner:
// a service removed meanwhile closes it, and it stays valid until the readers are gone.
struct Follow {
  std::shared_ptr<LogStore> store;
  std::string buf;
  runtime::Notify ready;    // buf grew, or a reader ended
  runtime::Notify drained;  // the sender took buf
  std::stop_source stop;    // client gone, server stopping, service removed
  int readers = 0;
};

Task<void> reader(Follow& f, Stream s, std::uint64_t pos) {
  const std::stop_token stop = f.stop.get_token();
  while (!stop.stop_requested()) {
    if (f.store->closed()) {
      // The service is being removed: the whole follow ends now, unsent bytes included.
      f.stop.request_stop();
      break;
    }
    if (f.buf.size() >= kMaxBuffered) {
      if (!co_await f.drained.wait(stop)) break;
      continue;
    }
    auto chunk = f.store->read(s, pos, kReadChunk);
    if (!chunk) break;
    if (chunk->data.empty()) {
      // Caught up. A follower that fell behind past the oldest file was moved to
      // begin() by read() (chunk->pos); a rotation does not move logical positions.
      pos = std::max(pos, chunk->pos);
      // Fails on stop or close; the loop's checks tell which.
      (void)co_await f.store->wait_growth(s, pos, stop);
      continue;
    }
    pos = chunk->pos + chunk->data.size();
    f.buf += chunk->data;
    f.ready.notify_all();
  }
  --f.readers;
  f.ready.notify_all();
}

// History: [from, to) of one stream, sent in pieces.
Task<bool> send_range(ResponseStream& out, LogStore& store, Stream s, std::uint64_t from, std::uint64_t to) {
  while (from < to) {
    auto chunk = store.read(s, from, std::min<std::uint64_t>(kReadChunk, to - from));
    if (!chunk || chunk->data.empty()) co_return true;
    from = chunk->pos + chunk->data.size();
    const std::size_t keep = std::min<std::uint64_t>(chunk->data.size(), to - std::min(to, chunk->pos));
    chunk->data.resize(keep);
    if (!co_await out.write(chunk->data)) co_return false;
  }
  co_return true;
}

Task<void> logs(ApiContext& ctx, Request& req, ResponseStream& out) {
  const std::string name(req.param("name"));
  const std::shared_ptr<LogStore> store = ctx.supervisor->logs(name);
  if (!ctx.supervisor->spec(name)) {
    out.respond(no_such_service(name));
    co_return;
  }
  if (!store) {
    out.respond(Response::error(503, "logs unavailable for this service"));
    co_return;
  }
  std::string why;
  auto q = parse_query(req, &why);
  if (!q) {
    out.respond(bad_query(why));
    co_return;
  }
  // Closed: a removal of this service has begun.
  if (store->closed()) {
    out.respond(no_such_service(name));
    co_return;
  }
  std::optional<FollowSlots::Slot> slot;
  std::uint64_t cap = 0;
  if (q->follow && !(slot = ctx.follows.acquire(req, ctx.follow_caps(), &cap))) {
    out.respond(too_many_follows(cap));
    co_return;
  }
  out.header("Content-Type", "text/plain; charset=utf-8");
  out.header("Cache-Control", "no-cache");
  out.header("X-Content-Type-Options", "nosniff");
  std::uint64_t end[2] = {store->end(Stream::out), store->end(Stream::err)};
  std::uint64_t from[2] = {start_of(*store, Stream::out, *q), start_of(*store, Stream::err, *q)};
  for (Stream s : {Stream::out, Stream::err}) {
    const auto i = static_cast<std::size_t>(s);
    if (!q->streams[i]) continue;
    if (store->closed() || !co_await send_range(out, *store, s, from[i], end[i])) co_return;
  }
  if (!q->follow) co_return;
  // The head goes out now, so a client sees 200 before the first new byte.
  if (!out.started() && !co_await out.write(std::string_view(""))) co_return;

  Follow f;
  f.store = store;
  std::stop_callback on_client(out.stop_token(), [&f] { f.stop.request_stop(); });
  runtime::Scope readers;
  for (Stream s : {Stream::out, Stream::err}) {
    const auto i = static_cast<std::size_t>(s);
    if (!q->streams[i]) continue;
    ++f.readers;
    readers.spawn(reader(f, s, end[i]), "logs/" + name);
  }
  const std::stop_token stop = f.stop.get_token();
  while (!stop.stop_requested()) {
    if (f.buf.empty()) {
      if (f.readers == 0) break;
      (void)co_await f.ready.wait(stop);
      continue;
    }
    std::string chunk;
    chunk.swap(f.buf);
    f.drained.notify_all();
    if (!co_await out.write(chunk)) break;
  }
  f.stop.request_stop();
  co_await readers.join();
}

}  // namespace

void register_logs(Router& router, ApiContext& ctx) {
  router.add_stream("GET", "/v1/services/{name}/logs", [&ctx](Request& req, ResponseStream& out) -> Task<void> {
    return logs(ctx, req, out);
  });
}

// ---- query helpers shared with events.cpp ---------------------------------------

bool truthy(std::string_view v) { return v.empty() || v == "1" || v == "true" || v == "yes" || v == "on"; }

std::optional<std::int64_t> parse_time_arg(std::string_view text, std::int64_t now_ms, std::string* error) {
  if (text.empty()) {
    *error = "empty time";
    return std::nullopt;
  }
  if (text.find('T') == std::string_view::npos && text.find('-') == std::string_view::npos) {
    auto d = config::parse_duration(text, error);
    if (!d) return std::nullopt;
    return now_ms - d->count();
  }
  // RFC 3339: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM); 't'/' ' accepted for 'T'.
  std::string t(text);
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(t.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 || consumed == 0) {
    *error = "expected RFC 3339 (2026-11-23T13:30:00Z) or a duration (10m), got \"" + t + "\"";
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::int64_t ms = static_cast<std::int64_t>(::timegm(&tm)) * 1000;
  std::size_t i = static_cast<std::size_t>(consumed);
  if (i < t.size() && t[i] == '.') {
    std::int64_t frac = 0, scale = 100;
    for (++i; i < t.size() && std::isdigit(static_cast<unsigned char>(t[i])); ++i, scale /= 10)
      frac += (t[i] - '0') * scale;
    ms += frac;
  }
  if (i < t.size() && (t[i] == 'Z' || t[i] == 'z') && i + 1 == t.size()) return ms;
  int oh = 0, om = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-') && std::sscanf(t.c_str() + i + 1, "%2d:%2d", &oh, &om) == 2 &&
      t.size() == i + 6) {
    const std::int64_t off = (oh * 60 + om) * 60'000;
    return t[i] == '+' ? ms - off : ms + off;
  }
  *error = "expected a zone (Z or +HH:MM) at the end of \"" + t + "\"";
  return std::nullopt;
}

}  // namespace http::api
