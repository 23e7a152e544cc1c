// TriggerDispatcher without HTTP: deliveries as the front end hands them over (already
// verified), a real Supervisor with no services, jobs as real children, the real queue file.
#include <unistd.h>

#include <filesystem>
#include <fstream>

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
      const std::string error = d.open_queue();
      EXPECT_EQ(error, "");
      d.start_dispatching();
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

  // The queued event's state once it is no longer pending (bounded: 5 s).
  static Task<std::string> settled(const TriggerDispatcher& d, const std::string& event_id) {
    for (int i = 0; i < 500; ++i) {
      const actors::TriggerEvent* e = d.queue()->find(event_id);
      if (!e) co_return "(gone)";
      if (e->state != actors::QueuedState::pending) co_return std::string(actors::queued_state_name(e->state));
      co_await runtime::sleep_for(std::chrono::milliseconds(10));
    }
    co_return "pending";
  }

  static std::string job_output(TriggerDispatcher& d, const std::string& id) {
    auto logs = d.job_logs(id);
    if (!logs) return "(no logs: " + logs.message() + ")";
    auto chunk = (*logs)->read(actors::Stream::out, 0, 1 << 16);
    return chunk ? chunk->data : "(read failed)";
  }

  std::string dir_;
};

TEST_F(TriggerDispatcherTest, ARedeliveredIdIsQueuedOnceEvenAfterARestart) {
  const std::vector<config::Trigger> set{run_trigger("deploy", {"sh", "-c", "echo $DOCKLESS_DELIVERY"})};
  with_dispatcher([&](TriggerDispatcher& d) -> Task<void> {
    EXPECT_TRUE(d.install(set).empty());
    actors::DeliveryAnswer first = co_await d.dispatch(delivery(d, "deploy", "d1"));
    EXPECT_EQ(first.outcome, DeliveryOutcome::accepted);
    EXPECT_EQ(first.status, 202);
    EXPECT_EQ(first.queued.rfind("ev-", 0), 0u) << first.queued;
    EXPECT_EQ(co_await settled(d, first.queued), "done");
    actors::DeliveryAnswer again = co_await d.dispatch(delivery(d, "deploy", "d1"));
    EXPECT_EQ(again.outcome, DeliveryOutcome::duplicate);
    EXPECT_EQ(again.status, 200);
    EXPECT_EQ(job_output(d, "deploy"), "d1\n");
    EXPECT_EQ(d.activity("deploy")->last_delivery["outcome"], "duplicate");
    EXPECT_EQ(d.activity("deploy")->last_action["outcome"], "succeeded");
  });
  with_dispatcher([&](TriggerDispatcher& d) -> Task<void> {
    EXPECT_TRUE(d.install(set).empty());
    actors::DeliveryAnswer again = co_await d.dispatch(delivery(d, "deploy", "d1"));
    EXPECT_EQ(again.outcome, DeliveryOutcome::duplicate);
    // Without an id nothing can be recognised: every one is queued.
    actors::DeliveryAnswer a = co_await d.dispatch(delivery(d, "deploy", ""));
    actors::DeliveryAnswer b = co_await d.dispatch(delivery(d, "deploy", ""));
    EXPECT_EQ(co_await settled(d, a.queued), "done");
    EXPECT_EQ(co_await settled(d, b.queued), "done");
    EXPECT_NE(a.queued, b.queued);
  });
}

