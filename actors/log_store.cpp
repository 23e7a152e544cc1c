#include "actors/log_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

#include "runtime/fs.hpp"
#include "runtime/ops_fs.hpp"
#include "runtime/reactor.hpp"

// File-system calls here are plain synchronous syscalls on the reactor thread: a
// rotation (a few renames) happens once per max_size bytes, an index record at most
// four times a second, and reads are preads that the page cache answers. Moving them to
// the ring would make a rotation interleave with reads for no gain. The exception is
// the unlink of the oldest file, which frees its page cache inside the call: 2-6 ms for
// 16 MiB, measured on the loop under a `yes` flood (bench/README.md, issue #12).

namespace actors {

namespace {

constexpr char kIndexMagic[8] = {'D', 'L', 'I', 'D', 'X', '0', '0', '1'};
constexpr std::size_t kHeaderSize = 16;
constexpr std::size_t kRecordSize = 16;

struct IndexRecord {
  std::uint64_t offset;
  std::int64_t unix_ms;
};

bool exists(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0;
}

std::uint64_t file_size(int fd) {
  struct stat st{};
  return ::fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

std::uint64_t file_size(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

ssize_t pread_full(int fd, void* buf, std::size_t len, std::uint64_t off) {
  std::size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, static_cast<char*>(buf) + done, len - done, static_cast<off_t>(off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return done ? static_cast<ssize_t>(done) : -1;
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

bool write_header(int fd, std::uint64_t base) {
  char h[kHeaderSize];
  std::memcpy(h, kIndexMagic, 8);
  std::memcpy(h + 8, &base, 8);
  return ::pwrite(fd, h, kHeaderSize, 0) == static_cast<ssize_t>(kHeaderSize);
}

// Every file of a log opens through open_data_file: never through a planted symlink, only
// a regular file, 0640 at most. Failure leaves errno set, as ::open would.
runtime::Fd open_log_file(const std::string& path, int flags) {
  runtime::Result<runtime::Fd> r = runtime::open_data_file(path, flags, 0640);
  if (!r) {
    errno = r.error();
    return runtime::Fd();
  }
  return std::move(r).value();
}

std::optional<std::uint64_t> read_header(const std::string& path) {
  runtime::Fd fd = open_log_file(path, O_RDONLY);
  char h[kHeaderSize];
  if (!fd || pread_full(fd.get(), h, kHeaderSize, 0) != static_cast<ssize_t>(kHeaderSize)) return std::nullopt;
  if (std::memcmp(h, kIndexMagic, 8) != 0) return std::nullopt;
  std::uint64_t base;
  std::memcpy(&base, h + 8, 8);
  return base;
}

}  // namespace

std::string_view stream_name(Stream s) { return s == Stream::out ? "stdout" : "stderr"; }

struct LogStore::StreamState {
  runtime::Fd fd;   // current log file
  runtime::Fd idx;  // its index
  std::uint64_t size = 0;      // committed bytes in the current file
  std::uint64_t idx_size = 0;  // bytes in the current index
  // bases[g]: logical position of byte 0 of generation g (0 = current). One entry per
  // file on disk, so bases.back() is begin(). A vector, not a deque: it holds at most
  // keep + 1 entries, and a deque would allocate ~600 bytes per stream up front.
  std::vector<std::uint64_t> bases;
  std::optional<std::int64_t> last_index_ms;  // none: the next chunk gets a record
  bool writing = false;    // a capturer holds the turn (try_take_turn)
  runtime::Notify turn;    // capturers waiting for it
  // An unlink of this stream's ".gone" pair is in flight on the ring. Shared with the
  // unlinking actor, which may outlive the store.
  std::shared_ptr<bool> discarding = std::make_shared<bool>(false);
  runtime::Notify waiters;
  LogStreamStats stats;
};

LogStore::LogStore(std::string dir, std::uint64_t max_size, int keep)
    : dir_(std::move(dir)), max_size_(max_size), keep_(std::max(keep, 1)) {
  for (auto& s : streams_) s = std::make_unique<StreamState>();
}

LogStore::~LogStore() = default;

std::string LogStore::file_path(Stream s, int generation) const {
  std::string p = dir_;
  p += '/';
  p += stream_name(s);
  p += ".log";
  if (generation > 0) {
    p += '.';
    p += std::to_string(generation);
  }
  return p;
}

Result<std::unique_ptr<LogStore>> LogStore::open(std::string dir, std::uint64_t max_size, int keep) {
  using R = Result<std::unique_ptr<LogStore>>;
  if (auto r = runtime::make_dirs(dir); !r) return R::failure(r.error());
  std::unique_ptr<LogStore> store(new LogStore(std::move(dir), max_size, keep));
  for (Stream s : {Stream::out, Stream::err})
    if (auto r = store->open_stream(s); !r) return R::failure(r.error());
  return R(std::move(store));
}

Result<void> LogStore::open_stream(Stream s) {
  StreamState& ss = st(s);
  // A pair a previous daemon renamed away but did not get to unlink.
  const std::string gone = file_path(s, 0) + ".gone";
  ::unlink(gone.c_str());
  ::unlink((gone + ".idx").c_str());
  // Generations on disk: 1.. while they exist (a gap ends the scan; what lies beyond it
  // was left by an older, larger `keep` and is trimmed below with the rest).
  int oldest = 0;
  while (oldest < 1000 && exists(file_path(s, oldest + 1))) ++oldest;
  std::vector<std::uint64_t> sizes(static_cast<std::size_t>(oldest) + 1);
  for (int g = 1; g <= oldest; ++g) sizes[static_cast<std::size_t>(g)] = file_size(file_path(s, g));

  ss.fd = open_log_file(file_path(s, 0), O_RDWR | O_CREAT);
  if (!ss.fd) return Result<void>::failure(errno);
  ss.size = sizes[0] = file_size(ss.fd.get());

  // Positions continue from the oldest file's recorded base; younger bases follow from
  // the sizes, so they stay consistent even if a header was lost.
  std::uint64_t base = read_header(file_path(s, oldest) + ".idx").value_or(0);
  // No log reaches 2^62 bytes; a larger base is a corrupt header, and adding sizes to
  // it could wrap and put begin() after end().
  if (base > (std::uint64_t{1} << 62)) base = 0;
  ss.bases.clear();
  for (int g = oldest; g >= 0; --g) {
    ss.bases.insert(ss.bases.begin(), base);
    base += sizes[static_cast<std::size_t>(g)];
  }

  const std::string idx_path = file_path(s, 0) + ".idx";
  ss.idx = open_log_file(idx_path, O_RDWR | O_CREAT);
  if (!ss.idx) return Result<void>::failure(errno);
  ss.idx_size = file_size(ss.idx.get());
  if (ss.idx_size < kHeaderSize) {
    if (::ftruncate(ss.idx.get(), 0) < 0 || !write_header(ss.idx.get(), ss.bases.front()))
      return Result<void>::failure(errno ? errno : EIO);
    ss.idx_size = kHeaderSize;
  }
  // A torn record from a crash would misalign every later one.
  ss.idx_size -= (ss.idx_size - kHeaderSize) % kRecordSize;
  trim(s);
  return {};
}

void LogStore::trim(Stream s) {
  StreamState& ss = st(s);
  while (ss.bases.size() > static_cast<std::size_t>(keep_)) {
    const int g = static_cast<int>(ss.bases.size()) - 1;
    ::unlink(file_path(s, g).c_str());
    ::unlink((file_path(s, g) + ".idx").c_str());
    ss.bases.pop_back();
  }
}

void LogStore::rotate(Stream s) {
  StreamState& ss = st(s);
  const std::uint64_t new_base = ss.bases.front() + ss.size;
  ss.fd.reset();
  ss.idx.reset();
  // Oldest first, so no rename ever lands on a file still to be moved.
  const int last = static_cast<int>(ss.bases.size()) - 1;
  for (int g = last; g >= 0; --g) {
    const std::string from = file_path(s, g);
    if (g + 1 >= keep_) {
      discard_oldest(s, g);
      continue;
    }
    const std::string to = file_path(s, g + 1);
    if (::rename(from.c_str(), to.c_str()) < 0) ++ss.stats.errors;
    ::rename((from + ".idx").c_str(), (to + ".idx").c_str());
  }
  ss.bases.insert(ss.bases.begin(), new_base);
  while (ss.bases.size() > static_cast<std::size_t>(keep_)) ss.bases.pop_back();
  ++ss.stats.rotations;

  ss.size = 0;
  ss.fd = open_log_file(file_path(s, 0), O_RDWR | O_CREAT | O_TRUNC);
  if (!ss.fd) ++ss.stats.errors;  // current_fd() retries the open
  ss.idx = open_log_file(file_path(s, 0) + ".idx", O_RDWR | O_CREAT | O_TRUNC);
  ss.idx_size = 0;
  if (ss.idx && write_header(ss.idx.get(), new_base)) ss.idx_size = kHeaderSize;
  else ++ss.stats.errors;
  // The new file's first chunk gets its own record, whatever the interval says.
  ss.last_index_ms.reset();
}

namespace {

Task<void> unlink_pair(std::string log, std::string idx, std::shared_ptr<bool> discarding) {
  // A failure leaves a ".gone" file that the next open removes; nothing to report.
  (void)co_await runtime::unlink(std::move(log));
  (void)co_await runtime::unlink(std::move(idx));
  *discarding = false;
}

}  // namespace

// A rename is cheap; the unlink of the last name pays for the pages. So the pair is
// renamed to ".gone" names and unlinked by an actor through the ring (io-wq). Should the
// previous pair still be in flight (rotations faster than an unlink), or without a
// reactor, it is unlinked here as before rather than renamed over, which would free the
// pages inside the rename instead.
void LogStore::discard_oldest(Stream s, int g) {
  StreamState& ss = st(s);
  const std::string from = file_path(s, g);
  const std::string gone = file_path(s, 0) + ".gone";
  if (runtime::has_reactor() && !*ss.discarding && ::rename(from.c_str(), gone.c_str()) == 0) {
    *ss.discarding = true;
    ::rename((from + ".idx").c_str(), (gone + ".idx").c_str());
    runtime::spawn(unlink_pair(gone, gone + ".idx", ss.discarding), "log-discard");
    return;
  }
  ::unlink(from.c_str());
  ::unlink((from + ".idx").c_str());
}

int LogStore::current_fd(Stream s) {
  StreamState& ss = st(s);
  if (max_size_ && ss.size >= max_size_) rotate(s);
  if (!ss.fd) {
    // A rotation could not create the file (full disk, EMFILE): try again now.
    ss.fd = open_log_file(file_path(s, 0), O_RDWR | O_CREAT);
    if (ss.fd) ss.size = file_size(ss.fd.get());
  }
  return ss.fd.get();
}

std::uint64_t LogStore::current_offset(Stream s) const { return st(s).size; }

std::uint64_t LogStore::room(Stream s) const {
  const StreamState& ss = st(s);
  if (!max_size_) return std::uint64_t{1} << 40;
  return ss.size >= max_size_ ? 1 : max_size_ - ss.size;
}

void LogStore::commit(Stream s, std::uint64_t n, std::int64_t unix_ms) {
  StreamState& ss = st(s);
  if (n == 0) return;
  if (ss.idx && (!ss.last_index_ms || unix_ms - *ss.last_index_ms >= kIndexIntervalMs)) {
    const IndexRecord rec{ss.size, unix_ms};
    if (::pwrite(ss.idx.get(), &rec, kRecordSize, static_cast<off_t>(ss.idx_size)) ==
        static_cast<ssize_t>(kRecordSize)) {
      ss.idx_size += kRecordSize;
      ++ss.stats.index_records;
      ss.last_index_ms = unix_ms;
    } else {
      ++ss.stats.errors;  // ENOSPC: since= gets coarser, nothing else breaks
    }
  }
  ss.size += n;
  ss.stats.bytes_written += n;
  if (max_size_ && ss.size >= max_size_) rotate(s);
  ss.waiters.notify_all();
}

void LogStore::add_dropped(Stream s, std::uint64_t n) { st(s).stats.bytes_dropped += n; }

bool LogStore::try_take_turn(Stream s) {
  if (st(s).writing) return false;
  st(s).writing = true;
  return true;
}

Task<Result<void>> LogStore::wait_turn(Stream s, std::stop_token stop) {
  while (!try_take_turn(s)) {
    Result<void> r = co_await st(s).turn.wait(stop);
    if (!r) co_return r;
  }
  co_return Result<void>{};
}

void LogStore::end_turn(Stream s) {
  st(s).writing = false;
  if (st(s).turn.waiting() > 0) st(s).turn.notify_all();
}

std::uint64_t LogStore::end(Stream s) const { return st(s).bases.front() + st(s).size; }
std::uint64_t LogStore::begin(Stream s) const { return st(s).bases.back(); }

Result<LogChunk> LogStore::read(Stream s, std::uint64_t pos, std::size_t max) const {
  const StreamState& ss = st(s);
  LogChunk c;
  const std::uint64_t b = begin(s), e = end(s);
  if (pos < b) {
    c.skipped = b - pos;
    pos = b;
  }
  pos = std::min(pos, e);
  c.pos = pos;
  if (pos == e || max == 0) return c;
  std::size_t g = 0;
  while (ss.bases[g] > pos) ++g;  // bases decrease with g; bases.back() <= pos
  const std::uint64_t fsize = g == 0 ? ss.size : ss.bases[g - 1] - ss.bases[g];
  const std::uint64_t off = pos - ss.bases[g];
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(max, fsize - off));
  runtime::Fd rotated;
  int fd = ss.fd.get();
  if (g > 0) {
    rotated = open_log_file(file_path(s, static_cast<int>(g)), O_RDONLY);
    if (!rotated) return Result<LogChunk>::failure(errno);
    fd = rotated.get();
  }
  if (fd < 0) return Result<LogChunk>::failure(EBADF);
  c.data.resize(n);
  ssize_t got = pread_full(fd, c.data.data(), n, off);
  if (got < 0) return Result<LogChunk>::failure(errno);
  c.data.resize(static_cast<std::size_t>(got));
  return c;
}

std::uint64_t LogStore::position_of_tail_lines(Stream s, std::size_t n) const {
  const std::uint64_t b = begin(s), e = end(s);
  if (n == 0 || e == b) return e;
  std::uint64_t limit = e;
  if (auto last = read(s, e - 1, 1); last.ok() && last->data == "\n") limit = e - 1;
  const StreamState& ss = st(s);
  std::size_t found = 0;
  std::uint64_t hi = limit;
  while (hi > b) {
    // Blocks never span a rotation (read() returns one file at a time).
    std::size_t g = 0;
    while (ss.bases[g] > hi - 1) ++g;
    const std::uint64_t lo = std::max(ss.bases[g], hi - std::min<std::uint64_t>(hi, 64 * 1024));
    auto chunk = read(s, lo, static_cast<std::size_t>(hi - lo));
    if (!chunk.ok() || chunk->data.size() != hi - lo) return b;
    const std::string& d = chunk->data;
    for (std::size_t i = d.size(); i-- > 0;)
      if (d[i] == '\n' && ++found == n) return lo + i + 1;
    hi = lo;
  }
  return b;
}

std::uint64_t LogStore::position_of_time(Stream s, std::int64_t unix_ms) const {
  const StreamState& ss = st(s);
  for (std::size_t g = ss.bases.size(); g-- > 0;) {
    runtime::Fd own;
    int fd = ss.idx.get();
    if (g > 0) {
      own = open_log_file(file_path(s, static_cast<int>(g)) + ".idx", O_RDONLY);
      fd = own.get();
    }
    if (fd < 0) continue;
    const std::uint64_t sz = g == 0 ? ss.idx_size : file_size(fd);
    if (sz < kHeaderSize + kRecordSize) continue;
    const std::uint64_t count = (sz - kHeaderSize) / kRecordSize;
    auto record = [&](std::uint64_t i) {
      IndexRecord r{0, 0};
      pread_full(fd, &r, kRecordSize, kHeaderSize + i * kRecordSize);
      return r;
    };
    // Bytes after a record were captured within one interval of its time.
    // (r + interval > t, written so that a corrupt record near INT64_MAX or a query at
    // INT64_MIN cannot overflow: when r < t the unsigned difference is exact.)
    auto newer = [&](const IndexRecord& r) {
      return r.unix_ms >= unix_ms ||
             static_cast<std::uint64_t>(unix_ms) - static_cast<std::uint64_t>(r.unix_ms) <
                 static_cast<std::uint64_t>(kIndexIntervalMs);
    };
    if (!newer(record(count - 1))) continue;
    std::uint64_t lo = 0, hi = count - 1;  // first record that is newer
    while (lo < hi) {
      const std::uint64_t mid = (lo + hi) / 2;
      if (newer(record(mid))) hi = mid;
      else lo = mid + 1;
    }
    // The bytes before the first newer record belong to the previous one's interval.
    // A record past its file's end (a corrupt index) must not send a follower beyond
    // what exists, where it would wait for bytes that never come.
    const std::uint64_t file_bytes = g == 0 ? ss.size : ss.bases[g - 1] - ss.bases[g];
    return ss.bases[g] + (lo == 0 ? 0 : std::min(record(lo).offset, file_bytes));
  }
  return end(s);
}

Task<Result<void>> LogStore::wait_growth(Stream s, std::uint64_t known_end, std::stop_token stop) {
  while (end(s) <= known_end) {
    if (closed_) co_return Result<void>::failure(ESHUTDOWN);
    if (stop.stop_requested()) co_return Result<void>::failure(ECANCELED);
    auto r = co_await st(s).waiters.wait(stop);
    if (!r) co_return r;
  }
  co_return Result<void>{};
}

void LogStore::close() {
  closed_ = true;
  // Only schedules the waiters: each re-checks closed_ when it runs, after close() returned.
  for (auto& ss : streams_) ss->waiters.notify_all();
}

void LogStore::set_limits(std::uint64_t max_size, int keep) {
  max_size_ = max_size;
  keep_ = std::max(keep, 1);
  for (Stream s : {Stream::out, Stream::err}) trim(s);
}

const LogStreamStats& LogStore::stats(Stream s) const { return st(s).stats; }

}  // namespace actors
