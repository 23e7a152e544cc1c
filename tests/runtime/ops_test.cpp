// Every operation awaitable, on real pipes, files and loopback sockets, with its
// error paths as values; deadlines, and a completion racing its deadline.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/stat.h>

#include <random>
#include <string>

#include "run_loop.hpp"
#include "runtime/ops_fs.hpp"
#include "runtime/ops_net.hpp"
#include "runtime/ops_rw.hpp"
#include "runtime/ops_wait.hpp"
#include "test_util.hpp"

using namespace runtime;
using namespace std::chrono_literals;
using testutil::bytes;
using testutil::Pipe;

namespace {
std::span<std::byte> wbuf(char* p, std::size_t n) { return std::as_writable_bytes(std::span(p, n)); }
std::string slurp(const std::string& path) {
  std::string out;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  char buf[4096];
  for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  return out;
}
}  // namespace

TEST(Ops, PipeReadWriteAndEof) {
  Pipe p;
  run_loop([&]() -> Task<void> {
    Result<int> w = co_await write(p.w.get(), bytes("hello"));
    CO_ASSERT_TRUE(w.ok()) << w.message();
    EXPECT_EQ(w.value(), 5);
    char buf[16];
    Result<int> r = co_await read(p.r.get(), wbuf(buf, sizeof buf));
    CO_ASSERT_TRUE(r.ok());
    EXPECT_EQ(std::string(buf, static_cast<std::size_t>(r.value())), "hello");
    p.w.reset();
    Result<int> eof = co_await read(p.r.get(), wbuf(buf, sizeof buf));
    CO_ASSERT_TRUE(eof.ok());
    EXPECT_EQ(eof.value(), 0);
  });
}

TEST(Ops, BadFdIsEbadf) {
  run_loop([]() -> Task<void> {
    char buf[4];
    Result<int> r = co_await read(9999, wbuf(buf, sizeof buf));
    EXPECT_EQ(r.error(), EBADF);
    Result<int> w = co_await write(9999, bytes("x"));
    EXPECT_EQ(w.error(), EBADF);
    Result<int> c = co_await runtime::close(9999);
    EXPECT_EQ(c.error(), EBADF);
  });
}

TEST(Ops, ReadvWritev) {
  Pipe p;
  run_loop([&]() -> Task<void> {
    std::string a = "abc", b = "defg", c = "hi";
    iovec out[3] = {{a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
    Result<int> w = co_await writev(p.w.get(), out);
    CO_ASSERT_TRUE(w.ok());
    EXPECT_EQ(w.value(), 9);
    char x[4], y[5];
    iovec in[2] = {{x, sizeof x}, {y, sizeof y}};
    Result<int> r = co_await readv(p.r.get(), in);
    CO_ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value(), 9);
    EXPECT_EQ(std::string(x, 4) + std::string(y, 5), "abcdefghi");
  });
}

TEST(Ops, SplicePipeToFile) {
  testutil::TempDir dir;
  const std::string path = dir / "spliced";
  Pipe p;
  run_loop([&]() -> Task<void> {
    Result<int> f = co_await openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC);
    CO_ASSERT_TRUE(f.ok()) << f.message();
    Fd file(f.value());
    std::string payload(10000, 'z');
    payload[1234] = 'q';
    CO_ASSERT_EQ((co_await write(p.w.get(), bytes(payload))).value_or(-1), 10000);
    int moved = 0;
    while (moved < 10000) {
      Result<int> s = co_await splice(p.r.get(), -1, file.get(), -1, 65536);
      CO_ASSERT_TRUE(s.ok()) << s.message();
      CO_ASSERT_GT(s.value(), 0);
      moved += s.value();
    }
    EXPECT_EQ(moved, 10000);
    EXPECT_EQ(slurp(path), payload);
  });
}

TEST(Ops, TcpAcceptConnectSendRecv) {
  sockaddr_in addr{};
  Fd lst = testutil::listen_loopback(addr);
  run_loop([&]() -> Task<void> {
    Fd client = testutil::tcp_socket();
    spawn([](int fd, sockaddr_in a) -> Task<void> {
      Result<int> c = co_await runtime::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
      EXPECT_TRUE(c.ok()) << c.message();
      EXPECT_EQ((co_await send(fd, bytes("ping"))).value_or(-1), 4);
    }(client.get(), addr));
    AcceptOp acc = accept(lst.get());
    Result<int> a = co_await acc;
    CO_ASSERT_TRUE(a.ok()) << a.message();
    Fd conn(a.value());
    EXPECT_EQ(acc.peer().ss_family, AF_INET);
    EXPECT_TRUE(::fcntl(conn.get(), F_GETFD) & FD_CLOEXEC);
    char buf[8];
    Result<int> r = co_await recv(conn.get(), wbuf(buf, sizeof buf));
    CO_ASSERT_TRUE(r.ok());
    EXPECT_EQ(std::string(buf, static_cast<std::size_t>(r.value())), "ping");
    client.reset();
    Result<int> eof = co_await recv(conn.get(), wbuf(buf, sizeof buf));
    EXPECT_EQ(eof.value_or(-1), 0);
  });
}

