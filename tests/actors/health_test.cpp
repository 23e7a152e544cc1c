// HealthActor: exec, HTTP and TCP checks against real processes and real loopback
// servers (run as actors on the test's own reactor), and the interval / retries /
// start-period state machine of run_health_checks.
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

namespace {

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
  ::bind(holder.get(), reinterpret_cast<sockaddr*>(&a), len);
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

}  // namespace

TEST(HealthFormat, Durations) {
  EXPECT_EQ(actors::format_duration(2000ms), "2s");
  EXPECT_EQ(actors::format_duration(150ms), "150ms");
  EXPECT_EQ(actors::format_duration(1500ms), "1.5s");
  EXPECT_EQ(actors::format_duration(0ms), "0ms");
}

// ---- HTTP ----

TEST(HealthHttp, Status200IsHealthyAndRequestIsWellFormed) {
  auto [report, request] = run_loop([]() -> Task<std::pair<HealthReport, std::string>> {
    auto s = start_server();
    HealthReport r = co_await once(http_check(s->port));
    std::string req = s->last_request;
    req += "|port=" + std::to_string(s->port);
    co_await stop_server(s);
    co_return std::pair{r, req};
  });
  EXPECT_TRUE(report.healthy) << report.reason;
  EXPECT_EQ(report.consecutive_failures, 0);
  const std::string port = request.substr(request.find("|port=") + 6);
  EXPECT_EQ(report.reason, "HTTP 200 from 127.0.0.1:" + port + "/healthz");
  EXPECT_EQ(request.rfind("GET /healthz HTTP/1.1\r\n", 0), 0u) << request;
  EXPECT_NE(request.find("\r\nHost: 127.0.0.1:" + port + "\r\n"), std::string::npos) << request;
  EXPECT_NE(request.find("\r\nUser-Agent: dockless-health\r\n"), std::string::npos) << request;
  EXPECT_NE(request.find("\r\nConnection: close\r\n\r\n"), std::string::npos) << request;
}

TEST(HealthHttp, OnlyTwoHundredsAreHealthy) {
  auto reports = run_loop([]() -> Task<std::vector<HealthReport>> {
    auto s = start_server();
    s->script = {204, 299, 503, 301, 404, 199};
    std::vector<HealthReport> out;
    for (int i = 0; i < 6; ++i) out.push_back(co_await once(http_check(s->port)));
    out.push_back(HealthReport{false, std::to_string(s->port), 0});
    co_await stop_server(s);
    co_return out;
  });
  ASSERT_EQ(reports.size(), 7u);
  const std::string port = reports[6].reason;
  EXPECT_TRUE(reports[0].healthy) << reports[0].reason;
  EXPECT_TRUE(reports[1].healthy) << reports[1].reason;
  EXPECT_FALSE(reports[2].healthy);
  EXPECT_EQ(reports[2].reason, "HTTP 503 from 127.0.0.1:" + port + "/healthz");
  EXPECT_EQ(reports[2].consecutive_failures, 1);
  EXPECT_FALSE(reports[3].healthy);
  EXPECT_FALSE(reports[4].healthy);
  EXPECT_FALSE(reports[5].healthy);
  EXPECT_EQ(reports[5].reason, "HTTP 199 from 127.0.0.1:" + port + "/healthz");
}

TEST(HealthHttp, GarbageResponseIsAClearFailure) {
  HealthReport r = run_loop([]() -> Task<HealthReport> {
    auto s = start_server(Server::Mode::garbage);
    HealthReport out = co_await once(http_check(s->port));
    co_await stop_server(s);
    co_return out;
  });
  EXPECT_FALSE(r.healthy);
  EXPECT_EQ(r.reason.rfind("bad status line from 127.0.0.1:", 0), 0u) << r.reason;
  EXPECT_NE(r.reason.find("/healthz: \"garbage?\""), std::string::npos) << r.reason;
}

