#include "actors/trigger_queue.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <set>
#include <string>
#include <utility>

#include "runtime/fs.hpp"
#include "runtime/ops_fs.hpp"
#include "runtime/ops_rw.hpp"

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
  j["delivery"] = delivery.empty() ? nlohmann::json(nullptr) : nlohmann::json(delivery);
  j["received_unix_ms"] = received_unix_ms;
  j["dispatching"] = dispatching;
  j["last_error"] = last_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(last_error);
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
  out.delivery = str("delivery");
  if (auto bj = j.find("body_json"); bj != j.end() && bj->is_boolean()) out.body_json = bj->get<bool>();
  if (auto ms = j.find("received_unix_ms"); ms != j.end() && ms->is_number_integer())
    out.received_unix_ms = ms->get<std::int64_t>();
  out.body = str("body");
  auto h = j.find("headers");
  out.headers = h != j.end() && h->is_object() ? *h : nlohmann::json::object();
  return !out.id.empty();
}

std::string TriggerQueue::add_record(const TriggerEvent& e) {
  nlohmann::json ev{{"id", e.id},         {"trigger", e.trigger},   {"provider", e.provider},
                    {"event", e.event},   {"received", e.received}, {"headers", e.headers},
                    {"body", e.body},     {"delivery", e.delivery}, {"received_unix_ms", e.received_unix_ms},
                    {"body_json", e.body_json}};
  // Bodies are the sender's bytes, not always UTF-8: replace rather than throw.
  return nlohmann::json{{"op", "add"}, {"event", std::move(ev)}}.dump(-1, ' ', false,
                                                                      nlohmann::json::error_handler_t::replace);
}

std::string TriggerQueue::attempt_record(std::string_view id, int n, std::string_view error) {
  return nlohmann::json{{"op", "attempt"}, {"id", id}, {"n", n}, {"error", error}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
}
std::string TriggerQueue::start_record(std::string_view id, int n) {
  return nlohmann::json{{"op", "start"}, {"id", id}, {"n", n}}.dump(-1, ' ', false,
                                                                    nlohmann::json::error_handler_t::replace);
}
std::string TriggerQueue::done_record(std::string_view id) { return op_record("done", id); }
std::string TriggerQueue::dead_record(std::string_view id, std::string_view error, int attempts) {
  nlohmann::json j{{"op", "dead"}, {"id", id}, {"error", error}};
  if (attempts > 0) j["n"] = attempts;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
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
    kept_bytes_ += e.body.size();
    order_.push_back(e.id);
    events_.emplace(e.id, std::move(e));
    return true;
  }
  if (!j.contains("id") || !j["id"].is_string()) return false;
  auto it = events_.find(j["id"].get<std::string>());
  if (it == events_.end()) return true;  // compacted away: nothing to fold into
  TriggerEvent& e = it->second;
  const bool kept_before = e.state != QueuedState::done;
  auto n = j.find("n");
  const int number = n != j.end() && n->is_number_integer() ? n->get<int>() : e.attempts + 1;
  if (op == "start") {
    e.dispatching = true;
    return true;
  }
  e.dispatching = false;
  if (op == "attempt") {
    e.attempts = number;
    e.last_error = j.value("error", std::string());
  } else if (op == "done") {
    e.state = QueuedState::done;
    e.attempts = std::max(e.attempts, 1);
  } else if (op == "dead") {
    e.state = QueuedState::dead;
    e.last_error = j.value("error", e.last_error);
    if (n != j.end() && n->is_number_integer()) e.attempts = number;
  } else if (op == "replay") {
    e.state = QueuedState::pending;
    e.attempts = 0;
    e.not_before = {};
  } else {
    return false;
  }
  const bool kept_after = e.state != QueuedState::done;
  if (kept_before && !kept_after) kept_bytes_ -= std::min(kept_bytes_, e.body.size());
  if (!kept_before && kept_after) kept_bytes_ += e.body.size();
  if (e.state == QueuedState::done) prune_done();
  return true;
}

