#include "actors/event_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <iterator>

#include "runtime/ops_fs.hpp"
#include "runtime/ops_rw.hpp"
#include "runtime/ops_wait.hpp"
#include "runtime/clock.hpp"
#include "runtime/fs.hpp"

namespace actors {

// ---- helpers -----------------------------------------------------------------------

namespace {

bool reserved_key(const std::string& k) {
  return k == "seq" || k == "time" || k == "service" || k == "kind";
}

// Start-up only: plain blocking pread.
bool pread_all(int fd, char* buf, std::size_t len, off_t off) {
  while (len > 0) {
    ssize_t n = ::pread(fd, buf, len, off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf += n;
    len -= static_cast<std::size_t>(n);
    off += n;
  }
  return true;
}

// The last events of a file of `size` bytes (complete lines): a window grown from the end
// until it holds `want` lines or the whole file; only the window is parsed.
Result<std::vector<EventRecord>> load_tail(int fd, std::uint64_t size, std::size_t want, std::uint64_t* corrupt) {
  using R = Result<std::vector<EventRecord>>;
  std::uint64_t window = std::min<std::uint64_t>(size, 1u << 20);
  std::vector<EventRecord> tail;
  while (window > 0) {
    std::string buf(window, '\0');
    if (!pread_all(fd, buf.data(), buf.size(), static_cast<off_t>(size - window))) return R::failure(EIO);
    std::size_t pos = 0;
    // A window not at the file start begins mid-line: skip to the first full line.
    if (window < size) pos = buf.find('\n') == std::string::npos ? buf.size() : buf.find('\n') + 1;
    tail.clear();
    *corrupt = 0;
    while (pos < buf.size()) {
      auto nl = buf.find('\n', pos);
      if (nl == std::string::npos) break;
      std::string_view line(buf.data() + pos, nl - pos);
      if (auto ev = parse_event_line(line)) tail.push_back(std::move(*ev));
      else ++*corrupt;
      pos = nl + 1;
    }
    if (tail.size() >= want || window == size) break;
    window = std::min(size, window * 2);
  }
  return R(std::move(tail));
}

// Unix ms of the first event in the file (0 when none can be read): the age of the file.
std::int64_t first_event_ms(int fd) {
  std::string buf(4096, '\0');
  const ssize_t n = ::pread(fd, buf.data(), buf.size(), 0);
  if (n <= 0) return 0;
  buf.resize(static_cast<std::size_t>(n));
  const auto nl = buf.find('\n');
  if (nl == std::string::npos) return 0;
  auto ev = parse_event_line(std::string_view(buf).substr(0, nl));
  if (!ev) return 0;
  auto j = ev->parse();
  auto t = j.find("time");
  if (t == j.end() || !t->is_string()) return 0;
  return parse_utc_ms(t->get<std::string>()).value_or(0);
}

}  // namespace

std::string format_utc_ms(std::int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  int ms = static_cast<int>(unix_ms % 1000);
  if (ms < 0) {
    ms += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

// ---- open --------------------------------------------------------------------------

EventLog::EventLog(std::string path, runtime::Fd fd, std::size_t ring_capacity)
    : path_(std::move(path)), fd_(std::move(fd)), ring_capacity_(ring_capacity) {}

EventLog::~EventLog() = default;

Result<std::unique_ptr<EventLog>> EventLog::open(std::string path, std::size_t ring_capacity,
                                                 EventLogLimits limits) {
  using R = Result<std::unique_ptr<EventLog>>;
  // No O_APPEND: the writer owns the end offset and writes there explicitly.
  Result<runtime::Fd> opened = runtime::open_data_file(path, O_RDWR | O_CREAT, 0640);
  if (!opened) return R::failure(opened.error());
  runtime::Fd fd = std::move(opened).value();
  struct stat st{};
  if (::fstat(fd.get(), &st) < 0) return R::failure(errno);
  auto size = static_cast<std::uint64_t>(st.st_size);
  std::unique_ptr<EventLog> log(new EventLog(std::move(path), std::move(fd), ring_capacity));

  // Find the last newline; whatever follows it is a torn write and is cut away, so the
  // next append starts on a line of its own.
  std::uint64_t keep = size;
  {
    std::string block;
    std::uint64_t end = size;
    bool found = false;
    while (end > 0 && !found) {
      const std::uint64_t start = end > 65536 ? end - 65536 : 0;
      block.resize(end - start);
      if (!pread_all(log->fd_.get(), block.data(), block.size(), static_cast<off_t>(start)))
        return R::failure(EIO);
      auto nl = block.rfind('\n');
      if (nl != std::string::npos) {
        keep = start + nl + 1;
        found = true;
      }
      end = start;
    }
    if (!found) keep = 0;
  }
  if (keep != size) {
    if (::ftruncate(log->fd_.get(), static_cast<off_t>(keep)) < 0) return R::failure(errno);
    ::fdatasync(log->fd_.get());
    log->stats_.truncated_bytes = size - keep;
    size = keep;
  }
  log->stats_.file_size = size;

  // The ring: the current file's tail, topped up from the newest rotated file when the
  // current one is short (just rotated); that also keeps seq numbering going after a
  // rotation left an empty events.log behind.
  std::uint64_t corrupt = 0;
  auto tail = load_tail(log->fd_.get(), size, ring_capacity, &corrupt);
  if (!tail) return R::failure(tail.error());
  log->stats_.corrupt_lines = corrupt;
  std::vector<EventRecord> events = std::move(tail).value();
  if (!events.empty()) log->current_first_ms_ = first_event_ms(log->fd_.get());
  if (events.size() < ring_capacity) {
    auto older = runtime::open_data_file(event_file_path(log->path_, 1), O_RDONLY, 0640);
    struct stat ost{};
    if (older && ::fstat(older.value().get(), &ost) == 0) {
      std::uint64_t ignored = 0;
      auto more = load_tail(older.value().get(), static_cast<std::uint64_t>(ost.st_size),
                            ring_capacity - events.size(), &ignored);
      if (more) {
        auto& m = more.value();
        const std::uint64_t first = events.empty() ? UINT64_MAX : events.front().seq;
        std::erase_if(m, [&](const EventRecord& e) { return e.seq >= first; });
        m.insert(m.end(), std::make_move_iterator(events.begin()), std::make_move_iterator(events.end()));
        events = std::move(m);
      }
    }
  }
  for (auto& ev : events) log->last_seq_ = std::max(log->last_seq_, ev.seq);
  const std::size_t skip = events.size() > ring_capacity ? events.size() - ring_capacity : 0;
  for (std::size_t i = skip; i < events.size(); ++i) log->ring_.push_back(std::move(events[i]));
  log->durable_seq_ = log->queue_last_seq_ = log->last_seq_;
  log->set_limits(limits);
  log->maybe_rotate(runtime::now_unix_ms());
  return R(std::move(log));
}

// ---- append ------------------------------------------------------------------------

std::uint64_t EventLog::append(std::optional<std::string> service, EventType type, nlohmann::json details) {
  const std::uint64_t seq = ++last_seq_;
  nlohmann::ordered_json o;
  o["seq"] = seq;
  o["time"] = format_utc_ms(runtime::now_unix_ms());
  if (service) o["service"] = std::move(*service);
  else o["service"] = nullptr;
  o["kind"] = to_string(type);
  if (details.is_object()) {
    for (auto& [k, v] : details.items()) {
      nlohmann::ordered_json value(v);
      if (reserved_key(k)) o["detail_" + k] = std::move(value);
      else o[k] = std::move(value);
    }
  } else if (!details.is_null()) {
    o["detail"] = nlohmann::ordered_json(details);
  }
  // `replace`: a service name or message with invalid UTF-8 must not throw here.
  std::string line = o.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);

  ++stats_.appended;
  if (queue_.size() + (batch_.size() - batch_done_) + line.size() < kMaxQueuedBytes) {
    queue_ += line;
    queue_ += '\n';
    queue_last_seq_ = seq;
  } else {
    ++stats_.dropped;
  }
  ring_.push_back(EventRecord{seq, std::move(line)});
  while (ring_.size() > ring_capacity_) ring_.pop_front();
  writer_wake_.notify_all();
  wake_deferred_sync();
  followers_.notify_all();
  return seq;
}

// ---- writer ------------------------------------------------------------------------

// Writes the rest of batch_ at the end of the file. Appends arriving meanwhile collect
// in queue_ and form the next batch. false on a write error: the unwritten rest stays in
// batch_ for a retry. The fdatasync is separate (sync()): a kill -9 keeps what was
// written, a power cut needs the sync.
Task<bool> EventLog::write_batch(std::stop_token /*stop*/) {
  // File I/O is not cancelled by the stop token: a stop means "finish what is queued".
  if (stats_.file_size == 0 && batch_done_ < batch_.size()) current_first_ms_ = runtime::now_unix_ms();
  while (batch_done_ < batch_.size()) {
    auto rest = std::as_bytes(std::span(batch_).subspan(batch_done_));
    auto r = co_await runtime::write(fd_.get(), rest, static_cast<std::int64_t>(stats_.file_size));
    if (!r || r.value() == 0) {
      ++stats_.write_errors;
      co_return false;
    }
    const auto n = static_cast<std::size_t>(r.value());
    batch_done_ += n;
    stats_.file_size += n;
    stats_.bytes_written += n;
  }
  ++stats_.batches;
  written_seq_ = batch_last_seq_;
  batch_.clear();
  batch_done_ = 0;
  co_return true;
}

// One fdatasync for everything written so far (group commit).
Task<void> EventLog::sync() {
  const std::uint64_t covered = written_seq_;
  auto s = co_await runtime::fsync(fd_.get(), /*data_only=*/true);
  ++stats_.fsyncs;
  // A failed fdatasync is counted, not retried: Linux marks the pages clean after
  // reporting the error, so a second fdatasync would claim a success it cannot know.
  if (!s) ++stats_.write_errors;
  last_sync_ = std::chrono::steady_clock::now();
  durable_seq_ = covered;
  // Only here, with nothing written and unsynced, may the file move. Before the waiters
  // resume: whoever flushed finds the files as this sync left them.
  maybe_rotate(runtime::now_unix_ms());
  durable_waiters_.notify_all();
}

void EventLog::wake_deferred_sync() noexcept {
  if (sync_wait_) sync_wait_->request_stop();
}

// Writes every batch as soon as it forms, but syncs at most once per kSyncInterval: a
// crash-looping service appends a few events per restart, hundreds of times a second,
// and a journal commit for each would tax every writer on the disk (the service's own
// appends included) and wear an SD card. The first sync after a quiet spell is
// immediate; flush() and a stop sync at once.
Task<void> EventLog::run(std::stop_token stop) {
  writer_ended_ = false;
  std::stop_callback on_stop(stop, [this]() noexcept { wake_deferred_sync(); });
  for (;;) {
    const bool finishing = stop.stop_requested() || runtime::reactor().stopping();
    if (batch_done_ >= batch_.size() && !queue_.empty()) {
      batch_.swap(queue_);
      queue_.clear();
      batch_done_ = 0;
      batch_last_seq_ = queue_last_seq_;
    }
    if (batch_done_ < batch_.size()) {
      if (co_await write_batch(stop)) continue;
      // Disk full or failing: the events stay in memory; callers are never blocked.
      if (stop.stop_requested()) break;
      auto slept = co_await runtime::sleep_for(std::chrono::seconds(1)).stop_on(stop);
      if (!slept) break;  // stopped, or the reactor is shutting down
      continue;
    }
    if (durable_seq_ < written_seq_) {
      const auto due = last_sync_ + kSyncInterval;
      if (finishing || durable_seq_ < flush_target_ || std::chrono::steady_clock::now() >= due) {
        co_await sync();
        continue;
      }
      // Until the interval is over; an append (to write it at once), a flush() or the
      // stop ends the wait early.
      sync_wait_.emplace();
      (void)co_await runtime::sleep_until(due).stop_on(sync_wait_->get_token());
      sync_wait_.reset();
      continue;
    }
    if (finishing) break;
    (void)co_await writer_wake_.wait(stop);
  }
  writer_ended_ = true;
  durable_waiters_.notify_all();
}

Task<void> EventLog::flush() {
  const std::uint64_t target = queue_last_seq_;
  flush_target_ = std::max(flush_target_, target);
  wake_deferred_sync();
  while (!writer_ended_ && durable_seq_ < target) (void)co_await durable_waiters_.wait();
}

// ---- followers ---------------------------------------------------------------------

std::vector<EventRecord> EventLog::since(std::uint64_t after_seq, std::size_t max) const {
  std::vector<EventRecord> out;
  if (max == 0 || ring_.empty()) return out;
  const std::uint64_t first_in_ring = ring_.front().seq;
  if (after_seq + 1 < first_in_ring) {
    // Older than memory: the files first (only events the ring does not hold).
    for (auto& ev : read_events(path_, after_seq, max)) {
      if (ev.seq >= first_in_ring) break;
      out.push_back(std::move(ev));
    }
  }
  auto it = std::upper_bound(ring_.begin(), ring_.end(), after_seq,
                             [](std::uint64_t s, const EventRecord& e) { return s < e.seq; });
  for (; it != ring_.end() && out.size() < max; ++it) out.push_back(*it);
  return out;
}

Task<Result<void>> EventLog::wait_after(std::uint64_t seq, std::stop_token stop) {
  while (last_seq_ <= seq) {
    if (stop.stop_requested()) co_return Result<void>::failure(ECANCELED);
    auto r = co_await followers_.wait(stop);
    if (!r) co_return r;
  }
  co_return Result<void>{};
}

}  // namespace actors
