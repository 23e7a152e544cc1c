#include "actors/trigger_queue.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <set>
#include <string>
#include <utility>

namespace actors {

namespace {

// Writes all of `data` (a short write on a regular file is retried, not lost).
int write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

std::string read_whole(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::string op_record(std::string_view op, std::string_view id) {
  return nlohmann::json{{"op", op}, {"id", id}}.dump();
}

}  // namespace

std::string_view queued_state_name(QueuedState s) {
  switch (s) {
    case QueuedState::pending: return "pending";
    case QueuedState::done: return "done";
    case QueuedState::dead: return "dead";
  }
  return "pending";
}

nlohmann::json TriggerEvent::to_json(bool with_body) const {
  nlohmann::json j{{"id", id},           {"trigger", trigger},  {"provider", provider},
                   {"event", event},     {"received", received}, {"headers", headers},
                   {"state", queued_state_name(state)}, {"attempts", attempts}};
  if (!last_error.empty()) j["last_error"] = last_error;
  if (with_body) j["body"] = body;
  return j;
}

bool TriggerEvent::from_json(const nlohmann::json& j, TriggerEvent& out) {
  if (!j.is_object() || !j.contains("id") || !j["id"].is_string()) return false;
  auto str = [&j](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  out.id = str("id");
  out.trigger = str("trigger");
  out.provider = str("provider");
  out.event = str("event");
  out.received = str("received");
  out.body = str("body");
  auto h = j.find("headers");
  out.headers = h != j.end() && h->is_object() ? *h : nlohmann::json::object();
  return !out.id.empty();
}

std::string TriggerQueue::add_record(const TriggerEvent& e) {
  nlohmann::json ev{{"id", e.id},         {"trigger", e.trigger},   {"provider", e.provider},
                    {"event", e.event},   {"received", e.received}, {"headers", e.headers},
                    {"body", e.body}};
  // Bodies are the sender's bytes, not always UTF-8: replace rather than throw.
  return nlohmann::json{{"op", "add"}, {"event", std::move(ev)}}.dump(-1, ' ', false,
                                                                      nlohmann::json::error_handler_t::replace);
}

std::string TriggerQueue::attempt_record(std::string_view id, int n, std::string_view error) {
  return nlohmann::json{{"op", "attempt"}, {"id", id}, {"n", n}, {"error", error}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
}
std::string TriggerQueue::done_record(std::string_view id) { return op_record("done", id); }
std::string TriggerQueue::dead_record(std::string_view id, std::string_view error) {
  return nlohmann::json{{"op", "dead"}, {"id", id}, {"error", error}}.dump(-1, ' ', false,
                                                                           nlohmann::json::error_handler_t::replace);
}
std::string TriggerQueue::replay_record(std::string_view id) { return op_record("replay", id); }

bool TriggerQueue::apply(std::string_view line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object() || !j.contains("op") || !j["op"].is_string()) return false;
  const auto op = j["op"].get<std::string>();
  if (op == "add") {
    TriggerEvent e;
    if (!j.contains("event") || !TriggerEvent::from_json(j["event"], e)) return false;
    if (events_.contains(e.id)) return true;  // re-added after a compaction raced a crash: keep the first
    order_.push_back(e.id);
    events_.emplace(e.id, std::move(e));
    return true;
  }
  if (!j.contains("id") || !j["id"].is_string()) return false;
  auto it = events_.find(j["id"].get<std::string>());
  if (it == events_.end()) return true;  // compacted away: nothing to fold into
  TriggerEvent& e = it->second;
  if (op == "attempt") {
    e.attempts = j.value("n", e.attempts + 1);
    e.last_error = j.value("error", std::string());
  } else if (op == "done") {
    e.state = QueuedState::done;
  } else if (op == "dead") {
    e.state = QueuedState::dead;
    e.last_error = j.value("error", e.last_error);
  } else if (op == "replay") {
    e.state = QueuedState::pending;
    e.attempts = 0;
  } else {
    return false;
  }
  return true;
}

runtime::Result<std::unique_ptr<TriggerQueue>> TriggerQueue::open(std::string path, std::size_t max_pending) {
  const int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return runtime::Result<std::unique_ptr<TriggerQueue>>::failure(errno);
  std::unique_ptr<TriggerQueue> q(new TriggerQueue(std::move(path), runtime::Fd(fd), max_pending));
  const std::string text = read_whole(fd);
  std::size_t pos = 0;
  std::size_t good_end = 0;
  while (pos < text.size()) {
    const auto nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // torn tail: no newline
    const std::string_view line(text.data() + pos, nl - pos);
    if (!line.empty()) {
      if (q->apply(line)) {
        ++q->stats_.records;
      } else {
        ++q->stats_.corrupt_lines;
      }
    }
    pos = nl + 1;
    good_end = pos;
  }
  if (good_end < text.size()) {
    q->stats_.truncated_bytes = text.size() - good_end;
    if (::ftruncate(fd, static_cast<off_t>(good_end)) != 0) {
      return runtime::Result<std::unique_ptr<TriggerQueue>>::failure(errno);
    }
  }
  return q;
}

runtime::Result<void> TriggerQueue::append_sync(std::string_view line) {
  std::string data(line);
  data.push_back('\n');
  if (const int err = write_all(fd_.get(), data); err != 0) return runtime::Result<void>::failure(err);
  if (::fdatasync(fd_.get()) != 0) return runtime::Result<void>::failure(errno);
  if (!apply(line)) return runtime::Result<void>::failure(EINVAL);
  return {};
}

runtime::Result<void> TriggerQueue::compact() {
  // The done events kept: the newest kKeepDone of them.
  std::size_t done_total = 0;
  for (const auto& id : order_) done_total += events_.at(id).state == QueuedState::done ? 1 : 0;
  std::size_t done_skip = done_total > kKeepDone ? done_total - kKeepDone : 0;
  std::string out;
  std::deque<std::string> kept;
  for (const auto& id : order_) {
    const TriggerEvent& e = events_.at(id);
    if (e.state == QueuedState::done && done_skip > 0) {
      --done_skip;
      continue;
    }
    kept.push_back(id);
    out += add_record(e) + '\n';
    if (e.attempts > 0) out += attempt_record(id, e.attempts, e.last_error) + '\n';
    if (e.state == QueuedState::done) out += done_record(id) + '\n';
    if (e.state == QueuedState::dead) out += dead_record(id, e.last_error) + '\n';
  }
  const std::string tmp = path_ + ".tmp";
  runtime::Fd t(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (t.get() < 0) return runtime::Result<void>::failure(errno);
  if (const int err = write_all(t.get(), out); err != 0) return runtime::Result<void>::failure(err);
  if (::fdatasync(t.get()) != 0) return runtime::Result<void>::failure(errno);
  if (::rename(tmp.c_str(), path_.c_str()) != 0) return runtime::Result<void>::failure(errno);
  const std::set<std::string, std::less<>> keep(kept.begin(), kept.end());
  std::erase_if(events_, [&keep](const auto& kv) { return !keep.contains(kv.first); });
  order_ = std::move(kept);
  fd_.reset(::open(path_.c_str(), O_RDWR | O_APPEND | O_CLOEXEC));
  if (fd_.get() < 0) return runtime::Result<void>::failure(errno);
  ++stats_.compactions;
  return {};
}

std::size_t TriggerQueue::pending_count() const {
  std::size_t n = 0;
  for (const auto& [id, e] : events_) n += e.state == QueuedState::pending ? 1 : 0;
  return n;
}

const TriggerEvent* TriggerQueue::find(std::string_view id) const {
  auto it = events_.find(id);
  return it == events_.end() ? nullptr : &it->second;
}

std::vector<const TriggerEvent*> TriggerQueue::in_state(QueuedState s) const {
  std::vector<const TriggerEvent*> out;
  for (const auto& id : order_) {
    const TriggerEvent& e = events_.at(id);
    if (e.state == s) out.push_back(&e);
  }
  return out;
}

}  // namespace actors