TEST(HealthHttp, HangUpWithoutAResponseIsAFailure) {
  HealthReport r = run_loop([]() -> Task<HealthReport> {
    auto s = start_server(Server::Mode::hang_up);
    HealthReport out = co_await once(http_check(s->port));
    co_await stop_server(s);
    co_return out;
  });
  EXPECT_FALSE(r.healthy);
  EXPECT_EQ(r.reason.rfind("connection closed by 127.0.0.1:", 0), 0u) << r.reason;
  EXPECT_NE(r.reason.find("/healthz without a response"), std::string::npos) << r.reason;
}

TEST(HealthHttp, SilentServerTimesOutWithinTheTimeout) {
  auto [r, elapsed, requests] = run_loop([]() -> Task<std::tuple<HealthReport, Clock::duration, int>> {
    auto s = start_server(Server::Mode::silent);
    const auto t0 = Clock::now();
    HealthReport out = co_await once(http_check(s->port, 200ms));
    const auto took = Clock::now() - t0;
    // The checker closed its socket: the server's wait for more bytes ends.
    const bool closed = co_await wait_until([&] { return s->requests == 1; }, 1s);
    EXPECT_TRUE(closed);
    const int n = s->requests;
    co_await stop_server(s);
    co_return std::tuple{out, took, n};
  });
  EXPECT_FALSE(r.healthy);
  EXPECT_EQ(r.reason.rfind("timed out after 200ms (read from 127.0.0.1:", 0), 0u) << r.reason;
  EXPECT_GE(elapsed, 190ms);
  EXPECT_LT(elapsed, 1500ms);
  EXPECT_EQ(requests, 1);
}

TEST(HealthHttp, PortZeroMeansTheServicePort) {
  HealthReport r = run_loop([]() -> Task<HealthReport> {
    auto s = start_server();
    HealthReport out = co_await once(http_check(0), s->port);
    co_await stop_server(s);
    co_return out;
  });
  EXPECT_TRUE(r.healthy) << r.reason;
  HealthReport none = run_loop([]() -> Task<HealthReport> { co_return co_await once(http_check(0), 0); });
  EXPECT_FALSE(none.healthy);
  EXPECT_NE(none.reason.find("no port"), std::string::npos) << none.reason;
}

TEST(HealthHttp, LocalhostAndIpv6Loopback) {
  auto [local, local_req] = run_loop([]() -> Task<std::pair<HealthReport, std::string>> {
    auto s = start_server();
    HealthCheck spec = http_check(s->port);
    spec.host = "localhost";
    HealthReport out = co_await once(spec);
    co_await stop_server(s);
    co_return std::pair{out, s->last_request};
  });
  EXPECT_TRUE(local.healthy) << local.reason;
  EXPECT_EQ(local.reason.rfind("HTTP 200 from 127.0.0.1:", 0), 0u) << local.reason;
  EXPECT_NE(local_req.find("\r\nHost: localhost:"), std::string::npos) << local_req;

  std::uint16_t probe_port = 0;
  if (!listen_on(AF_INET6, &probe_port)) GTEST_SKIP() << "no IPv6 loopback here";
  auto [v6, v6_req] = run_loop([]() -> Task<std::pair<HealthReport, std::string>> {
    auto s = start_server(Server::Mode::reply, AF_INET6);
    HealthCheck spec = http_check(s->port);
    spec.host = "::1";
    HealthReport out = co_await once(spec);
    co_await stop_server(s);
    co_return std::pair{out, s->last_request};
  });
  EXPECT_TRUE(v6.healthy) << v6.reason;
  EXPECT_NE(v6_req.find("\r\nHost: [::1]:"), std::string::npos) << v6_req;
  EXPECT_EQ(v6.reason.rfind("HTTP 200 from [::1]:", 0), 0u) << v6.reason;
}

TEST(HealthHttp, HostNamesAreRejectedWithoutALookup) {
  HealthReport r = run_loop([]() -> Task<HealthReport> {
    HealthCheck spec = http_check(80);
    spec.host = "example.com";
    co_return co_await once(spec);
  });
  EXPECT_FALSE(r.healthy);
  EXPECT_EQ(r.reason, "host example.com: only numeric IPv4/IPv6 addresses and localhost are supported");
}

TEST(HealthHttp, ConnectionRefused) {
  Fd holder;
  const std::uint16_t port = closed_port(holder);
  HealthReport r = run_loop([port]() -> Task<HealthReport> { co_return co_await once(http_check(port)); });
  EXPECT_FALSE(r.healthy);
  EXPECT_EQ(r.reason, "connect 127.0.0.1:" + std::to_string(port) + ": Connection refused");
}

