// run_health_checks: intervals, retries, start period, transitions, stop.
#include "health_support.hpp"

using namespace health_test;

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
    // The first report, then ~30 more checks; bounded, not a fixed sleep alone: on an
    // emulated CPU (the ARM test run) one exec of sh can take longer than 300 ms.
    const bool reported = co_await wait_until([&] { return !r->reports.empty(); }, 10s);
    EXPECT_TRUE(reported);
    co_await sleep_ms(300);
    co_await stop_checks(r);
    co_return std::tuple{r->reports, before, count_fds()};
  });
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].reason, "exec exited with 0: hi");
  EXPECT_EQ(fds_before, fds_after);
  EXPECT_FALSE(have_children());
}
