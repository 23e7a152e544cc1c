// GET /v1/events: the event log as NDJSON (one object a line, as in events.log) or,
// with Accept: text/event-stream, as Server-Sent Events (id = seq, follow implied,
// Last-Event-ID honoured).
#include <array>
#include <chrono>
#include <set>

#include "http/api/event_output.hpp"
#include "http/api/handlers.hpp"
#include "http/stream.hpp"
#include "actors/event_type.hpp"
#include "http/url.hpp"
#include "runtime/ops_wait.hpp"
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
  std::set<std::string, std::less<>> services;  // empty = all
  bool public_view = false;  // a public reader: only what public_event_line() lets through
  std::set<std::string, std::less<>> kinds;  // empty = every kind
  bool output = false;  // stdout/stderr lines as events (follow only)
  bool wants(std::string_view kind) const { return kinds.empty() || kinds.count(kind) > 0; }
};

std::optional<std::uint64_t> parse_seq(std::string_view v) {
  if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  return std::stoull(std::string(v));
}

// Every value of `key` in the query, repeated (service=a&service=b) or as a comma list
// (service=a,b): Request::query keeps only a repeated key's last value.
std::set<std::string, std::less<>> query_list(const Request& req, std::string_view key) {
  std::set<std::string, std::less<>> out;
  const std::size_t q = req.target.find('?');
  std::string_view rest = q == std::string::npos ? std::string_view() : std::string_view(req.target).substr(q + 1);
  while (!rest.empty()) {
    const std::size_t amp = std::min(rest.find('&'), rest.size());
    const std::string_view part = rest.substr(0, amp);
    rest.remove_prefix(std::min(amp + 1, rest.size()));
    const std::size_t eq = std::min(part.find('='), part.size());
    if (percent_decode(part.substr(0, eq), true).value_or("") != key) continue;
    const std::string value =
        percent_decode(part.substr(std::min(eq + 1, part.size())), true).value_or("");
    for (std::size_t start = 0; start < value.size();) {
      const std::size_t comma = std::min(value.find(',', start), value.size());
      if (comma > start) out.emplace(value.substr(start, comma - start));
      start = comma + 1;
    }
  }
  return out;
}

bool known_kind(std::string_view k) {
  if (k == "stdout" || k == "stderr" || k == "output_skipped") return true;
  for (actors::EventType t : actors::kAllEventTypes)
    if (actors::to_string(t) == k) return true;
  return false;
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
  q.services = query_list(req, "service");
  q.kinds = query_list(req, "kind");
  for (const std::string& k : q.kinds)
    if (!known_kind(k)) {
      *why = "kind: unknown event kind \"" + k + "\" (see docs/api.md, Event kinds; stdout, stderr, output_skipped)";
      return std::nullopt;
    }
  if (auto o = req.query_param("output")) q.output = truthy(*o);
  // Naming an output kind asks for output.
  q.output = q.output || q.kinds.count("stdout") > 0 || q.kinds.count("stderr") > 0 ||
             q.kinds.count("output_skipped") > 0;
  if (q.output && !q.follow) {
    *why = "output: service output comes as events only while following (follow=1); its history is "
           "GET /v1/services/NAME/logs";
    return std::nullopt;
  }
  return q;
}

// Whether a journal event passes the filters; parses the line only when a filter needs it.
bool passes(const actors::EventRecord& e, const EventQuery& q) {
  if (q.services.empty() && q.kinds.empty()) return true;
  json j = e.parse();
  auto service = j.find("service");
  if (!q.services.empty() &&
      (service == j.end() || !service->is_string() || q.services.count(service->get<std::string>()) == 0))
    return false;
  auto kind = j.find("kind");
  return q.kinds.empty() || (kind != j.end() && kind->is_string() && q.wants(kind->get<std::string>()));
}

void frame_one(const actors::EventRecord& e, const EventQuery& q, std::string* out) {
  if (!passes(e, q)) return;
  std::optional<std::string> shown;
  if (q.public_view) {
    shown = public_event_line(e);
    if (!shown) return;
  }
  const std::string& line = shown ? *shown : e.line;
  if (q.sse) {
    *out += "id: " + std::to_string(e.seq) + "\ndata: " + line + "\n\n";
  } else {
    *out += line;
    *out += '\n';
  }
}