TEST_F(TriggerDispatcherTest, DeliveriesWhileAJobRunsAreQueuedAndRunInOrder) {
  const std::vector<config::Trigger> set{run_trigger("slow", {"sh", "-c", "sleep 0.2; echo $DOCKLESS_DELIVERY"})};
  with_dispatcher([&](TriggerDispatcher& d) -> Task<void> {
    EXPECT_TRUE(d.install(set).empty());
    actors::DeliveryAnswer a = co_await d.dispatch(delivery(d, "slow", "d1"));
    actors::DeliveryAnswer b = co_await d.dispatch(delivery(d, "slow", "d2"));
    actors::DeliveryAnswer c = co_await d.dispatch(delivery(d, "slow", "d3"));
    EXPECT_EQ(b.outcome, DeliveryOutcome::accepted);
    EXPECT_EQ(d.queue()->pending_count(), 3u);
    EXPECT_EQ(co_await settled(d, c.queued), "done");
    EXPECT_EQ(co_await settled(d, a.queued), "done");
    EXPECT_EQ(job_output(d, "slow"), "d1\nd2\nd3\n");
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
    actors::DeliveryAnswer first = co_await d.dispatch(signed_as(d, "d1", "aa11"));
    EXPECT_EQ(first.outcome, DeliveryOutcome::accepted);
    EXPECT_EQ(co_await settled(d, first.queued), "done");
    actors::DeliveryAnswer again = co_await d.dispatch(signed_as(d, "d2", "aa11"));
    EXPECT_EQ(again.outcome, DeliveryOutcome::duplicate);
    EXPECT_EQ(again.status, 200);
    actors::DeliveryAnswer unnamed = co_await d.dispatch(signed_as(d, "", "aa11"));
    EXPECT_EQ(unnamed.outcome, DeliveryOutcome::duplicate);
    EXPECT_EQ(job_output(d, "deploy"), "d1\n");
  });
  with_dispatcher([&](TriggerDispatcher& d) -> Task<void> {
    EXPECT_TRUE(d.install(set).empty());
    actors::DeliveryAnswer same = co_await d.dispatch(signed_as(d, "d3", "aa11"));
    EXPECT_EQ(same.outcome, DeliveryOutcome::duplicate);
    actors::DeliveryAnswer other = co_await d.dispatch(signed_as(d, "d3", "bb22"));
    EXPECT_EQ(other.outcome, DeliveryOutcome::accepted);
    EXPECT_EQ(co_await settled(d, other.queued), "done");
  });
}

TEST_F(TriggerDispatcherTest, AFailingHandlerIsRetriedThenDeadLetteredAndReplayed) {
  config::Trigger t = run_trigger("flaky", {"sh", "-c", "echo try $DOCKLESS_ATTEMPT; exit 3"});
  t.max_attempts = 3;
  t.backoff = std::chrono::milliseconds(20);
  const std::vector<config::Trigger> set{t};
  with_dispatcher([&](TriggerDispatcher& d) -> Task<void> {
    EXPECT_TRUE(d.install(set).empty());
    actors::DeliveryAnswer a = co_await d.dispatch(delivery(d, "flaky", "d1"));
    EXPECT_EQ(co_await settled(d, a.queued), "dead");
    const actors::TriggerEvent* e = d.queue()->find(a.queued);
    EXPECT_EQ(e->attempts, 3);
    EXPECT_EQ(e->last_error, "the job exited with code 3");
    EXPECT_EQ(job_output(d, "flaky"), "try 1\ntry 2\ntry 3\n");
    TriggerDispatcher::ReplayAnswer r = co_await d.replay(a.queued);
    EXPECT_EQ(r.status, 202) << r.message;
    EXPECT_EQ(co_await settled(d, a.queued), "dead");
    EXPECT_EQ(job_output(d, "flaky"), "try 1\ntry 2\ntry 3\ntry 1\ntry 2\ntry 3\n");
    TriggerDispatcher::ReplayAnswer missing = co_await d.replay("ev-0000000000000000");
    EXPECT_EQ(missing.status, 404);
  });
  // Dead letters stay dead across a restart (not dispatched again by themselves).
  with_dispatcher([&](TriggerDispatcher& d) -> Task<void> {
    EXPECT_TRUE(d.install(set).empty());
    EXPECT_EQ(d.queue()->in_state(actors::QueuedState::dead).size(), 1u);
    co_await runtime::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(job_output(d, "flaky"), "try 1\ntry 2\ntry 3\ntry 1\ntry 2\ntry 3\n");
  });
}

