#pragma once
// Coroutine helpers defined in a header get frames holding lambda types with no
// linkage; GCC flags that (-Wsubobject-linkage) although each test program
// includes this header once. Test-only, so silenced here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wsubobject-linkage"
#endif
// Shared by health_check_test.cpp and health_run_test.cpp: loopback HTTP servers,
// check specs and /proc probes for the HealthActor tests.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "actors/health.hpp"
#include "run_loop.hpp"
#include "runtime/fd.hpp"
#include "runtime/ops_net.hpp"
#include "runtime/ops_wait.hpp"

using namespace runtime;
using namespace std::chrono_literals;
using actors::HealthReport;
using config::HealthCheck;
using Clock = std::chrono::steady_clock;

namespace health_test {

// A loopback HTTP server: one connection at a time, enough for sequential checks.
struct Server {
  enum class Mode { reply, silent, garbage, hang_up };
  Mode mode = Mode::reply;
  std::deque<int> script;  // statuses for the next requests, then `status`
  int status = 200;
  int requests = 0;
  std::string last_request;
  std::uint16_t port = 0;
  Fd listener;
  std::stop_source stop;
  bool done = false;
};

// Bound to an ephemeral loopback port; invalid when `family`'s loopback is missing.
Fd listen_on(int family, std::uint16_t* port) {
  Fd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    len = sizeof *a;
  }
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd.get(), 16) != 0)
    return Fd();
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
  *port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                  : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return fd;
}

// A port nobody listens on: bound (so not handed out meanwhile) but never listening.
std::uint16_t closed_port(Fd& holder) {
  holder = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(holder.get(), reinterpret_cast<sockaddr*>(&a), len) != 0) return 0;
  ::getsockname(holder.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

Task<void> serve(std::shared_ptr<Server> s) {
  const std::stop_token token = s->stop.get_token();
  std::array<std::byte, 1024> buf;
  for (;;) {
    Result<int> c = co_await runtime::accept(s->listener.get()).stop_on(token);
    if (!c) break;
    Fd conn(c.value());
    ++s->requests;
    std::string req;
    while (req.find("\r\n\r\n") == std::string::npos && req.size() < 8192) {
      Result<int> r = co_await runtime::recv(conn.get(), buf).stop_on(token);
      if (!r || r.value() == 0) break;
      req.append(reinterpret_cast<const char*>(buf.data()), static_cast<std::size_t>(r.value()));
    }
    s->last_request = req;
    if (s->mode == Server::Mode::silent) {
      // Never answer; returns when the checker gives up and closes.
      Result<int> r = co_await runtime::recv(conn.get(), buf).stop_on(token);
      (void)r;
      continue;
    }
    if (s->mode == Server::Mode::hang_up) continue;  // closes without a word
    int status = s->status;
    if (!s->script.empty()) {
      status = s->script.front();
      s->script.pop_front();
    }
    const std::string reply = s->mode == Server::Mode::garbage
                                  ? std::string("garbage\x01\r\n")
                                  : "HTTP/1.1 " + std::to_string(status) +
                                        " X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    const auto bytes = std::as_bytes(std::span(reply));
    for (std::size_t sent = 0; sent < bytes.size();) {
      Result<int> r = co_await runtime::send(conn.get(), bytes.subspan(sent)).stop_on(token);
      if (!r) break;
      sent += static_cast<std::size_t>(r.value());
    }
  }
  s->done = true;
}

std::shared_ptr<Server> start_server(Server::Mode mode = Server::Mode::reply, int family = AF_INET) {
  auto s = std::make_shared<Server>();
  s->mode = mode;
  s->listener = listen_on(family, &s->port);
  if (s->listener) spawn(serve(s), "test-http");
  return s;
}

Task<void> sleep_ms(int ms) {
  Result<int> r = co_await sleep_for(std::chrono::milliseconds(ms));
  (void)r;
}

// Polls `pred` every 5 ms for at most `limit`; true once it holds.
Task<bool> wait_until(std::function<bool()> pred, std::chrono::milliseconds limit) {
  const auto end = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() >= end) co_return false;
    co_await sleep_ms(5);
  }
  co_return true;
}

Task<void> stop_server(std::shared_ptr<Server> s) {
  s->stop.request_stop();
  const bool ended = co_await wait_until([&] { return s->done || !s->listener; }, 2s);
  EXPECT_TRUE(ended) << "server actor did not end";
}

HealthCheck http_check(std::uint16_t port, std::chrono::milliseconds timeout = 2s) {
  HealthCheck h;
  h.kind = HealthCheck::Kind::http;
  h.host = "127.0.0.1";
  h.port = port;
  h.path = "/healthz";
  h.timeout = timeout;
  return h;
}

HealthCheck tcp_check(std::uint16_t port) {
  HealthCheck h;
  h.kind = HealthCheck::Kind::tcp;
  h.host = "127.0.0.1";
  h.port = port;
  return h;
}

HealthCheck exec_check(std::initializer_list<std::string> argv, std::chrono::milliseconds timeout = 2s) {
  HealthCheck h;
  h.kind = HealthCheck::Kind::exec;
  h.exec = argv;
  h.timeout = timeout;
  return h;
}

Task<HealthReport> once(HealthCheck spec, std::uint16_t service_port = 0) {
  co_return co_await actors::check_once(spec, service_port, {});
}

int count_fds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n;
}

// True when some child of ours (reaped or not) still exists.
bool have_children() {
  siginfo_t info{};
  return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

// Live (non-zombie) processes in process group `pgid`.
int live_in_group(pid_t pgid) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::ifstream in(e.path() / "stat");
    std::string stat;
    if (!std::getline(in, stat)) continue;
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0, pgrp = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %d %d", &state, &ppid, &pgrp) != 3) continue;
    if (pgrp == pgid && state != 'Z' && state != 'X') ++n;
  }
  return n;
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/dockless-health-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  pid_t read_pid(const std::string& name) const {
    std::ifstream in(path + "/" + name);
    pid_t pid = 0;
    in >> pid;
    return pid;
  }
};

// Drives run_health_checks as its own actor and records what it reports.
struct Runner {
  std::vector<HealthReport> reports;
  std::vector<Clock::time_point> when;
  std::stop_source stop;
  bool done = false;
};

Task<void> run_checks(std::shared_ptr<Runner> r, HealthCheck spec, std::uint16_t port) {
  Runner* raw = r.get();
  co_await actors::run_health_checks(spec, port, r->stop.get_token(), [raw](const HealthReport& h) {
    raw->reports.push_back(h);
    raw->when.push_back(Clock::now());
  });
  r->done = true;
}

std::shared_ptr<Runner> start_checks(HealthCheck spec, std::uint16_t port = 0) {
  auto r = std::make_shared<Runner>();
  spawn(run_checks(r, std::move(spec), port), "test-health");
  return r;
}

// Stops the runner; returns how long it took to end.
Task<Clock::duration> stop_checks(std::shared_ptr<Runner> r) {
  const auto t0 = Clock::now();
  r->stop.request_stop();
  const bool ended = co_await wait_until([&] { return r->done; }, 3s);
  EXPECT_TRUE(ended) << "run_health_checks did not end on stop";
  co_return Clock::now() - t0;
}

}  // namespace health_test