TEST(HealthHttp, StopCutsAHangingCheckShort) {
  auto [r, elapsed] = run_loop([]() -> Task<std::pair<HealthReport, Clock::duration>> {
    auto s = start_server(Server::Mode::silent);
    std::stop_source stop;
    auto stopper = [](std::stop_source src) -> Task<void> {
      co_await sleep_ms(50);
      src.request_stop();
    };
    spawn(stopper(stop), "stopper");
    const auto t0 = Clock::now();
    HealthCheck spec = http_check(s->port, 10s);
    HealthReport out = co_await actors::check_once(spec, 0, stop.get_token());
    const auto took = Clock::now() - t0;
    co_await stop_server(s);
    co_return std::pair{out, took};
  });
  EXPECT_FALSE(r.healthy);
  EXPECT_EQ(r.reason, "stopped");
  EXPECT_LT(elapsed, 2s);
}

// ---- TCP ----

TEST(HealthTcp, ListeningThenClosedPort) {
  std::uint16_t port = 0;
  Fd listener = listen_on(AF_INET, &port);
  ASSERT_TRUE(listener);
  HealthReport up = run_loop([port]() -> Task<HealthReport> { co_return co_await once(tcp_check(port)); });
  EXPECT_TRUE(up.healthy) << up.reason;
  EXPECT_EQ(up.reason, "connected to 127.0.0.1:" + std::to_string(port));

  listener.reset();
  Fd holder;
  const std::uint16_t closed = closed_port(holder);
  HealthReport down = run_loop([closed]() -> Task<HealthReport> { co_return co_await once(tcp_check(closed)); });
  EXPECT_FALSE(down.healthy);
  EXPECT_EQ(down.reason, "connect 127.0.0.1:" + std::to_string(closed) + ": Connection refused");
}

TEST(HealthTcp, PortZeroMeansTheServicePort) {
  std::uint16_t port = 0;
  Fd listener = listen_on(AF_INET, &port);
  ASSERT_TRUE(listener);
  HealthReport r = run_loop([port]() -> Task<HealthReport> { co_return co_await once(tcp_check(0), port); });
  EXPECT_TRUE(r.healthy) << r.reason;
}

// ---- exec ----

TEST(HealthExec, ExitCodeDecides) {
  HealthReport t = run_loop([]() -> Task<HealthReport> {
    HealthCheck spec = exec_check({"true"});
    co_return co_await once(spec);
  });
  EXPECT_TRUE(t.healthy) << t.reason;
  EXPECT_EQ(t.reason, "exec exited with 0");
  HealthReport f = run_loop([]() -> Task<HealthReport> {
    HealthCheck spec = exec_check({"false"});
    co_return co_await once(spec);
  });
  EXPECT_FALSE(f.healthy);
  EXPECT_EQ(f.reason, "exec exited with 1");
  HealthReport k = run_loop([]() -> Task<HealthReport> {
    HealthCheck spec = exec_check({"sh", "-c", "kill -9 $$"});
    co_return co_await once(spec);
  });
  EXPECT_FALSE(k.healthy);
  EXPECT_EQ(k.reason, "exec killed by SIGKILL");
  EXPECT_FALSE(have_children());
}

TEST(HealthExec, OutputOfBothStreamsIsInTheReason) {
  HealthReport r = run_loop([]() -> Task<HealthReport> {
    HealthCheck spec = exec_check({"sh", "-c", "echo out; echo err >&2; exit 3"});
    co_return co_await once(spec);
  });
  EXPECT_FALSE(r.healthy);
  EXPECT_EQ(r.reason, "exec exited with 3: out err");
}

// More than a pipe's capacity: the check must keep draining or the child blocks
// on write and the check times out instead of reporting the exit.
TEST(HealthExec, LargeOutputIsDrainedAndCappedInTheReason) {
  HealthReport r = run_loop([]() -> Task<HealthReport> {
    HealthCheck spec = exec_check({"sh", "-c", "head -c 300000 /dev/zero | tr '\\0' a; exit 1"}, 5s);
    co_return co_await once(spec);
  });
  EXPECT_FALSE(r.healthy);
  EXPECT_EQ(r.reason, "exec exited with 1: " + std::string(200, 'a'));
}

