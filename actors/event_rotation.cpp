// EventLog rotation: events.log -> events.log.1 -> ... -> events.log.<keep-1>, as LogStore
// rotates service logs, but whole lines only (a rotation happens between batches) and keyed by
// seq rather than by byte position, so readers need no bases: a file's first line names its seq.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "actors/event_log.hpp"
#include "runtime/fs.hpp"

namespace actors {

namespace {

// Rotated files are checked against max_age at most this often (a stat per file).
constexpr std::int64_t kTrimIntervalMs = 60'000;

void sync_dir_of(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  runtime::Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd) ::fsync(fd.get());
}

// `to` becomes another name of `from`'s file, which keeps its own name: a hard link under a
// temporary name, renamed over `to`, so `to` is replaced in one step and never missing (a
// reader stat-ing or opening events.log.1 by name in between found nothing before). errno
// is left as link or rename set it.
bool link_over(const std::string& from, const std::string& to) {
  const std::string tmp = to + ".tmp";
  ::unlink(tmp.c_str());  // left by a crash between the two steps
  if (::link(from.c_str(), tmp.c_str()) != 0) return false;
  if (::rename(tmp.c_str(), to.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    errno = err;
    return false;
  }
  return true;
}

}  // namespace

void EventLog::set_limits(EventLogLimits limits) {
  limits.keep = std::clamp(limits.keep, 1, kMaxEventFiles);
  const bool fewer = limits.keep < limits_.keep;
  limits_ = limits;
  // Files an older, larger keep left behind go now, not at the next rotation.
  if (fewer || last_trim_ms_ == 0) {
    for (int g = limits_.keep; g < kMaxEventFiles; ++g) {
      const std::string file = event_file_path(path_, g);
      if (::unlink(file.c_str()) != 0 && errno != ENOENT) ++stats_.rotation_errors;
    }
  }
  last_trim_ms_ = 0;  // the next maybe_rotate() checks ages at once
}

void EventLog::maybe_rotate(std::int64_t now_ms) {
  const bool full = limits_.max_size != 0 && stats_.file_size >= limits_.max_size;
  const bool old = limits_.max_age_ms > 0 && stats_.file_size > 0 && current_first_ms_ > 0 &&
                   now_ms - current_first_ms_ >= limits_.max_age_ms;
  if (full || old) rotate();
  if (last_trim_ms_ == 0 || now_ms - last_trim_ms_ >= kTrimIntervalMs) trim(now_ms);
}

void EventLog::rotate() {
  // The new file exists before anything moves: a failure to create it (full disk, EMFILE)
  // leaves every file where it was and the writer appending to the current one.
  const std::string fresh = path_ + ".new";
  auto created = runtime::open_data_file(fresh, O_RDWR | O_CREAT | O_TRUNC, 0640);
  if (!created) {
    ++stats_.rotation_errors;
    return;
  }
  // Oldest first, so nothing lands on a file still to be moved; the oldest kept file is
  // replaced by the one before it. Every step links a file under its next name (link_over),
  // and the new file is renamed over the current one, so no name that existed goes missing,
  // not even for a moment (a reader opening events.log or events.log.1 by name, `tail -F`).
  for (int g = limits_.keep - 1; g >= 2; --g) {
    const std::string from = event_file_path(path_, g - 1);
    const std::string to = event_file_path(path_, g);
    if (!link_over(from, to) && errno != ENOENT) ++stats_.rotation_errors;
  }
  if (limits_.keep > 1) {
    const std::string first = event_file_path(path_, 1);
    if (!link_over(path_, first)) {
      // Nothing lost: the writer goes on in the current file; try again after the next batch.
      ++stats_.rotation_errors;
      ::unlink(fresh.c_str());
      return;
    }
  }
  if (::rename(fresh.c_str(), path_.c_str()) != 0) {
    // The current file is still in place (and, keep > 1, also .1 until the next attempt
    // replaces that link). Try again after the next batch.
    ++stats_.rotation_errors;
    ::unlink(fresh.c_str());
    return;
  }
  // Durable names: without this a power cut could bring back the old directory, losing
  // the new file's entry and the events fdatasync'ed into it.
  sync_dir_of(path_);
  fd_ = std::move(created).value();
  stats_.file_size = 0;
  current_first_ms_ = 0;
  ++stats_.rotations;
}

void EventLog::trim(std::int64_t now_ms) {
  last_trim_ms_ = now_ms;
  if (limits_.max_age_ms <= 0) return;
  // A rotated file's mtime is the time of its last event: once that is past max_age, so is
  // everything in it.
  for (int g = limits_.keep - 1; g >= 1; --g) {
    const std::string file = event_file_path(path_, g);
    struct stat st{};
    if (::stat(file.c_str(), &st) != 0) continue;
    const std::int64_t mtime_ms =
        static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
    if (now_ms - mtime_ms >= limits_.max_age_ms && ::unlink(file.c_str()) != 0 && errno != ENOENT)
      ++stats_.rotation_errors;
  }
}

}  // namespace actors
