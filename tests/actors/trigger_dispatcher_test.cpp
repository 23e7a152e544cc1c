// TriggerDispatcher without HTTP: deliveries as the front end hands them over (already
// verified), a real Supervisor with no services, jobs as real children.
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "actors/event_log.hpp"
#include "actors/supervisor.hpp"
#include "actors/trigger_dispatcher.hpp"
#include "run_loop.hpp"
#include "runtime/ops_wait.hpp"

using actors::DeliveryOutcome;
using actors::TriggerDispatcher;
using runtime::Task;

namespace {

config::Trigger run_trigger(const std::string& id, std::vector<std::string> argv) {
  config::Trigger t;
  t.id = id;
  t.provider = "hmac";
  t.path = "/triggers/" + id;
  t.action = config::Trigger::Action::run;
  t.run = std::move(argv);
  t.timeout = std::chrono::seconds(10);
  return t;
}

class TriggerDispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dockless-triggers-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs `body` with a fresh event log, supervisor and dispatcher over dir_, then shuts the
  // dispatcher down (jobs killed, delivery ids written).
  template <class F>
  void with_dispatcher(F body) {
    auto events = actors::EventLog::open(dir_ + "/events.log");
    ASSERT_TRUE(events.ok()) << events.message();
    run_loop([&]() -> Task<void> {
      actors::Supervisor::Options so;
      so.data_dir = dir_;
      so.capture_logs = false;
      actors::Supervisor sup(so, **events);
      TriggerDispatcher d({dir_, {{"PATH", "/usr/bin:/bin"}}}, sup, **events);
      co_await body(d);
      co_await d.shutdown();
    });
  }

  static actors::TriggerDelivery delivery(const TriggerDispatcher& d, const std::string& trigger, std::string id) {
    actors::TriggerDelivery del;
    del.set = d.snapshot();
    del.trigger = del.set->find_id(trigger);
    del.id = std::move(id);
    del.event = "push";
    return del;
  }

  static Task<bool> job_done(const TriggerDispatcher& d, const std::string& id) {
    for (int i = 0; i < 500; ++i) {
      if (!d.activity(id)->running) co_return true;
      co_await runtime::sleep_for(std::chrono::milliseconds(10));
    }
    co_return false;
  }

  static std::string job_output(TriggerDispatcher& d, const std::string& id) {
    auto logs = d.job_logs(id);
    if (!logs) return "(no logs: " + logs.message() + ")";
    auto chunk = (*logs)->read(actors::Stream::out, 0, 1 << 16);
    return chunk ? chunk->data : "(read failed)";
  }

  std::string dir_;
};

TEST_F(TriggerDispatcherTest, ARedeliveredIdRunsOnceEvenAfterARestart) {
  const std::vector<config::Trigger> set{run_trigger("deploy", {"sh", "-c", "echo $DOCKLESS_DELIVERY"})};
  with_dispatcher([&](TriggerDispatcher& d) -> Task<void> {
    EXPECT_TRUE(d.install(set).empty());
    EXPECT_EQ(d.dispatch(delivery(d, "deploy", "d1")).outcome, DeliveryOutcome::accepted);
    EXPECT_TRUE(co_await job_done(d, "deploy"));
    actors::DeliveryAnswer again = d.dispatch(delivery(d, "deploy", "d1"));
    EXPECT_EQ(again.outcome, DeliveryOutcome::duplicate);
    EXPECT_EQ(again.status, 200);
    EXPECT_EQ(job_output(d, "deploy"), "d1\n");
    EXPECT_EQ(d.activity("deploy")->last_delivery["outcome"], "duplicate");
    EXPECT_EQ(d.activity("deploy")->last_action["outcome"], "succeeded");
  });
  with_dispatcher([&](TriggerDispatcher& d) -> Task<void> {
    EXPECT_TRUE(d.install(set).empty());
    EXPECT_EQ(d.dispatch(delivery(d, "deploy", "d1")).outcome, DeliveryOutcome::duplicate);
    // Without an id nothing can be recognised: every one runs.
    EXPECT_EQ(d.dispatch(delivery(d, "deploy", "")).outcome, DeliveryOutcome::accepted);
    EXPECT_TRUE(co_await job_done(d, "deploy"));
    EXPECT_EQ(d.dispatch(delivery(d, "deploy", "")).outcome, DeliveryOutcome::accepted);
    EXPECT_TRUE(co_await job_done(d, "deploy"));
  });
}

