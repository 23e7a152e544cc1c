// GET /v1/events: the event log as NDJSON (one object a line, as in events.log) or,
// with Accept: text/event-stream, as Server-Sent Events (id = seq, follow implied,
// Last-Event-ID honoured).
#include "http/api/handlers.hpp"
#include "http/stream.hpp"

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
  return q;
}

// The lines of one batch that pass the filter, framed. The service filter looks at
// the parsed line: cheap next to the socket write, and exact.
std::string frame(const std::vector<actors::EventRecord>& batch, const EventQuery& q) {
  std::string out;
  for (const auto& e : batch) {
    if (!q.service.empty()) {
      json j = e.parse();
      auto it = j.find("service");
      if (it == j.end() || !it->is_string() || it->get<std::string>() != q.service) continue;
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

Task<void> events(ApiContext& ctx, Request& req, ResponseStream& out) {
  std::string why;
  auto q = parse_query(req, *ctx.events, &why);
  if (!q) {
    out.respond(bad_query(why));
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