TEST_F(TriggerDispatcherTest, AnEventInterruptedMidDispatchIsDeadLetteredNotRunAgain) {
  const std::vector<config::Trigger> set{run_trigger("deploy", {"sh", "-c", "echo ran"})};
  const std::string id = "ev-00000000000000aa";
  with_dispatcher([&](TriggerDispatcher& d) -> Task<void> {
    EXPECT_TRUE(d.install(set).empty());
    co_return;
  });
  // What a kill -9 during a handler leaves: "add" and "start", no outcome.
  {
    std::ofstream out(dir_ + "/triggers/queue.log", std::ios::app);
    actors::TriggerEvent e;
    e.id = id;
    e.trigger = "deploy";
    out << actors::TriggerQueue::add_record(e) << "\n" << actors::TriggerQueue::start_record(id, 1) << "\n";
  }
  with_dispatcher([&](TriggerDispatcher& d) -> Task<void> {
    EXPECT_TRUE(d.install(set).empty());
    const actors::TriggerEvent* e = d.queue()->find(id);
    EXPECT_NE(e, nullptr);
    if (!e) co_return;
    EXPECT_EQ(e->state, actors::QueuedState::dead);
    EXPECT_NE(e->last_error.find("interrupted"), std::string::npos) << e->last_error;
    co_await runtime::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(job_output(d, "deploy"), "");
  });
}

TEST_F(TriggerDispatcherTest, AJobStoppedByShutdownStaysPendingAndRunsAtTheNextStart) {
  const std::vector<config::Trigger> set{run_trigger("long", {"sh", "-c", "echo start $DOCKLESS_ATTEMPT; sleep 30"})};
  std::string id;
  with_dispatcher([&](TriggerDispatcher& d) -> Task<void> {
    EXPECT_TRUE(d.install(set).empty());
    actors::DeliveryAnswer a = co_await d.dispatch(delivery(d, "long", "d1"));
    id = a.queued;
    for (int i = 0; i < 200 && job_output(d, "long").empty(); ++i)
      co_await runtime::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(job_output(d, "long"), "start 1\n");
  });
  with_dispatcher([&](TriggerDispatcher& d) -> Task<void> {
    const actors::TriggerEvent* e = d.queue()->find(id);
    EXPECT_NE(e, nullptr);
    if (!e) co_return;
    EXPECT_EQ(e->state, actors::QueuedState::pending);
    EXPECT_EQ(e->attempts, 0);
    EXPECT_TRUE(d.install(set).empty());
    for (int i = 0; i < 200 && job_output(d, "long").size() < 16; ++i)
      co_await runtime::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(job_output(d, "long"), "start 1\nstart 1\n");
  });
}

TEST_F(TriggerDispatcherTest, AnEventRunsTheDefinitionCurrentAtDispatchAndRefusalsAreRecorded) {
  const std::vector<config::Trigger> v1{run_trigger("t", {"echo", "old"})};
  const std::vector<config::Trigger> v2{run_trigger("t", {"echo", "new"})};
  const actors::DeliveryAnswer refusal{DeliveryOutcome::rejected, 401, "bad signature"};
  with_dispatcher([&](TriggerDispatcher& d) -> Task<void> {
    EXPECT_TRUE(d.install(v1).empty());
    actors::TriggerDelivery pinned = delivery(d, "t", "d1");
    EXPECT_TRUE(d.install(v2).empty());
    EXPECT_EQ(d.snapshot()->version, 2u);
    EXPECT_EQ(d.snapshot()->binding_versions, std::vector<std::uint64_t>{2});
    actors::DeliveryAnswer a = co_await d.dispatch(pinned);
    EXPECT_EQ(co_await settled(d, a.queued), "done");
    EXPECT_EQ(job_output(d, "t"), "new\n");

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