// The lines of one batch that pass the filter, framed. The filters look at the parsed
// line: cheap next to the socket write, and exact.
std::string frame(const std::vector<actors::EventRecord>& batch, const EventQuery& q) {
  std::string out;
  for (const auto& e : batch) frame_one(e, q, &out);
  return out;
}

Response bad_query(const std::string& why) {
  json d = json::object();
  d["message"] = why;
  return Response::error(400, "bad query", d);
}

// Wakes the reader whenever the event log grows past what it last saw.
Task<void> wake_on_events(ApiContext& ctx, std::uint64_t seen, runtime::Notify& wake, std::stop_token stop) {
  while (!stop.stop_requested()) {
    const runtime::Result<void> grew = co_await ctx.events->wait_after(seen, stop);
    if (!grew.ok()) break;
    seen = ctx.events->last_seq();
    wake.notify_all();
  }
}

// After "exited" a service's instance writes nothing more: its lines read in the same
// round go out before it.
bool ends_instance(std::string_view kind) { return kind == "exited"; }

// An "exited" held back until the instance's output has been read: its last lines are
// often spliced after the exit was recorded (the pipe drains once the exit is seen).
struct ExitHold {
  std::uint64_t seq = 0;      // the held event; 0: none
  std::uint64_t settled = 0;  // the last exit already let through
  std::array<std::uint64_t, 2> ended{};
  std::chrono::steady_clock::time_point deadline;
  // A capture that outlives its process (a daemonised grandchild keeps the pipe) is
  // waited for this long at most.
  static constexpr std::chrono::milliseconds kMaxHold{300};
};

// Cuts `batch` at the first unsettled exit of a followed service: before it while its
// capture runs on (true: poll again soon), after it once done, that service's output
// then read only up to where the capture ended.
bool hold_exit(std::vector<actors::EventRecord>& batch, OutputFollow& lines, ExitHold& hold) {
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].seq <= hold.settled) continue;
    const json j = batch[i].parse();
    const auto kind = j.find("kind");
    const auto service = j.find("service");
    if (kind == j.end() || !kind->is_string() || !ends_instance(kind->get<std::string>())) continue;
    if (service == j.end() || !service->is_string()) continue;
    const std::string name = service->get<std::string>();
    if (!lines.follows(name)) continue;
    const auto now = std::chrono::steady_clock::now();
    if (hold.seq != batch[i].seq) {
      hold.seq = batch[i].seq;
      hold.ended = lines.captures_ended(name);
      hold.deadline = now + ExitHold::kMaxHold;
    }
    // A later start of the service means its old capture ended: the next instance is
    // only spawned once the last one's capture is drained.
    bool restarted = false;
    for (std::size_t k = i + 1; k < batch.size() && !restarted; ++k) {
      const json later = batch[k].parse();
      restarted = later.value("service", json()) == name && later.value("kind", json()) == "started";
    }
    if (!restarted && !lines.capture_settled(name, hold.ended) && now < hold.deadline) {
      batch.resize(i);
      return true;
    }
    lines.stop_at_capture_end(name);
    hold.settled = batch[i].seq;
    batch.resize(i + 1);
    return false;
  }
  return false;
}

// One round: the journal's batch and the output read meanwhile, interleaved. Lines come
// after the batch's events (a start is recorded before its process can write), except
// that a service's lines come before its own exit in the batch.
std::string interleave(const std::vector<actors::EventRecord>& batch, std::vector<OutputEvent>& lines,
                       const EventQuery& q) {
  std::string text;
  std::vector<bool> sent(lines.size(), false);
  const auto send = [&](std::size_t i) {
    sent[i] = true;
    // A reader of a stream is told of its skips even when it names only the stream's kind.
    const bool skip = lines[i].kind == "output_skipped" && (q.wants("stdout") || q.wants("stderr"));
    if (!skip && !q.wants(lines[i].kind)) return;
    if (q.sse) text += "data: " + lines[i].text + "\n\n";  // no id: nothing to resume from
    else text += lines[i].text + "\n";
  };
  for (const auto& e : batch) {
    if (!lines.empty()) {
      const json j = e.parse();
      const auto kind = j.find("kind");
      const auto service = j.find("service");
      if (kind != j.end() && kind->is_string() && ends_instance(kind->get<std::string>()) &&
          service != j.end() && service->is_string()) {
        const std::string name = service->get<std::string>();
        for (std::size_t i = 0; i < lines.size(); ++i)
          if (!sent[i] && lines[i].service == name) send(i);
      }
    }
    frame_one(e, q, &text);
  }
  for (std::size_t i = 0; i < lines.size(); ++i)
    if (!sent[i]) send(i);
  return text;
}

