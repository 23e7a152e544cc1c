// GET /v1/events: the event log as NDJSON (one object a line, as in events.log) or,
// with Accept: text/event-stream, as Server-Sent Events (id = seq, follow implied,
// Last-Event-ID honoured).
#include <set>

#include "http/api/event_output.hpp"
#include "http/api/handlers.hpp"
#include "http/stream.hpp"
#include "runtime/scope.hpp"

namespace http::api {

using nlohmann::json;
using runtime::Task;

namespace {

constexpr std::size_t kBatch = 1000;
constexpr std::uint64_t kDefaultHistory = 100;

struct EventQuery {
  std::uint64_t after = 0;
  bool follow = false;
  bool sse = false;
  std::string service;  // "" = all
  bool public_view = false;  // a public reader: only what public_event_line() lets through
  std::set<std::string, std::less<>> kinds;  // empty = every kind
  bool output = false;  // stdout/stderr lines as events (follow only)
  bool wants(std::string_view kind) const { return kinds.empty() || kinds.count(kind) > 0; }
};

std::optional<std::uint64_t> parse_seq(std::string_view v) {
  if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  return std::stoull(std::string(v));
}

std::optional<EventQuery> parse_query(const Request& req, const actors::EventLog& log, std::string* why) {
  EventQuery q;
  q.public_view = disclosure_for(req.principal) == Disclosure::state;
  q.sse = req.headers.has_token("Accept", "text/event-stream");
  const std::uint64_t last = log.last_seq();
  q.after = last > kDefaultHistory ? last - kDefaultHistory : 0;
  if (auto s = req.query_param("since")) {
    auto n = parse_seq(*s);
    if (!n) {
      *why = "since: expected an event sequence number";
      return std::nullopt;
    }
    q.after = *n;
  }
  if (q.sse) {
    if (auto id = req.headers.get("Last-Event-ID")) {
      if (auto n = parse_seq(*id)) q.after = *n;
    }
    q.follow = true;
  }
  if (auto f = req.query_param("follow")) q.follow = q.follow || truthy(*f);
  if (auto s = req.query_param("service")) q.service = std::string(*s);
  if (auto k = req.query_param("kind")) {
    for (std::size_t start = 0; start <= k->size();) {
      const std::size_t comma = std::min(k->find(',', start), k->size());
      if (comma > start) q.kinds.emplace(k->substr(start, comma - start));
      start = comma + 1;
    }
  }
  if (auto o = req.query_param("output")) q.output = truthy(*o);
  // Naming an output kind asks for output.
  q.output = q.output || q.kinds.count("stdout") > 0 || q.kinds.count("stderr") > 0;
  if (q.output && !q.follow) {
    *why = "output: service output comes as events only while following (follow=1); its history is "
           "GET /v1/services/NAME/logs";
    return std::nullopt;
  }
  return q;
}

// The lines of one batch that pass the filter, framed. The service filter looks at
// the parsed line: cheap next to the socket write, and exact.
std::string frame(const std::vector<actors::EventRecord>& batch, const EventQuery& q) {
  std::string out;
  for (const auto& e : batch) {
    if (!q.service.empty() || !q.kinds.empty()) {
      json j = e.parse();
      auto service = j.find("service");
      if (!q.service.empty() &&
          (service == j.end() || !service->is_string() || service->get<std::string>() != q.service))
        continue;
      auto kind = j.find("kind");
      if (!q.kinds.empty() && (kind == j.end() || !kind->is_string() || !q.wants(kind->get<std::string>())))
        continue;
    }
    std::optional<std::string> shown;
    if (q.public_view) {
      shown = public_event_line(e);
      if (!shown) continue;
    }
    const std::string& line = shown ? *shown : e.line;
    if (q.sse) {
      out += "id: " + std::to_string(e.seq) + "\ndata: " + line + "\n\n";
    } else {
      out += line;
      out += '\n';
    }
  }
  return out;
}

Response bad_query(const std::string& why) {
  json d = json::object();
  d["message"] = why;
  return Response::error(400, "bad query", d);
}

// Wakes `ready` whenever the event log grows past what it last saw.
Task<void> watch_event_log(ApiContext& ctx, std::uint64_t seen, runtime::Notify& ready, std::stop_token stop) {
  while (!stop.stop_requested()) {
    if (!co_await ctx.events->wait_after(seen, stop)) break;
    seen = ctx.events->last_seq();
    ready.notify_all();
  }
}

// Lifecycle events after `after` and output lines, interleaved as they arrive, until the
// client leaves or the server stops.
Task<void> follow_with_output(ApiContext& ctx, const EventQuery& q, std::uint64_t after, ResponseStream& out) {
  std::stop_source stop;
  std::stop_callback on_client(out.stop_token(), [&stop] { stop.request_stop(); });
  OutputLines lines(ctx, q.service, q.wants("stdout"), q.wants("stderr"), q.sse);
  runtime::Scope tasks;
  lines.start(tasks, stop.get_token());
  tasks.spawn(watch_event_log(ctx, after, lines.ready(), stop.get_token()), "events/log-watch");
  // The head goes out now, so a client sees 200 before the first event; nothing below
  // suspends between take() and the wait, so no line lands unnoticed.
  if (!out.started() && !co_await out.write(std::string_view(""))) stop.request_stop();
  while (!stop.stop_requested()) {
    std::string text;
    std::vector<actors::EventRecord> batch = ctx.events->since(after, kBatch);
    if (!batch.empty()) {
      after = batch.back().seq;
      text = frame(batch, q);
    }
    text += lines.take();
    if (!text.empty()) {
      if (!co_await out.write(text)) break;
      continue;
    }
    if (!batch.empty()) continue;  // filtered out: there may be more
    (void)co_await lines.ready().wait(stop.get_token());
  }
  stop.request_stop();
  co_await tasks.join();
}

Task<void> events(ApiContext& ctx, Request& req, ResponseStream& out) {
  std::string why;
  auto q = parse_query(req, *ctx.events, &why);
  if (!q) {
    out.respond(bad_query(why));
    co_return;
  }
  // Output can carry what logs carry: as the logs endpoint, not for public readers.
  if (q->output)
    if (auto refused = require_key(req, "service output")) {
      out.respond(std::move(*refused));
      co_return;
    }
  std::optional<FollowSlots::Slot> slot;
  std::uint64_t cap = 0;
  if (q->follow && !(slot = ctx.follows.acquire(req, ctx.follow_caps(), &cap))) {
    out.respond(too_many_follows(cap));
    co_return;
  }
  out.header("Content-Type", q->sse ? "text/event-stream" : "application/x-ndjson");
  out.header("Cache-Control", "no-cache");
  if (q->sse) out.header("X-Accel-Buffering", "no");
  std::uint64_t after = q->after;
  const std::stop_token stop = out.stop_token();
  // SSE: a comment first, so the client's EventSource opens at once.
  if (q->sse && !co_await out.write(": dockless events\n\n")) co_return;
  if (q->output) {
    co_await follow_with_output(ctx, *q, after, out);
    co_return;
  }
  while (!stop.stop_requested()) {
    std::vector<actors::EventRecord> batch = ctx.events->since(after, kBatch);
    if (!batch.empty()) {
      after = batch.back().seq;
      const std::string text = frame(batch, *q);
      if (!text.empty() && !co_await out.write(text)) co_return;
      continue;
    }
    if (!q->follow) break;
    if (!out.started() && !co_await out.write(std::string_view(""))) co_return;
    if (!co_await ctx.events->wait_after(after, stop)) break;
  }
}

}  // namespace

void register_events(Router& router, ApiContext& ctx) {
  router.add_stream("GET", "/v1/events", [&ctx](Request& req, ResponseStream& out) -> Task<void> {
    return events(ctx, req, out);
  });
}

}  // namespace http::api
