// Benchmark 4: a child writes N MiB into a pipe; we move it into a file in /tmp.
// dockless: the LogActor's loop — splice(SPLICE_F_NONBLOCK|SPLICE_F_MOVE, up to
// 1 MiB) through the ring until EAGAIN, then a ring poll(POLLIN), until EOF.
// baseline: blocking read/write through a 64 KiB user-space buffer.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench.hpp"
#include "runtime/fd.hpp"
#include "runtime/ops_rw.hpp"
#include "runtime/ops_wait.hpp"
#include "runtime/process.hpp"
#include "runtime/reactor.hpp"

namespace bench {

namespace {

constexpr unsigned kSpliceMax = 1 << 20;
constexpr std::size_t kCopyBuf = 64 * 1024;

struct Counts {
  std::uint64_t splices = 0, polls = 0;
};

// An anonymous file in /tmp: unlinked at once, so nothing is left behind even
// if the run dies; its dirty pages are dropped when the fd closes.
runtime::Fd temp_file() {
  char path[] = "/tmp/dockless-bench-XXXXXX";
  int fd = ::mkostemp(path, O_CLOEXEC);
  if (fd < 0) fail("mkostemp /tmp");
  ::unlink(path);
  return runtime::Fd(fd);
}

runtime::Process start_writer(const Config& cfg, std::uint64_t mib) {
  runtime::SpawnOptions o;
  o.argv = {cfg.self_exe, "--write-pattern", std::to_string(mib)};
  o.stdout_mode = runtime::SpawnOptions::Stdio::pipe;
  o.stderr_mode = runtime::SpawnOptions::Stdio::inherit;
  std::string detail;
  auto p = runtime::Process::spawn(o, &detail);
  if (!p) throw std::runtime_error("spawn writer: " + detail);
  return std::move(p.value());
}

void check_size(const runtime::Fd& f, std::uint64_t mib) {
  struct stat st{};
  if (::fstat(f.get(), &st) != 0) fail("fstat");
  if (static_cast<std::uint64_t>(st.st_size) != mib << 20)
    throw std::runtime_error("file holds " + std::to_string(st.st_size) + " bytes, expected " +
                             std::to_string(mib << 20));
}

// `direct`: splice(2) called on the reactor thread instead of IORING_OP_SPLICE,
// which the kernel always hands to an io-wq worker thread (one thread hop per
// splice). Only the wait for POLLIN goes through the ring then.
runtime::Task<double> splice_root(const Config& cfg, std::uint64_t mib, int pipe_size, bool direct,
                                  Counts* counts) {
  runtime::Fd out = temp_file();
  const auto t0 = Clock::now();
  runtime::Process writer = start_writer(cfg, mib);
  const int in = writer.stdout_pipe().get();
  // The writer may already be filling the default pipe; resizing a non-empty
  // pipe is fine as long as the new size holds what is in it.
  if (pipe_size > 0 && ::fcntl(in, F_SETPIPE_SZ, pipe_size) < 0) fail("F_SETPIPE_SZ");
  Counts c;
  for (;;) {
    constexpr unsigned kFlags = SPLICE_F_NONBLOCK | SPLICE_F_MOVE;
    runtime::Result<int> r =
        direct ? runtime::from_syscall(::splice(in, nullptr, out.get(), nullptr, kSpliceMax, kFlags))
               : co_await runtime::splice(in, -1, out.get(), -1, kSpliceMax, kFlags);
    ++c.splices;
    if (r && r.value() == 0) break;  // EOF: the writer closed its end
    if (r) continue;
    if (r.error() != EAGAIN) fail_errno("splice", r.error());
    ++c.polls;
    runtime::Result<int> p = co_await runtime::poll(in, POLLIN);
    if (!p) fail_errno("poll", p.error());
  }
  auto status = co_await writer.wait();
  const double rate = static_cast<double>(mib) / seconds_since(t0);
  if (!status || !status->success()) throw std::runtime_error("writer failed");
  check_size(out, mib);
  *counts = c;
  co_return rate;
}

double dockless_splice(const Config& cfg, std::uint64_t mib, int pipe_size, bool direct,
                       Counts* counts) {
  runtime::Reactor r;
  return r.run(splice_root(cfg, mib, pipe_size, direct, counts));
}

double copy_loop(const Config& cfg, std::uint64_t mib) {
  runtime::Fd out = temp_file();
  std::vector<char> buf(kCopyBuf);
  const auto t0 = Clock::now();
  runtime::Process writer = start_writer(cfg, mib);
  const int in = writer.stdout_pipe().get();
  // Process hands us a non-blocking end (for the ring); the baseline blocks.
  ::fcntl(in, F_SETFL, ::fcntl(in, F_GETFL) & ~O_NONBLOCK);
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("read");
    }
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(out.get(), buf.data() + off, static_cast<std::size_t>(n - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        fail("write");
      }
      off += w;
    }
  }
  // Exit is near once EOF is seen: block on the pidfd, then reap it.
  pollfd pfd{writer.pidfd(), POLLIN, 0};
  while (::poll(&pfd, 1, -1) < 0 && errno == EINTR) {
  }
  auto status = writer.try_reap();
  const double rate = static_cast<double>(mib) / seconds_since(t0);
  if (!status || !status->success()) throw std::runtime_error("writer failed");
  check_size(out, mib);
  return rate;
}

std::string count_note(const char* what, const Counts& c, std::uint64_t mib) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s: %llu splices (%.0f KiB avg), %llu polls (last run)", what,
                static_cast<unsigned long long>(c.splices),
                c.splices ? static_cast<double>(mib << 10) / static_cast<double>(c.splices) : 0.0,
                static_cast<unsigned long long>(c.polls));
  return buf;
}

}  // namespace

std::vector<Row> run_splice(const Config& cfg) {
  const std::uint64_t mib = cfg.quick ? 256 : 1024;
  std::vector<Row> rows;
  Counts c;
  Row row = compare(
      "splice pipe->file MiB/s", Unit::mib_per_s, cfg,
      [&] { return dockless_splice(cfg, mib, 0, false, &c); }, "read/write 64 KiB loop",
      [&] { return copy_loop(cfg, mib); }, Goal::ratio(1.5));
  row.note = count_note("splice, default pipe", c, mib);
  rows.push_back(std::move(row));
  row = compare(
      "splice, F_SETPIPE_SZ 1 MiB, MiB/s", Unit::mib_per_s, cfg,
      [&] { return dockless_splice(cfg, mib, 1 << 20, false, &c); }, "read/write 64 KiB loop",
      [&] { return copy_loop(cfg, mib); }, Goal::ratio(1.5));
  row.note = count_note("splice, 1 MiB pipe", c, mib);
  rows.push_back(std::move(row));
  // Not the runtime's op: the alternative the LogActor could take (see bench/README.md,
  // and the splice row in docs/develop.md, "Benchmarks").
  row = compare(
      "splice(2)+ring poll, 1 MiB pipe, MiB/s", Unit::mib_per_s, cfg,
      [&] { return dockless_splice(cfg, mib, 1 << 20, true, &c); }, "read/write 64 KiB loop",
      [&] { return copy_loop(cfg, mib); }, Goal::ratio(1.5));
  row.note = count_note("splice(2) direct, 1 MiB pipe", c, mib);
  rows.push_back(std::move(row));
  return rows;
}

}  // namespace bench