// SO_LINGER {1, 0} makes close() send an RST: the peer's recv sees ECONNRESET.
TEST(Ops, PeerResetIsEconnreset) {
  sockaddr_in addr{};
  Fd lst = testutil::listen_loopback(addr);
  run_loop([&]() -> Task<void> {
    Fd client = testutil::tcp_socket();
    CO_ASSERT_TRUE((co_await runtime::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr)).ok());
    Result<int> a = co_await accept(lst.get());
    CO_ASSERT_TRUE(a.ok());
    Fd conn(a.value());
    linger lg{1, 0};
    ::setsockopt(client.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    spawn([](Fd c) -> Task<void> {
      co_await sleep_for(2ms);  // the recv below is in flight by then
      c.reset();
    }(std::move(client)));
    char buf[8];
    Result<int> r = co_await recv(conn.get(), wbuf(buf, sizeof buf));
    EXPECT_EQ(r.error(), ECONNRESET) << r.message();
  });
}

// Writing to a peer that has gone: the first send may still succeed (it is what
// provokes the RST), later ones fail with EPIPE/ECONNRESET as a value; SIGPIPE's
// default action would kill the test binary.
TEST(Ops, SendToClosedPeerIsValueNotSigpipe) {
  sockaddr_in addr{};
  Fd lst = testutil::listen_loopback(addr);
  run_loop([&]() -> Task<void> {
    Fd client = testutil::tcp_socket();
    CO_ASSERT_TRUE((co_await runtime::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr)).ok());
    Result<int> a = co_await accept(lst.get());
    CO_ASSERT_TRUE(a.ok());
    ::close(a.value());
    int err = 0;
    for (int i = 0; i < 200 && err == 0; ++i) {
      Result<int> s = co_await send(client.get(), bytes("data"));
      if (!s.ok()) err = s.error();
      else co_await sleep_for(1ms);
    }
    EXPECT_TRUE(err == EPIPE || err == ECONNRESET) << std::strerror(err);
  });
}