TEST_F(TriggerDispatcherTest, ADeliveryRefusedAsBusyIsNotRememberedSoItsRetryRuns) {
  // TRICKY: GCC 12 cannot hold a braced list of string literals in a coroutine frame.
  const std::vector<config::Trigger> set{run_trigger("slow", {"sleep", "0.3"})};
  with_dispatcher([&](TriggerDispatcher& d) -> Task<void> {
    EXPECT_TRUE(d.install(set).empty());
    EXPECT_EQ(d.dispatch(delivery(d, "slow", "d1")).outcome, DeliveryOutcome::accepted);
    EXPECT_TRUE(d.activity("slow")->running);
    actors::DeliveryAnswer busy = d.dispatch(delivery(d, "slow", "d2"));
    EXPECT_EQ(busy.outcome, DeliveryOutcome::busy);
    EXPECT_EQ(busy.status, 409);
    EXPECT_TRUE(co_await job_done(d, "slow"));
    EXPECT_EQ(d.dispatch(delivery(d, "slow", "d2")).outcome, DeliveryOutcome::accepted);
  });
}

TEST_F(TriggerDispatcherTest, TheSameSignedContentUnderANewIdRunsOnceEvenAfterARestart) {
  const std::vector<config::Trigger> set{run_trigger("deploy", {"sh", "-c", "echo $DOCKLESS_DELIVERY"})};
  auto signed_as = [](const TriggerDispatcher& d, std::string id, std::string sig) {
    actors::TriggerDelivery del = delivery(d, "deploy", std::move(id));
    del.signature = std::move(sig);
    return del;
  };
  with_dispatcher([&](TriggerDispatcher& d) -> Task<void> {
    EXPECT_TRUE(d.install(set).empty());
    EXPECT_EQ(d.dispatch(signed_as(d, "d1", "aa11")).outcome, DeliveryOutcome::accepted);
    EXPECT_TRUE(co_await job_done(d, "deploy"));
    actors::DeliveryAnswer again = d.dispatch(signed_as(d, "d2", "aa11"));
    EXPECT_EQ(again.outcome, DeliveryOutcome::duplicate);
    EXPECT_EQ(again.status, 200);
    EXPECT_EQ(d.dispatch(signed_as(d, "", "aa11")).outcome, DeliveryOutcome::duplicate);
    EXPECT_EQ(job_output(d, "deploy"), "d1\n");
  });
  with_dispatcher([&](TriggerDispatcher& d) -> Task<void> {
    EXPECT_TRUE(d.install(set).empty());
    EXPECT_EQ(d.dispatch(signed_as(d, "d3", "aa11")).outcome, DeliveryOutcome::duplicate);
    EXPECT_EQ(d.dispatch(signed_as(d, "d3", "bb22")).outcome, DeliveryOutcome::accepted);
    EXPECT_TRUE(co_await job_done(d, "deploy"));
  });
}

TEST_F(TriggerDispatcherTest, AFailedActionIsNotRemembered) {
  config::Trigger t = run_trigger("bounce", {});
  t.action = config::Trigger::Action::restart;
  t.service = "nope";
  const std::vector<config::Trigger> set{t};
  with_dispatcher([&](TriggerDispatcher& d) -> Task<void> {
    EXPECT_TRUE(d.install(set).empty());
    actors::DeliveryAnswer a = d.dispatch(delivery(d, "bounce", "d1"));
    EXPECT_EQ(a.outcome, DeliveryOutcome::failed);
    EXPECT_EQ(a.status, 500);
    EXPECT_EQ(a.reason.rfind("restart nope: ", 0), 0u) << a.reason;
    EXPECT_EQ(d.dispatch(delivery(d, "bounce", "d1")).outcome, DeliveryOutcome::failed);
    EXPECT_EQ(d.activity("bounce")->last_action, nullptr);
    co_return;
  });
}

TEST_F(TriggerDispatcherTest, AJobRunsTheVersionItWasDeliveredUnderAndRefusalsAreRecorded) {
  const std::vector<config::Trigger> v1{run_trigger("t", {"echo", "old"})};
  const std::vector<config::Trigger> v2{run_trigger("t", {"echo", "new"})};
  const actors::DeliveryAnswer refusal{DeliveryOutcome::rejected, 401, "bad signature"};
  with_dispatcher([&](TriggerDispatcher& d) -> Task<void> {
    EXPECT_TRUE(d.install(v1).empty());
    actors::TriggerDelivery pinned = delivery(d, "t", "d1");
    EXPECT_TRUE(d.install(v2).empty());
    EXPECT_EQ(d.snapshot()->version, 2u);
    EXPECT_EQ(d.dispatch(pinned).outcome, DeliveryOutcome::accepted);
    EXPECT_TRUE(co_await job_done(d, "t"));
    EXPECT_EQ(job_output(d, "t"), "old\n");

    d.refused(*d.snapshot()->find_id("t"), "claimed", "", refusal);
    const nlohmann::json& last = d.activity("t")->last_delivery;
    EXPECT_EQ(last["outcome"], "rejected");
    EXPECT_EQ(last["status"], 401);
    EXPECT_EQ(last["delivery"], "claimed");
    EXPECT_EQ(last["reason"], "bad signature");
    EXPECT_EQ(d.activity("missing"), nullptr);
  });
}

}  // namespace