// Done events are kept only for inspect and replay: the newest kKeepDone of them.
void TriggerQueue::prune_done() {
  std::size_t done = 0;
  for (const auto& id : order_) done += events_.at(id).state == QueuedState::done ? 1 : 0;
  for (auto it = order_.begin(); done > kKeepDone && it != order_.end();) {
    if (events_.at(*it).state != QueuedState::done) {
      ++it;
      continue;
    }
    events_.erase(*it);
    it = order_.erase(it);
    --done;
  }
}

runtime::Result<std::unique_ptr<TriggerQueue>> TriggerQueue::open(std::string path, std::size_t max_pending,
                                                                  std::size_t max_bytes) {
  auto opened = runtime::open_data_file(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (!opened) return runtime::Result<std::unique_ptr<TriggerQueue>>::failure(opened.error());
  const int fd = opened->get();
  std::unique_ptr<TriggerQueue> q(new TriggerQueue(std::move(path), std::move(*opened), max_pending, max_bytes));
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
  q->file_bytes_ = good_end;
  q->compact_at_ = std::max<std::uint64_t>(kCompactAt, 2 * good_end);
  return q;
}

runtime::Result<void> TriggerQueue::append_sync(std::string_view line) {
  std::string data(line);
  data.push_back('\n');
  if (const int err = write_all(fd_.get(), data); err != 0) return runtime::Result<void>::failure(err);
  if (::fdatasync(fd_.get()) != 0) return runtime::Result<void>::failure(errno);
  file_bytes_ += data.size();
  if (!apply(line)) return runtime::Result<void>::failure(EINVAL);
  return {};
}

std::string TriggerQueue::compacted_text(std::deque<std::string>* kept) const {
  std::string out;
  for (const auto& id : order_) {
    const TriggerEvent& e = events_.at(id);
    kept->push_back(id);
    out += add_record(e) + '\n';
    if (e.dispatching) out += start_record(id, e.attempts + 1) + '\n';
    if (e.attempts > 0 && !e.dispatching) out += attempt_record(id, e.attempts, e.last_error) + '\n';
    if (e.state == QueuedState::done) out += done_record(id) + '\n';
    if (e.state == QueuedState::dead) out += dead_record(id, e.last_error, e.attempts) + '\n';
  }
  return out;
}

// In memory the done events beyond kKeepDone are already gone (prune_done), so the file
// keeps exactly what memory holds.
runtime::Result<void> TriggerQueue::compact() {
  std::deque<std::string> kept;
  const std::string out = compacted_text(&kept);
  const std::string tmp = path_ + ".tmp";
  runtime::Fd t(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (t.get() < 0) return runtime::Result<void>::failure(errno);
  if (const int err = write_all(t.get(), out); err != 0) return runtime::Result<void>::failure(err);
  if (::fdatasync(t.get()) != 0) return runtime::Result<void>::failure(errno);
  if (::rename(tmp.c_str(), path_.c_str()) != 0) return runtime::Result<void>::failure(errno);
  fd_.reset(::open(path_.c_str(), O_RDWR | O_APPEND | O_CLOEXEC));
  if (fd_.get() < 0) return runtime::Result<void>::failure(errno);
  file_bytes_ = out.size();
  compact_at_ = std::max<std::uint64_t>(kCompactAt, 2 * file_bytes_);
  ++stats_.compactions;
  return {};
}

// The same through the ring (atomic_write: temp file, fsync, rename, fsync of the directory),
// run by the writer between batches, so no append interleaves with it.
runtime::Task<void> TriggerQueue::compact_async() {
  std::deque<std::string> kept;
  std::string out = compacted_text(&kept);
  const std::uint64_t size = out.size();
  runtime::Result<void> w = co_await runtime::atomic_write(path_, std::move(out), 0600);
  if (!w) {
    // The old file stays whole and in use; try again after it has grown as much again.
    compact_at_ = file_bytes_ * 2;
    co_return;
  }
  auto reopened = runtime::open_data_file(path_, O_RDWR | O_APPEND | O_CLOEXEC, 0600);
  if (!reopened) {
    compact_at_ = file_bytes_ * 2;
    co_return;
  }
  fd_ = std::move(*reopened);
  file_bytes_ = size;
  compact_at_ = std::max<std::uint64_t>(kCompactAt, 2 * file_bytes_);
  ++stats_.compactions;
}

runtime::Task<runtime::Result<void>> TriggerQueue::write_batch(std::string data) {
  const auto bytes = std::as_bytes(std::span(data));
  std::size_t done = 0;
  int error = 0;
  while (done < bytes.size()) {
    runtime::Result<int> r = co_await runtime::write(fd_.get(), bytes.subspan(done));
    if (!r) {
      error = r.error();
      break;
    }
    if (r.value() == 0) {
      error = EIO;
      break;
    }
    done += static_cast<std::size_t>(r.value());
  }
  if (error == 0) {
    runtime::Result<int> s = co_await runtime::fsync(fd_.get(), true);
    if (!s) error = s.error();
  }
  if (error != 0) {
    // Cut what part of the batch got in: the next batch starts on a clean line.
    (void)::ftruncate(fd_.get(), static_cast<off_t>(file_bytes_));
    co_return runtime::Result<void>::failure(error);
  }
  file_bytes_ += data.size();
  co_return runtime::Result<void>{};
}

runtime::Task<runtime::Result<void>> TriggerQueue::append(std::string line) {
  waiting_ += line;
  waiting_ += '\n';
  waiting_lines_.push_back(std::move(line));
  const std::uint64_t mine = ++queued_;
  while (durable_ < mine) {
    if (writing_) {
      (void)co_await written_.wait();
      continue;
    }
    // This caller writes the batch for everyone waiting (its own line among them).
    writing_ = true;
    std::string data = std::move(waiting_);
    std::vector<std::string> lines = std::move(waiting_lines_);
    waiting_.clear();
    waiting_lines_.clear();
    const std::uint64_t last = queued_;
    runtime::Result<void> w = co_await write_batch(std::move(data));
    if (w) {
      for (const std::string& l : lines) (void)apply(l);
    } else {
      failed_.push_back({last - lines.size() + 1, last, w.error()});
      while (failed_.size() > 64) failed_.pop_front();
    }
    durable_ = last;
    if (w && file_bytes_ > compact_at_ && waiting_.empty()) co_await compact_async();
    writing_ = false;
    written_.notify_all();
  }
  for (const Failed& f : failed_)
    if (f.first <= mine && mine <= f.last) co_return runtime::Result<void>::failure(f.error);
  co_return runtime::Result<void>{};
}

std::string TriggerQueue::full_reason(std::size_t body_bytes) const {
  if (pending_count() >= max_pending_)
    return "the trigger queue holds " + std::to_string(max_pending_) + " pending events";
  if (kept_bytes_ + body_bytes > max_bytes_)
    return "the trigger queue's bodies would exceed " + std::to_string(max_bytes_ >> 20) + " MiB";
  return "";
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

TriggerEvent* TriggerQueue::find_mutable(std::string_view id) {
  auto it = events_.find(id);
  return it == events_.end() ? nullptr : &it->second;
}

TriggerEvent* TriggerQueue::next_due(std::string_view trigger, std::chrono::steady_clock::time_point now,
                                     std::optional<std::chrono::steady_clock::time_point>* earliest) {
  earliest->reset();
  for (const auto& id : order_) {
    TriggerEvent& e = events_.at(id);
    if (e.trigger != trigger || e.state != QueuedState::pending || e.dispatching) continue;
    if (e.not_before <= now) return &e;
    if (!*earliest || e.not_before < **earliest) *earliest = e.not_before;
  }
  return nullptr;
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