TEST(Ops, ConnectRefused) {
  sockaddr_in addr{};
  {
    // Bound but never listening, then closed: nothing accepts on this port.
    Fd probe = testutil::tcp_socket();
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ::getsockname(probe.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  }
  run_loop([&]() -> Task<void> {
    Fd s = testutil::tcp_socket();
    Result<int> c = co_await runtime::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    EXPECT_EQ(c.error(), ECONNREFUSED) << c.message();
  });
}

TEST(Ops, PollReadiness) {
  Pipe p;
  run_loop([&]() -> Task<void> {
    Result<int> none = co_await poll(p.r.get(), POLLIN).deadline(5ms);
    EXPECT_EQ(none.error(), ETIME);
    Result<int> out = co_await poll(p.w.get(), POLLOUT);
    CO_ASSERT_TRUE(out.ok());
    EXPECT_TRUE(out.value() & POLLOUT);
    spawn([](int fd) -> Task<void> {
      co_await sleep_for(1ms);
      (void)co_await write(fd, bytes("!"));
    }(p.w.get()));
    Result<int> in = co_await poll(p.r.get(), POLLIN);
    CO_ASSERT_TRUE(in.ok());
    EXPECT_TRUE(in.value() & POLLIN);
  });
}

TEST(Ops, FileOpenFsyncRenameClose) {
  testutil::TempDir dir;
  run_loop([&]() -> Task<void> {
    Result<int> missing = co_await openat(AT_FDCWD, dir / "nope", O_RDONLY);
    EXPECT_EQ(missing.error(), ENOENT);
    Result<int> f = co_await openat(AT_FDCWD, dir / "a", O_WRONLY | O_CREAT | O_EXCL, 0600);
    CO_ASSERT_TRUE(f.ok()) << f.message();
    EXPECT_TRUE(::fcntl(f.value(), F_GETFD) & FD_CLOEXEC);
    EXPECT_EQ((co_await write(f.value(), bytes("content"), 0)).value_or(-1), 7);
    EXPECT_TRUE((co_await runtime::fsync(f.value())).ok());
    EXPECT_TRUE((co_await runtime::fsync(f.value(), true)).ok());
    EXPECT_TRUE((co_await runtime::close(f.value())).ok());
    Result<int> again = co_await openat(AT_FDCWD, dir / "a", O_WRONLY | O_CREAT | O_EXCL);
    EXPECT_EQ(again.error(), EEXIST);
    EXPECT_TRUE((co_await rename(dir / "a", dir / "b")).ok());
    EXPECT_EQ((co_await rename(dir / "a", dir / "c")).error(), ENOENT);
    struct stat st{};
    EXPECT_EQ(::stat((dir / "b").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  });
  EXPECT_EQ(slurp(dir / "b"), "content");
}

// The read never completes; the linked timeout cancels it. The waiter resumes
// only after both CQEs (op: ECANCELED, timeout: ETIME) have been reaped.
TEST(Ops, DeadlineOnReadThatNeverCompletes) {
  Pipe p;
  run_loop([&]() -> Task<void> {
    const std::uint64_t cqes_before = reactor().stats().cqes;
    const auto start = std::chrono::steady_clock::now();
    char buf[4];
    Result<int> r = co_await read(p.r.get(), wbuf(buf, sizeof buf)).deadline(10ms);
    EXPECT_EQ(r.error(), ETIME) << r.message();
    EXPECT_GE(std::chrono::steady_clock::now() - start, 10ms);
    EXPECT_EQ(reactor().stats().cqes - cqes_before, 2u);
    EXPECT_EQ(reactor().stats().inflight, 0u);
  });
}

TEST(Ops, DeadlineNotReachedGivesRealResult) {
  Pipe p;
  run_loop([&]() -> Task<void> {
    CO_ASSERT_EQ((co_await write(p.w.get(), bytes("ok"))).value_or(-1), 2);
    char buf[4];
    Result<int> r = co_await read(p.r.get(), wbuf(buf, sizeof buf)).deadline(1s);
    EXPECT_EQ(r.value_or(-1), 2);
    EXPECT_TRUE((co_await sleep_for(1ms).deadline(1s)).ok());
    EXPECT_EQ(reactor().stats().inflight, 0u);
  });
}

// A write makes the read ready at about the moment its 0-1 ms deadline expires.
// Each read must resolve exactly once, with data or ETIME, and never lose bytes:
// if the read took them they are in its buffer, else they are still in the pipe.
TEST(Ops, CompletionRacesDeadline) {
  std::mt19937 rng(20240611);
  std::uniform_int_distribution<int> us(0, 1000);
  int got_data = 0, got_etime = 0;
  run_loop([&]() -> Task<void> {
    for (int i = 0; i < 2000; ++i) {
      Pipe p(O_CLOEXEC | O_NONBLOCK);
      const std::string msg = "m" + std::to_string(i);
      auto writer_done = std::make_shared<bool>(false);
      spawn([](int fd, std::string m, std::chrono::microseconds d, std::shared_ptr<bool> done) -> Task<void> {
        if (d.count() > 500) co_await sleep_for(d - 500us);
        EXPECT_EQ(::write(fd, m.data(), m.size()), static_cast<ssize_t>(m.size()));
        *done = true;
      }(p.w.get(), msg, std::chrono::microseconds(us(rng)), writer_done));
      char buf[32];
      int resolved = 0;
      Result<int> r = co_await read(p.r.get(), wbuf(buf, sizeof buf)).deadline(std::chrono::microseconds(us(rng)));
      ++resolved;
      while (!*writer_done) co_await sleep_for(100us);
      EXPECT_EQ(resolved, 1);
      if (r.ok()) {
        ++got_data;
        EXPECT_EQ(std::string(buf, static_cast<std::size_t>(r.value())), msg);
      } else {
        CO_ASSERT_EQ(r.error(), ETIME) << r.message();
        ++got_etime;
        ssize_t n = ::read(p.r.get(), buf, sizeof buf);
        CO_ASSERT_EQ(n, static_cast<ssize_t>(msg.size())) << "bytes lost at iteration " << i;
        EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)), msg);
      }
    }
    EXPECT_EQ(reactor().stats().inflight, 0u);
  });
  std::printf("race outcomes: %d data, %d ETIME\n", got_data, got_etime);
  EXPECT_EQ(got_data + got_etime, 2000);
  EXPECT_GT(got_data, 0);
  EXPECT_GT(got_etime, 0);
}
