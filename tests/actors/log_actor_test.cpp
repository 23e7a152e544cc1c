// LogActor: real child processes writing real pipes, captured into real files.
// The child is this test binary re-executed (/proc/self/exe) with DL_WRITER set; a
// static initializer below turns it into a pattern writer before gtest's main runs.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "actors/log_actor.hpp"
#include "run_loop.hpp"
#include "runtime/ops_wait.hpp"
#include "runtime/process.hpp"
#include "runtime/scope.hpp"

using actors::CaptureResult;
using actors::DropEpisode;
using actors::LogStore;
using actors::Stream;
using runtime::Task;

namespace {

// The stream's content is a pure function of position: 64-byte lines
// "000000000000042 " + 47 x letter + '\n'. Loss, duplication or reordering shows.
constexpr std::size_t kLine = 64;
std::string pattern(std::uint64_t pos, std::size_t len) {
  std::string out;
  out.reserve(len + kLine);
  std::uint64_t line = pos / kLine;
  const std::size_t skip = pos % kLine;
  char buf[kLine + 1];
  while (out.size() < len + skip) {
    std::snprintf(buf, sizeof buf, "%015llu ", static_cast<unsigned long long>(line));
    std::memset(buf + 16, 'a' + static_cast<int>(line % 26), 47);
    buf[63] = '\n';
    out.append(buf, kLine);
    ++line;
  }
  return out.substr(skip, len);
}

void write_all(const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(STDOUT_FILENO, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) _exit(2);
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

// DL_WRITER=pattern:<bytes>:<chunk>            write the pattern, exit
// DL_WRITER=phased:<bytes>:<gofile>:<n>:<chunk> pattern, wait for gofile, then n chunks
//                                              100 ms apart, exit
// DL_WRITER=hold:<bytes>                      write, then sleep 30 s holding the pipe
// DL_WRITER=fast:<mib>                        1 MiB blocks of one pattern (throughput)
// DL_WRITER=fasthold:<mib>                    the same, then sleep 30 s holding the pipe
[[maybe_unused]] const int child_hook = [] {
  const char* w = std::getenv("DL_WRITER");
  if (!w) return 0;
  unsigned long long bytes = 0, chunk = 65536, n = 0;
  char gofile[256] = {};
  if (std::sscanf(w, "pattern:%llu:%llu", &bytes, &chunk) == 2) {
    for (std::uint64_t pos = 0; pos < bytes; pos += chunk) {
      auto s = pattern(pos, static_cast<std::size_t>(std::min<std::uint64_t>(chunk, bytes - pos)));
      write_all(s.data(), s.size());
    }
  } else if (std::sscanf(w, "phased:%llu:%255[^:]:%llu:%llu", &bytes, gofile, &n, &chunk) == 4) {
    auto s = pattern(0, bytes);
    write_all(s.data(), s.size());
    for (int i = 0; i < 2000 && ::access(gofile, F_OK) != 0; ++i) ::usleep(10'000);
    for (unsigned long long i = 0; i < n; ++i) {
      auto c = pattern(bytes + i * chunk, chunk);
      write_all(c.data(), c.size());
      ::usleep(100'000);
    }
  } else if (std::sscanf(w, "hold:%llu", &bytes) == 1) {
    auto s = pattern(0, bytes);
    write_all(s.data(), s.size());
    ::sleep(30);
  } else if (std::sscanf(w, "fasthold:%llu", &bytes) == 1) {
    std::string s = pattern(0, 1 << 20);
    for (unsigned long long i = 0; i < bytes; ++i) write_all(s.data(), s.size());
    ::sleep(30);
  } else if (std::sscanf(w, "fast:%llu", &bytes) == 1) {
    std::string s = pattern(0, 1 << 20);
    for (unsigned long long i = 0; i < bytes; ++i) write_all(s.data(), s.size());
  }
  _exit(0);
}();

runtime::Process spawn_writer(const std::string& spec) {
  runtime::SpawnOptions o;
  o.argv = {"/proc/self/exe"};
  o.env = {{"DL_WRITER", spec}};
  o.stderr_mode = runtime::SpawnOptions::Stdio::inherit;
  std::string detail;
  auto p = runtime::Process::spawn(o, &detail);
  if (!p.ok()) throw std::runtime_error("spawn: " + detail);
  return std::move(p.value());
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class LogActorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dockless-logactor-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/logs/svc";
  }
  void TearDown() override {
    if (mounted_) ::umount2(mount_dir_.c_str(), MNT_DETACH);
    std::filesystem::remove_all(root_);
  }
  std::unique_ptr<LogStore> open(std::uint64_t max, int keep, const std::string& dir = "") {
    auto r = LogStore::open(dir.empty() ? dir_ : dir, max, keep);
    EXPECT_TRUE(r.ok()) << r.message();
    return r.ok() ? std::move(r.value()) : nullptr;
  }
  // Runs one writer child to its end, capturing stdout. Returns the capture result.
  CaptureResult run_writer(LogStore& store, const std::string& spec) {
    return run_loop([&]() -> Task<CaptureResult> {
      auto proc = spawn_writer(spec);
      auto res = co_await actors::capture(store, Stream::out, std::move(proc.stdout_pipe()), {});
      auto st = co_await proc.wait();
      EXPECT_TRUE(st.ok() && st->success()) << (st.ok() ? st->describe() : st.message());
      co_return res;
    });
  }
  std::string root_, dir_, mount_dir_;
  bool mounted_ = false;
};

TEST_F(LogActorTest, HundredMiBCapturedByteExactAcrossRotatedFiles) {
  constexpr std::uint64_t kTotal = 100ull << 20;
  auto store = open(16 << 20, 10);  // 7 files, all kept
  auto res = run_writer(*store, "pattern:" + std::to_string(kTotal) + ":65536");
  EXPECT_TRUE(res.eof);
  EXPECT_EQ(res.captured, kTotal);
  EXPECT_EQ(res.dropped, 0u);
  EXPECT_EQ(store->end(Stream::out), kTotal);
  EXPECT_EQ(store->stats(Stream::out).rotations, 6u);
  // Oldest file first; together they are the stream.
  std::uint64_t pos = 0;
  for (int g = 6; g >= 0; --g) {
    const std::string p = dir_ + "/stdout.log" + (g ? "." + std::to_string(g) : "");
    const std::string content = slurp(p);
    ASSERT_EQ(content.size(), g ? 16u << 20 : kTotal - 6 * (16u << 20)) << p;
    ASSERT_TRUE(content == pattern(pos, content.size())) << p << " differs from its slice";
    pos += content.size();
  }
  EXPECT_EQ(pos, kTotal);
}

// A bulk stream goes through the staging pipe (service pipe -> private pipe by splice(2),
// private pipe -> file by the ring); a quiet one never opens it. Both byte-exact, the bulk
// one across rotations at 1 MiB, which cut the staged chunks in two.
TEST_F(LogActorTest, BulkStreamIsStagedQuietStreamIsNot) {
  constexpr std::uint64_t kTotal = 48ull << 20;
  auto store = open(1 << 20, 100);
  auto res = run_writer(*store, "pattern:" + std::to_string(kTotal) + ":65536");
  EXPECT_TRUE(res.eof);
  EXPECT_EQ(res.captured, kTotal);
  EXPECT_GT(res.staged, 0u);
  EXPECT_LE(res.staged, kTotal);
  std::uint64_t pos = 0;
  // A file rotates as it reaches 1 MiB: 48 full ones and an empty current one.
  for (int g = 48; g >= 0; --g) {
    std::string path = dir_ + "/stdout.log";
    if (g > 0) path += '.' + std::to_string(g);  // (GCC 12 warns on the ?: form here)
    const std::string content = slurp(path);
    ASSERT_EQ(content.size(), g ? 1u << 20 : 0u) << "generation " << g;
    ASSERT_TRUE(content == pattern(pos, content.size())) << "generation " << g;
    pos += content.size();
  }
  EXPECT_EQ(store->end(Stream::out), kTotal);

  const std::string quiet_dir = root_ + "/quiet";
  auto quiet = open(1 << 20, 2, quiet_dir);
  auto small = run_writer(*quiet, "pattern:200000:1000");
  EXPECT_EQ(small.captured, 200000u);
  EXPECT_EQ(small.staged, 0u);
  EXPECT_TRUE(slurp(quiet_dir + "/stdout.log") == pattern(0, 200000));
}

// The staging pipe empties into /dev/null while the disk is full, and the bytes staged
// when the stop comes are placed, not lost: what the file holds plus what was dropped
// is a prefix of the stream, nothing in between missing.
TEST_F(LogActorTest, StopWhileStagingPlacesEveryTakenByte) {
  auto store = open(256ull << 20, 2);
  CaptureResult res;
  run_loop([&]() -> Task<void> {
    // Bounded, then holding the pipe: however late the stopper runs (an emulated ARM VM
    // ran it after the tmpfs had filled), the capture ends by the stop, with at most this much.
    auto proc = spawn_writer("fasthold:48");
    std::stop_source stop;
    auto stopper = [&]() -> Task<void> {
      // Bounded, so a capture that never gets going fails the checks below instead of hanging.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (store->end(Stream::out) < (8u << 20) && std::chrono::steady_clock::now() < deadline)
        co_await runtime::sleep_for(std::chrono::milliseconds(1));
      stop.request_stop();
    };
    runtime::spawn(stopper(), "stopper");
    res = co_await actors::capture(*store, Stream::out, std::move(proc.stdout_pipe()), stop.get_token());
    (void)proc.signal_group(SIGKILL);
    (void)co_await proc.wait();
  });
  EXPECT_TRUE(res.stopped);
  EXPECT_GT(res.staged, 0u);
  EXPECT_EQ(res.dropped, 0u);
  EXPECT_EQ(store->end(Stream::out), res.captured);
  // A loaded machine (or a sanitizer build) may run the stopper late, after rotations:
  // what the kept files hold is then the stream's tail, [begin, end), still gapless.
  const std::uint64_t begin = store->begin(Stream::out);
  const std::string content = slurp(dir_ + "/stdout.log.1") + slurp(dir_ + "/stdout.log");
  ASSERT_EQ(content.size(), res.captured - begin);
  // fast: repeats one 1 MiB block of the pattern.
  const std::string block = pattern(0, 1 << 20);
  for (std::size_t off = 0; off < content.size();) {
    const std::size_t in_block = (begin + off) % block.size();
    const std::size_t n = std::min(block.size() - in_block, content.size() - off);
    ASSERT_TRUE(content.compare(off, n, block, in_block, n) == 0) << "at " << begin + off;
    off += n;
  }
}

TEST_F(LogActorTest, RotationKeepsTheLastNFilesEachMatchingItsSlice) {
  constexpr std::uint64_t kMiB = 1 << 20;
  constexpr std::uint64_t kTotal = 10 * kMiB + kMiB / 2;
  auto store = open(kMiB, 4);
  auto res = run_writer(*store, "pattern:" + std::to_string(kTotal) + ":10000");
  EXPECT_EQ(res.captured, kTotal);
  int logs = 0;
  for (auto& e : std::filesystem::directory_iterator(dir_))
    if (e.path().filename().string().rfind("stdout.log", 0) == 0 && e.path().extension() != ".idx") ++logs;
  EXPECT_EQ(logs, 4);
  EXPECT_EQ(store->begin(Stream::out), 7 * kMiB);
  for (int g = 0; g < 4; ++g) {
    const std::string content = slurp(dir_ + "/stdout.log" + (g ? "." + std::to_string(g) : ""));
    const std::uint64_t start = (10 - static_cast<std::uint64_t>(g)) * kMiB;
    EXPECT_EQ(content.size(), g ? kMiB : kMiB / 2);
    EXPECT_TRUE(content == pattern(start, content.size())) << "generation " << g;
  }
  EXPECT_EQ(store->position_of_tail_lines(Stream::out, 2), kTotal - 2 * kLine);
}

// Followers (one, then 200) read while the capture runs and files rotate under them.
void followers_receive_everything(LogStore& store, int followers, std::uint64_t total) {
  const std::string expected = pattern(0, total);
  int complete = 0;
  run_loop([&]() -> Task<void> {
    std::stop_source watchdog;
    auto follower = [&]() -> Task<void> {
      std::uint64_t pos = 0;
      while (pos < total) {
        auto c = store.read(Stream::out, pos, 64 * 1024);
        if (!c.ok() || c->skipped) {
          ADD_FAILURE() << "read at " << pos << ": " << (c.ok() ? "skipped bytes" : c.message());
          co_return;
        }
        if (c->data.empty()) {
          auto w = co_await store.wait_growth(Stream::out, pos, watchdog.get_token());
          if (!w.ok()) {
            ADD_FAILURE() << "follower stuck at " << pos;
            co_return;
          }
          continue;
        }
        if (expected.compare(pos, c->data.size(), c->data) != 0) {
          ADD_FAILURE() << "wrong bytes at " << pos;
          co_return;
        }
        pos += c->data.size();
      }
      ++complete;
    };
    for (int i = 0; i < followers; ++i) runtime::spawn(follower(), "follower");
    auto proc = spawn_writer("pattern:" + std::to_string(total) + ":8192");
    auto res = co_await actors::capture(store, Stream::out, std::move(proc.stdout_pipe()), {});
    EXPECT_EQ(res.captured, total);
    (void)co_await proc.wait();
    for (int i = 0; i < 1000 && complete < followers; ++i)
      co_await runtime::sleep_for(std::chrono::milliseconds(10));
    watchdog.request_stop();
    co_await runtime::sleep_for(std::chrono::milliseconds(1));
  });
  EXPECT_EQ(complete, followers);
  EXPECT_GT(store.stats(Stream::out).rotations, 3u);
}

TEST_F(LogActorTest, FollowerReceivesEveryByteAcrossRotation) {
  auto store = open(256 * 1024, 50);
  followers_receive_everything(*store, 1, 8 << 20);
}

TEST_F(LogActorTest, TwoHundredFollowersReceiveEveryByte) {
  auto store = open(256 * 1024, 20);
  followers_receive_everything(*store, 200, 2 << 20);
}

TEST_F(LogActorTest, FullDiskDropsWithoutBlockingAndResumes) {
  mount_dir_ = root_ + "/tiny";
  std::filesystem::create_directories(mount_dir_);
  if (::mount("tmpfs", mount_dir_.c_str(), "tmpfs", 0, "size=1m") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  mounted_ = true;
  const std::string filler = mount_dir_ + "/filler";
  {
    std::ofstream f(filler, std::ios::binary);
    f << std::string(256 * 1024, 'f');
  }
  auto store = open(64 << 20, 2, mount_dir_ + "/logs");
  ASSERT_TRUE(store);
  const std::string go = root_ + "/go";
  constexpr std::uint64_t kPhase1 = 2 << 20, kChunks = 30, kChunk = 4096;
  constexpr std::uint64_t kTotal = kPhase1 + kChunks * kChunk;
  std::vector<DropEpisode> episodes;
  CaptureResult res;
  run_loop([&]() -> Task<void> {
    auto proc = spawn_writer("phased:" + std::to_string(kPhase1) + ":" + go + ":" +
                             std::to_string(kChunks) + ":" + std::to_string(kChunk));
    auto driver = [&]() -> Task<void> {
      // Phase 1 is all through (captured or dropped): the child was not blocked.
      for (int i = 0; i < 2000; ++i) {
        const auto& st = store->stats(Stream::out);
        if (st.bytes_written + st.bytes_dropped >= kPhase1) break;
        co_await runtime::sleep_for(std::chrono::milliseconds(10));
      }
      EXPECT_EQ(episodes.size(), 1u);
      EXPECT_GT(store->stats(Stream::out).bytes_dropped, 0u);
      std::filesystem::remove(filler);  // free space, then let the child go on
      std::ofstream(go).put('x');
    };
    runtime::spawn(driver(), "driver");
    res = co_await actors::capture(*store, Stream::out, std::move(proc.stdout_pipe()), {},
                                   [&](const DropEpisode& e) { episodes.push_back(e); });
    auto st = co_await proc.wait();
    EXPECT_TRUE(st.ok() && st->success());
  });
  EXPECT_TRUE(res.eof);
  EXPECT_EQ(res.captured + res.dropped, kTotal);
  EXPECT_GT(res.dropped, 0u);
  EXPECT_EQ(store->stats(Stream::out).bytes_dropped, res.dropped);
  ASSERT_EQ(episodes.size(), 2u);
  EXPECT_FALSE(episodes[0].resumed);
  EXPECT_EQ(episodes[0].error, ENOSPC);
  EXPECT_TRUE(episodes[1].resumed);
  EXPECT_EQ(episodes[1].dropped, res.dropped);
  // The bytes after the recovery are in the file, in order.
  const std::string content = slurp(mount_dir_ + "/logs/stdout.log");
  ASSERT_GE(content.size(), kChunk);
  EXPECT_TRUE(content.substr(content.size() - kChunk) == pattern(kTotal - kChunk, kChunk));
  EXPECT_TRUE(content.substr(0, 4096) == pattern(0, 4096));
}

TEST_F(LogActorTest, StopDrainsWhatIsAlreadyInThePipe) {
  auto store = open(1 << 20, 2);
  CaptureResult res;
  run_loop([&]() -> Task<void> {
    auto proc = spawn_writer("hold:50000");
    // Until every byte is in the pipe (bounded: 10 s), however slow the machine is.
    for (int i = 0; i < 1000; ++i) {
      int queued = 0;
      if (::ioctl(proc.stdout_pipe().get(), FIONREAD, &queued) == 0 && queued >= 50000) break;
      co_await runtime::sleep_for(std::chrono::milliseconds(10));
    }
    std::stop_source stop;
    stop.request_stop();
    res = co_await actors::capture(*store, Stream::out, std::move(proc.stdout_pipe()), stop.get_token());
    (void)proc.signal_group(SIGKILL);
    (void)co_await proc.wait();
  });
  EXPECT_TRUE(res.stopped);
  EXPECT_FALSE(res.eof);
  EXPECT_EQ(res.captured, 50000u);
  EXPECT_EQ(slurp(dir_ + "/stdout.log"), pattern(0, 50000));
}

// An overlap restart: two instances, two pipes, one stream. The captures take turns, so
// the file holds every byte of both, in whole 4 KiB writes (each a whole number of
// lines), and nothing lands on top of anything else.
TEST_F(LogActorTest, TwoCapturesShareAStreamByTurns) {
  constexpr std::uint64_t kEach = 8ull << 20;
  auto store = open(64 << 20, 2);
  CaptureResult a, b;
  run_loop([&]() -> Task<void> {
    auto pa = spawn_writer("pattern:" + std::to_string(kEach) + ":4096");
    auto pb = spawn_writer("pattern:" + std::to_string(kEach) + ":4096");
    runtime::Scope scope;
    auto one = [](LogStore* st, runtime::Process* p, CaptureResult* out) -> Task<void> {
      *out = co_await actors::capture(*st, Stream::out, std::move(p->stdout_pipe()), {});
      (void)co_await p->wait();
    };
    scope.spawn(one(store.get(), &pa, &a), "a");
    scope.spawn(one(store.get(), &pb, &b), "b");
    co_await scope.join();
  });
  EXPECT_TRUE(a.eof && b.eof);
  EXPECT_EQ(a.captured, kEach);
  EXPECT_EQ(b.captured, kEach);
  const std::string file = slurp(dir_ + "/stdout.log");
  ASSERT_EQ(file.size(), 2 * kEach);
  // Each 64-byte line is a whole line of the pattern, and each line number shows up
  // exactly twice (once per writer).
  std::vector<int> seen(kEach / kLine, 0);
  for (std::size_t off = 0; off < file.size(); off += kLine) {
    const std::string line = file.substr(off, kLine);
    const unsigned long long n = std::strtoull(line.c_str(), nullptr, 10);
    ASSERT_LT(n, seen.size()) << "at " << off;
    ASSERT_EQ(line, pattern(n * kLine, kLine)) << "a torn or overwritten line at " << off;
    ++seen[n];
  }
  for (std::size_t n = 0; n < seen.size(); ++n) ASSERT_EQ(seen[n], 2) << "line " << n;
}

// Not a test: `--gtest_also_run_disabled_tests --gtest_filter=*Throughput*` prints MiB/s.
// DL_BENCH_DIR puts the files elsewhere (a tmpfs, to take the disk out of the number).
TEST_F(LogActorTest, DISABLED_ThroughputOneGiB) {
  const char* where = std::getenv("DL_BENCH_DIR");
  auto store = open(64 << 20, 20, where ? std::string(where) + "/dockless-bench-logs" : "");
  const auto t0 = std::chrono::steady_clock::now();
  auto res = run_writer(*store, "fast:1024");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(res.captured, 1ull << 30);
  std::printf("captured %llu MiB in %.2f s: %.0f MiB/s\n",
              static_cast<unsigned long long>(res.captured >> 20), secs,
              static_cast<double>(res.captured >> 20) / secs);
  if (where) std::filesystem::remove_all(std::string(where) + "/dockless-bench-logs");
}

}  // namespace