// Lifecycle events after `after` and output lines, interleaved as they arrive, until the
// client leaves or the server stops. One loop does all reading and writing, so a slow
// client holds back only itself; the wakers it starts only wake it.
Task<void> follow_with_output(ApiContext& ctx, const EventQuery& q, std::uint64_t after, ResponseStream& out) {
  std::stop_source stop;
  std::stop_callback on_client(out.stop_token(), [&stop] { stop.request_stop(); });
  const std::stop_token token = stop.get_token();
  // kind=output_skipped alone: the skips of both streams, without their lines.
  const bool skips_only = !q.kinds.empty() && q.kinds.count("output_skipped") > 0 && !q.kinds.count("stdout") &&
                          !q.kinds.count("stderr");
  // Declared before `tasks`: the wakers reference its Notify, and `tasks` is joined below.
  OutputFollow lines(ctx, q.services, skips_only || q.wants("stdout"), skips_only || q.wants("stderr"));
  runtime::Scope tasks;
  lines.start(tasks, token);
  tasks.spawn(wake_on_events(ctx, after, lines.wake(), token), "events/log-watch");
  // The head goes out now, so a client sees 200 before the first event.
  if (!out.started()) {
    const runtime::Result<void> head = co_await out.write(std::string_view(""));
    if (!head.ok()) stop.request_stop();
  }
  ExitHold hold;
  while (!stop.stop_requested()) {
    lines.refresh(tasks, token);
    std::vector<actors::EventRecord> batch = ctx.events->since(after, kBatch);
    const bool holding = hold_exit(batch, lines, hold);
    if (!batch.empty()) after = batch.back().seq;
    std::vector<OutputEvent> output = lines.collect();
    const std::string text = interleave(batch, output, q);
    if (!text.empty()) {
      const runtime::Result<void> wrote = co_await out.write(text);
      if (!wrote.ok()) break;
      continue;
    }
    if (!batch.empty() || lines.behind()) continue;  // filtered out: there may be more
    if (holding) {
      // The capture's end wakes no one: look again shortly (only while an exit is held).
      const runtime::Result<int> slept = co_await runtime::sleep_for(std::chrono::milliseconds(5)).stop_on(token);
      (void)slept;
      continue;
    }
    // Nothing suspends between the reads above and this wait, so no wake-up is lost.
    const runtime::Result<void> woke = co_await lines.wake().wait(token);
    (void)woke;
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
  if (q->sse) {
    const runtime::Result<void> opened = co_await out.write(": dockless events\n\n");
    if (!opened.ok()) co_return;
  }
  if (q->output) {
    co_await follow_with_output(ctx, *q, after, out);
    co_return;
  }
  while (!stop.stop_requested()) {
    std::vector<actors::EventRecord> batch = ctx.events->since(after, kBatch);
    if (!batch.empty()) {
      after = batch.back().seq;
      const std::string text = frame(batch, *q);
      if (text.empty()) continue;
      // Awaited into named locals, never inside `&&`: see actors/log_actor.cpp (GCC 12).
      const runtime::Result<void> wrote = co_await out.write(text);
      if (!wrote.ok()) co_return;
      continue;
    }
    if (!q->follow) break;
    if (!out.started()) {
      const runtime::Result<void> head = co_await out.write(std::string_view(""));
      if (!head.ok()) co_return;
    }
    const runtime::Result<void> grew = co_await ctx.events->wait_after(after, stop);
    if (!grew.ok()) break;
  }
}

}  // namespace

void register_events(Router& router, ApiContext& ctx) {
  router.add_stream("GET", "/v1/events", [&ctx](Request& req, ResponseStream& out) -> Task<void> {
    return events(ctx, req, out);
  });
}

}  // namespace http::api
