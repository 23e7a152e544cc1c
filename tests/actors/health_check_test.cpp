// HealthActor single checks: HTTP, TCP, exec, and their failure reasons.
#include "health_support.hpp"

using namespace health_test;

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
    out.reserve(7);
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
