#pragma once
// Test harness: the server runs on this thread's reactor; clients (raw sockets,
// curl) run on a helper thread, because a client blocks and the reactor must not.
// The client thread signals completion through an eventfd the reactor reads.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include "http/server.hpp"
#include "run_loop.hpp"
#include "runtime/ops_rw.hpp"
#include "runtime/ops_wait.hpp"

namespace test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

inline std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Polls `pred` on the reactor (letting the server run) for at most `limit`.
inline runtime::Task<bool> eventually(std::function<bool()> pred, std::chrono::milliseconds limit = 3000ms) {
  const auto until = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() > until) co_return false;
    (void)co_await runtime::sleep_for(5ms);
  }
  co_return true;
}

struct Env {
  http::Server& server;
  std::uint16_t port = 0;
};

// Runs `client` on a thread while the server serves; then `after` on the
// reactor (stats checks that need the server to make progress); then stop().
inline void serve(http::ServerLimits limits, const std::function<void(http::Server&)>& setup,
                  const std::function<void(std::uint16_t)>& client,
                  const std::function<runtime::Task<void>(http::Server&)>& after = nullptr) {
  run_loop([&]() -> runtime::Task<void> {
    http::Server server(limits);
    setup(server);
    auto port = server.listen_tcp("127.0.0.1", 0);
    EXPECT_TRUE(port.ok()) << port.message();
    const int efd = ::eventfd(0, EFD_CLOEXEC);
    std::thread t([&, p = port.value_or(0)] {
      client(p);
      const std::uint64_t one = 1;
      (void)!::write(efd, &one, sizeof one);
    });
    std::uint64_t buf = 0;
    (void)co_await runtime::read(efd, std::as_writable_bytes(std::span(&buf, 1)));
    t.join();
    ::close(efd);
    if (after) co_await after(server);
    co_await server.stop(1000ms);
    EXPECT_EQ(server.stats().open_connections, 0u);
  });
}

// --- blocking client side --------------------------------------------------

// `source`: the client's own address (any of 127.0.0.0/8 is local), so a test
// can be several clients; nullptr lets the kernel pick.
inline int connect_tcp(std::uint16_t port, std::chrono::milliseconds rcv_timeout = 5000ms,
                       const char* source = nullptr) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (source) {
    sockaddr_in src{};
    src.sin_family = AF_INET;
    ::inet_pton(AF_INET, source, &src.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      ::close(fd);
      return -1;
    }
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{static_cast<time_t>(rcv_timeout.count() / 1000),
             static_cast<suseconds_t>((rcv_timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline bool send_str(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& n) const {
    auto it = headers.find(lower(n));
    return it == headers.end() ? "" : it->second;
  }
};

// Reads HTTP responses off one socket (Content-Length, chunked or until close).
class Reader {
 public:
  explicit Reader(int fd) : fd_(fd) {}
  // false on EOF, error or receive timeout.
  bool fill() {
    char b[16384];
    const ssize_t n = ::recv(fd_, b, sizeof b, 0);
    if (n <= 0) return false;
    buf_.append(b, static_cast<std::size_t>(n));
    return true;
  }
  std::optional<std::string> line() {
    for (;;) {
      const auto p = buf_.find("\r\n");
      if (p != std::string::npos) {
        std::string l = buf_.substr(0, p);
        buf_.erase(0, p + 2);
        return l;
      }
      if (!fill()) return std::nullopt;
    }
  }
  bool need(std::size_t n) {
    while (buf_.size() < n)
      if (!fill()) return false;
    return true;
  }
  std::optional<Reply> response(bool head = false) {
    Reply r;
    auto status = line();
    if (!status || status->size() < 12) return std::nullopt;
    r.status = std::stoi(status->substr(9, 3));
    for (;;) {
      auto l = line();
      if (!l) return std::nullopt;
      if (l->empty()) break;
      const auto colon = l->find(':');
      std::string v = l->substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.erase(0, 1);
      r.headers[lower(l->substr(0, colon))] = v;
    }
    if (head || r.status == 100 || r.status == 204 || r.status == 304) return r;
    if (lower(r.header("transfer-encoding")) == "chunked") {
      for (;;) {
        auto size_line = line();
        if (!size_line) return std::nullopt;
        const std::size_t n = std::stoul(*size_line, nullptr, 16);
        if (!need(n + 2)) return std::nullopt;
        r.body += buf_.substr(0, n);
        buf_.erase(0, n + 2);
        if (n == 0) break;
      }
    } else if (!r.header("content-length").empty()) {
      const std::size_t n = std::stoul(r.header("content-length"));
      if (!need(n)) return std::nullopt;
      r.body = buf_.substr(0, n);
      buf_.erase(0, n);
    } else {
      while (fill()) {}
      r.body = std::move(buf_);
      buf_.clear();
    }
    return r;
  }
  // True when the peer closed (recv → 0) with nothing more to read.
  bool at_eof() {
    if (!buf_.empty()) return false;
    char b;
    return ::recv(fd_, &b, 1, 0) == 0;
  }
  std::string& buffer() { return buf_; }

 private:
  int fd_;
  std::string buf_;
};

// Runs a shell command, returns its stdout (the test machine has curl).
inline std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char b[4096];
  std::size_t n;
  while ((n = std::fread(b, 1, sizeof b, p)) > 0) out.append(b, n);
  ::pclose(p);
  return out;
}

inline std::string url(std::uint16_t port, const std::string& path) {
  return "http://127.0.0.1:" + std::to_string(port) + path;
}

inline int count_fds() {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)e;
    ++n;
  }
  return n;
}

}  // namespace test