TEST(HealthExec, MissingProgramIsNamed) {
  HealthReport r = run_loop([]() -> Task<HealthReport> {
    HealthCheck spec = exec_check({"/nonexistent/dockless-check"});
    co_return co_await once(spec);
  });
  EXPECT_FALSE(r.healthy);
  EXPECT_EQ(r.reason, "exec /nonexistent/dockless-check: No such file or directory");
  EXPECT_FALSE(have_children());
}

TEST(HealthExec, SeesTheServicePortAsPORT) {
  HealthReport r = run_loop([]() -> Task<HealthReport> {
    HealthCheck spec = exec_check({"sh", "-c", "test \"$PORT\" = 4321"});
    co_return co_await once(spec, 4321);
  });
  EXPECT_TRUE(r.healthy) << r.reason;
}

TEST(HealthExec, TimeoutKillsTheGroupAndLeaksNothing) {
  TempDir tmp;
  const std::string script = "echo $$ > " + tmp.path + "/pid; sleep 10 & sleep 10";
  auto [r, elapsed, fds_before, fds_after] =
      run_loop([&]() -> Task<std::tuple<HealthReport, Clock::duration, int, int>> {
        const int before = count_fds();
        const auto t0 = Clock::now();
        HealthCheck spec = exec_check({"sh", "-c", script}, 300ms);
        HealthReport out = co_await once(spec);
        const auto took = Clock::now() - t0;
        co_return std::tuple{out, took, before, count_fds()};
      });
  EXPECT_FALSE(r.healthy);
  EXPECT_EQ(r.reason, "timed out after 300ms (exec sh)");
  EXPECT_GE(elapsed, 290ms);
  EXPECT_LT(elapsed, 2s);
  EXPECT_EQ(fds_before, fds_after);
  EXPECT_FALSE(have_children()) << "the check's process was not reaped";
  const pid_t pgid = tmp.read_pid("pid");
  ASSERT_GT(pgid, 0);
  // The background sleep was reparented away from us; SIGKILL is delivered at
  // once but its exit takes a moment.
  for (int i = 0; i < 200 && live_in_group(pgid) > 0; ++i) ::usleep(10'000);
  EXPECT_EQ(live_in_group(pgid), 0) << "a process of the timed-out check survived";
}

// `sh -c 'daemon &'` exits at once while its child keeps the output pipe open:
// the check must go by the exit, not by end of file.
TEST(HealthExec, BackgroundChildHoldingThePipeDoesNotStallTheCheck) {
  TempDir tmp;
  const std::string script = "echo $$ > " + tmp.path + "/pid; sleep 10 & echo ok";
  auto [r, elapsed] = run_loop([&]() -> Task<std::pair<HealthReport, Clock::duration>> {
    const auto t0 = Clock::now();
    HealthCheck spec = exec_check({"sh", "-c", script}, 5s);
        HealthReport out = co_await once(spec);
    co_return std::pair{out, Clock::now() - t0};
  });
  EXPECT_TRUE(r.healthy) << r.reason;
  EXPECT_EQ(r.reason, "exec exited with 0: ok");
  EXPECT_LT(elapsed, 2s);
  const pid_t pgid = tmp.read_pid("pid");
  ASSERT_GT(pgid, 0);
  for (int i = 0; i < 200 && live_in_group(pgid) > 0; ++i) ::usleep(10'000);
  EXPECT_EQ(live_in_group(pgid), 0) << "the check's leftover child survived";
}

TEST(HealthExec, StopKillsAndReapsARunningCheck) {
  auto [r, elapsed, children] = run_loop([]() -> Task<std::tuple<HealthReport, Clock::duration, bool>> {
    std::stop_source stop;
    auto stopper = [](std::stop_source src) -> Task<void> {
      co_await sleep_ms(50);
      src.request_stop();
    };
    spawn(stopper(stop), "stopper");
    const auto t0 = Clock::now();
    HealthCheck spec = exec_check({"sleep", "10"}, 10s);
    HealthReport out = co_await actors::check_once(spec, 0, stop.get_token());
    co_return std::tuple{out, Clock::now() - t0, have_children()};
  });
  EXPECT_FALSE(r.healthy);
  EXPECT_EQ(r.reason, "stopped");
  EXPECT_LT(elapsed, 2s);
  EXPECT_FALSE(children);
}

// ---- run_health_checks ----

TEST(HealthRun, FirstCheckRunsAtOnceAndStopIsPrompt) {
  auto [reports, first_after, stop_took] =
      run_loop([]() -> Task<std::tuple<std::vector<HealthReport>, Clock::duration, Clock::duration>> {
        auto s = start_server();
        HealthCheck spec = http_check(s->port);
        spec.interval = 10s;  // only the first check can happen in this test
        const auto t0 = Clock::now();
        auto r = start_checks(spec);
        const bool got = co_await wait_until([&] { return !r->reports.empty(); }, 2s);
        EXPECT_TRUE(got);
        const auto first = got ? r->when[0] - t0 : Clock::duration::max();
        // Stopping while it sleeps out the 10 s interval.
        const auto took = co_await stop_checks(r);
        co_await stop_server(s);
        co_return std::tuple{r->reports, first, took};
      });
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_TRUE(reports[0].healthy);
  EXPECT_LT(first_after, 500ms);
  EXPECT_LT(stop_took, 200ms);
}

TEST(HealthRun, FailuresBelowRetriesNeverReportUnhealthy) {
  auto [reports, requests] = run_loop([]() -> Task<std::pair<std::vector<HealthReport>, int>> {
    auto s = start_server();
    s->script = {503, 503};
    HealthCheck spec = http_check(s->port);
    spec.interval = 20ms;
    spec.retries = 3;
    auto r = start_checks(spec);
    const bool enough = co_await wait_until([&] { return s->requests >= 6; }, 3s);
    EXPECT_TRUE(enough);
    co_await stop_checks(r);
    const int n = s->requests;
    co_await stop_server(s);
    co_return std::pair{r->reports, n};
  });
  EXPECT_GE(requests, 6);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_TRUE(reports[0].healthy);
  EXPECT_EQ(reports[0].consecutive_failures, 0);
}

TEST(HealthRun, RetriesConsecutiveFailuresReportUnhealthyOnce) {
  auto reports = run_loop([]() -> Task<std::vector<HealthReport>> {
    auto s = start_server();
    s->status = 503;
    HealthCheck spec = http_check(s->port);
    spec.interval = 20ms;
    spec.retries = 3;
    auto r = start_checks(spec);
    const bool enough = co_await wait_until([&] { return s->requests >= 8; }, 3s);
    EXPECT_TRUE(enough);
    co_await stop_checks(r);
    co_await stop_server(s);
    co_return r->reports;
  });
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_FALSE(reports[0].healthy);
  EXPECT_EQ(reports[0].consecutive_failures, 3);
  EXPECT_NE(reports[0].reason.find("HTTP 503 from"), std::string::npos) << reports[0].reason;
}

TEST(HealthRun, FailuresInsideTheStartPeriodDoNotCount) {
  auto [reports, after, checks_before] =
      run_loop([]() -> Task<std::tuple<std::vector<HealthReport>, Clock::duration, int>> {
        auto s = start_server();
        s->status = 503;
        HealthCheck spec = http_check(s->port);
        spec.interval = 20ms;
        spec.retries = 1;
        spec.start_period = 300ms;
        const auto t0 = Clock::now();
        auto r = start_checks(spec);
        const bool got = co_await wait_until([&] { return !r->reports.empty(); }, 3s);
        EXPECT_TRUE(got);
        const int n = s->requests;
        co_await stop_checks(r);
        co_await stop_server(s);
        co_return std::tuple{r->reports, got ? r->when[0] - t0 : Clock::duration::zero(), n};
      });
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_FALSE(reports[0].healthy);
  EXPECT_EQ(reports[0].consecutive_failures, 1);
  EXPECT_GE(after, 300ms);
  EXPECT_LT(after, 1500ms);
  EXPECT_GE(checks_before, 4) << "checks kept running during the start period";
}

TEST(HealthRun, SuccessInsideTheStartPeriodIsHealthyAtOnce) {
  auto [reports, after] = run_loop([]() -> Task<std::pair<std::vector<HealthReport>, Clock::duration>> {
    auto s = start_server();
    s->script = {503};
    HealthCheck spec = http_check(s->port);
    spec.interval = 20ms;
    spec.start_period = 10s;
    const auto t0 = Clock::now();
    auto r = start_checks(spec);
    const bool got = co_await wait_until([&] { return !r->reports.empty(); }, 3s);
    EXPECT_TRUE(got);
    co_await stop_checks(r);
    co_await stop_server(s);
    co_return std::pair{r->reports, got ? r->when[0] - t0 : Clock::duration::max()};
  });
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_TRUE(reports[0].healthy);
  EXPECT_LT(after, 1s);
}

TEST(HealthRun, EachTransitionIsReportedOnce) {
  auto reports = run_loop([]() -> Task<std::vector<HealthReport>> {
    auto s = start_server();
    HealthCheck spec = http_check(s->port);
    spec.interval = 20ms;
    spec.retries = 2;
    auto r = start_checks(spec);
    bool ok = co_await wait_until([&] { return r->reports.size() == 1; }, 3s);
    EXPECT_TRUE(ok);
    int at = s->requests;
    ok = co_await wait_until([&] { return s->requests >= at + 3; }, 3s);  // stays healthy quietly
    EXPECT_TRUE(ok);
    s->status = 503;
    ok = co_await wait_until([&] { return r->reports.size() == 2; }, 3s);
    EXPECT_TRUE(ok);
    at = s->requests;
    ok = co_await wait_until([&] { return s->requests >= at + 3; }, 3s);  // stays unhealthy quietly
    EXPECT_TRUE(ok);
    s->status = 200;
    ok = co_await wait_until([&] { return r->reports.size() == 3; }, 3s);
    EXPECT_TRUE(ok);
    at = s->requests;
    ok = co_await wait_until([&] { return s->requests >= at + 3; }, 3s);
    EXPECT_TRUE(ok);
    co_await stop_checks(r);
    co_await stop_server(s);
    co_return r->reports;
  });
  ASSERT_EQ(reports.size(), 3u);
  EXPECT_TRUE(reports[0].healthy);
  EXPECT_FALSE(reports[1].healthy);
  EXPECT_EQ(reports[1].consecutive_failures, 2);
  EXPECT_TRUE(reports[2].healthy);
  EXPECT_EQ(reports[2].consecutive_failures, 0);
}

TEST(HealthRun, StopDuringAnInFlightCheckEndsPromptly) {
  auto [reports, took] = run_loop([]() -> Task<std::pair<std::vector<HealthReport>, Clock::duration>> {
    auto s = start_server(Server::Mode::silent);
    HealthCheck spec = http_check(s->port, 10s);
    spec.interval = 20ms;
    spec.retries = 1;  // one (cut-short) failure would be enough to report
    auto r = start_checks(spec);
    const bool hanging = co_await wait_until([&] { return s->requests == 1 && !s->last_request.empty(); }, 3s);
    EXPECT_TRUE(hanging);
    const auto t = co_await stop_checks(r);
    co_await stop_server(s);
    co_return std::pair{r->reports, t};
  });
  EXPECT_TRUE(reports.empty()) << "a cut-short check must not be reported";
  EXPECT_LT(took, 500ms);
}

TEST(HealthRun, ExecChecksLeaveNoChildrenOrFds) {
  auto [reports, fds_before, fds_after] = run_loop([]() -> Task<std::tuple<std::vector<HealthReport>, int, int>> {
    const int before = count_fds();
    HealthCheck spec = exec_check({"sh", "-c", "echo hi"});
    spec.interval = 10ms;
    auto r = start_checks(spec);
    co_await sleep_ms(300);
    co_await stop_checks(r);
    co_return std::tuple{r->reports, before, count_fds()};
  });
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].reason, "exec exited with 0: hi");
  EXPECT_EQ(fds_before, fds_after);
  EXPECT_FALSE(have_children());
}
