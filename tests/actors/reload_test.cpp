// actors::Reload: all or nothing. A real Supervisor with no services (apply() then only
// swaps the config), participants that record what happened to them, and the event log
// read back for reload_succeeded / reload_failed. One test boots idle services (issue #12).
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "actors/event_log.hpp"
#include "actors/reload.hpp"
#include "actors/supervisor.hpp"
#include "run_loop.hpp"

using actors::Reload;
using runtime::Task;

namespace {

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dockless-reload-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A new config. TRICKY: made before the co_await, never inside it: built with GCC 12, a
  // config::Config temporary in a co_await's full-expression was freed twice here.
  static config::ParseResult parsed() { return {config::Config{}, {}}; }

  // A participant that logs "<name>:prepare", "<name>:commit" into `log`, refusing with
  // `error` when it is not empty.
  static Reload::Participant recorder(const std::string& name, std::vector<std::string>& log,
                                      const std::string& error = "") {
    return {name, [name, &log, error](const config::Config&) {
              log.push_back(name + ":prepare");
              Reload::Prepared p;
              if (!error.empty()) {
                p.errors.push_back({name, 0, 0, error});
                return p;
              }
              p.commit = [name, &log] { log.push_back(name + ":commit"); };
              return p;
            }};
  }

  // Runs `body` with a fresh event log, a supervisor (not booted: it runs the default
  // config and no service) and a Reload over it; returns the kinds of the events recorded.
  template <class F>
  std::vector<std::string> with_reload(F body) {
    auto events = actors::EventLog::open(dir_ + "/events.log");
    EXPECT_TRUE(events.ok()) << events.message();
    if (!events.ok()) return {};
    run_loop([&]() -> Task<void> {
      std::stop_source stop;
      runtime::Scope writer;
      writer.spawn((*events)->run(stop.get_token()), "event-log");
      actors::Supervisor::Options so;
      so.data_dir = dir_;
      so.capture_logs = false;
      actors::Supervisor sup(so, **events);
      Reload reload(sup);
      co_await body(reload, sup);
      co_await sup.shutdown();
      co_await (*events)->flush();
      stop.request_stop();
      co_await writer.join();
    });
    std::vector<std::string> kinds;
    std::ifstream in(dir_ + "/events.log");
    for (std::string line; std::getline(in, line);) {
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object()) kinds.push_back(j.value("kind", ""));
    }
    return kinds;
  }

  std::string dir_;
};

TEST_F(ReloadTest, EveryParticipantPreparesThenAllCommitThenTheServices) {
  std::vector<std::string> log;
  Reload::Outcome out;
  auto kinds = with_reload([&](Reload& reload, actors::Supervisor&) -> Task<void> {
    reload.add(recorder("a", log));
    reload.add(recorder("b", log));
    config::ParseResult next = parsed();
    out = co_await reload.run(std::move(next));
  });
  EXPECT_TRUE(out.ok);
  EXPECT_EQ(log, (std::vector<std::string>{"a:prepare", "b:prepare", "a:commit", "b:commit"}));
  nlohmann::json answer = out.to_json();
  EXPECT_EQ(answer["plan"], out.plan.to_json());
  answer.erase("plan");
  answer.erase("generation");
  EXPECT_EQ(answer, nlohmann::json::parse(
                        R"({"ok":true,"dry_run":false,"added":[],"removed":[],"changed":[],"updated_in_place":[]})"));
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "reload_succeeded"), 1);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "reload_failed"), 0);
}

TEST_F(ReloadTest, ARefusalCommitsNothingAndAsksNoOneAfter) {
  std::vector<std::string> log;
  Reload::Outcome out;
  auto kinds = with_reload([&](Reload& reload, actors::Supervisor& sup) -> Task<void> {
    reload.add(recorder("a", log));
    reload.add(recorder("b", log, "bad certificate"));
    reload.add(recorder("c", log));
    config::ParseResult next = parsed();
    next.config->log_level = config::LogLevel::debug;  // would show if applied
    out = co_await reload.run(std::move(next));
    EXPECT_EQ(sup.config().log_level, config::LogLevel::info);
  });
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.refused_by, "b");
  EXPECT_EQ(log, (std::vector<std::string>{"a:prepare", "b:prepare"}));
  EXPECT_EQ(out.to_json(), nlohmann::json::parse(R"({"ok":false,"errors":["b: bad certificate"]})"));
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "reload_failed"), 1);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "reload_succeeded"), 0);
}

TEST_F(ReloadTest, AParseErrorAsksNoParticipant) {
  std::vector<std::string> log;
  Reload::Outcome out;
  auto kinds = with_reload([&](Reload& reload, actors::Supervisor&) -> Task<void> {
    reload.add(recorder("a", log));
    config::ParseResult bad;
    bad.errors.push_back({"config.toml", 3, 1, "unknown key \"x\""});
    out = co_await reload.run(std::move(bad));
  });
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.refused_by, Reload::kParse);
  EXPECT_TRUE(log.empty());
  EXPECT_EQ(out.errors.size(), 1u);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "reload_failed"), 1);
}

TEST_F(ReloadTest, RestartOnlySettingsArePinnedBeforeParticipantsSeeThem) {
  std::string seen;
  Reload::Outcome out;
  with_reload([&](Reload& reload, actors::Supervisor& sup) -> Task<void> {
    reload.add({"peek", [&seen](const config::Config& next) {
                  seen = next.data_dir;
                  return Reload::Prepared{};
                }});
    const std::string running = sup.config().data_dir;
    config::ParseResult next = parsed();
    next.config->data_dir = "/elsewhere";
    out = co_await reload.run(std::move(next));
    EXPECT_EQ(sup.config().data_dir, running);
    EXPECT_EQ(seen, running);
  });
  EXPECT_TRUE(out.ok);
  EXPECT_TRUE(out.restart_only_changed);
  EXPECT_FALSE(seen.empty());
}

TEST_F(ReloadTest, ParticipantsAddToTheAnswer) {
  Reload::Outcome out;
  with_reload([&](Reload& reload, actors::Supervisor&) -> Task<void> {
    reload.add({"tls", [](const config::Config&) {
                  Reload::Prepared p;
                  p.answer["tls"] = {{"fingerprint", "AB:CD"}};
                  return p;
                }});
    config::ParseResult next = parsed();
    out = co_await reload.run(std::move(next));
  });
  ASSERT_TRUE(out.ok);
  EXPECT_EQ(out.to_json()["tls"]["fingerprint"], "AB:CD");
  EXPECT_FALSE(out.restart_only_changed);
}

// Issue #12: a service's spec is held once, by its entry (shared with its actor), not a
// second time in the running config; spec() answers for booted, changed and added
// services alike, and config().services stays empty across a reload.
config::ServiceSpec idle_service(const std::string& name, const std::string& arg) {
  config::ServiceSpec s;
  s.name = name;
  s.command = {"/bin/true", arg};
  s.autostart = false;
  return s;
}

TEST_F(ReloadTest, TheSupervisorHoldsEachSpecOnceAcrossBootAndReload) {
  Reload::Outcome out;
  with_reload([&](Reload& reload, actors::Supervisor& sup) -> Task<void> {
    config::Config boot_config;
    boot_config.services = {idle_service("a", "1"), idle_service("b", "1")};
    co_await sup.boot(std::move(boot_config));
    EXPECT_TRUE(sup.config().services.empty());
    const config::ServiceSpec* a = sup.spec("a");
    EXPECT_TRUE(a && a->command.back() == "1");
    EXPECT_EQ(sup.list().size(), 2u);

    config::ParseResult next = parsed();
    next.config->services = {idle_service("a", "2"), idle_service("b", "1"), idle_service("c", "1")};
    out = co_await reload.run(std::move(next));
    EXPECT_TRUE(sup.config().services.empty());
    a = sup.spec("a");
    EXPECT_TRUE(a && a->command.back() == "2");
    EXPECT_NE(sup.spec("c"), nullptr);
    EXPECT_EQ(sup.list().size(), 3u);
  });
  ASSERT_TRUE(out.ok);
  EXPECT_EQ(out.services.added, (std::vector<std::string>{"c"}));
  EXPECT_EQ(out.services.changed, (std::vector<std::string>{"a"}));
}

}  // namespace

// A dry run (issue #16): every participant that only checks is asked, none commits, nothing
// is applied or recorded, and the plan is the one the real reload then applies.
TEST_F(ReloadTest, ADryRunPlansAndChangesNothing) {
  std::vector<std::string> log;
  Reload::Outcome dry, real, refused;
  auto kinds = with_reload([&](Reload& reload, actors::Supervisor& sup) -> Task<void> {
    reload.add(recorder("a", log));
    Reload::Participant files = recorder("files", log);
    files.side_effects = true;
    reload.add(std::move(files));
    config::ParseResult next = parsed();
    next.config->log_level = config::LogLevel::debug;
    dry = co_await reload.run(std::move(next), true);
    EXPECT_EQ(sup.config().log_level, config::LogLevel::info);
    EXPECT_EQ(log, (std::vector<std::string>{"a:prepare"}));
    config::ParseResult again = parsed();
    again.config->log_level = config::LogLevel::debug;
    real = co_await reload.run(std::move(again));
    EXPECT_EQ(sup.config().log_level, config::LogLevel::debug);
    config::ParseResult bad;
    bad.errors.push_back({"config.toml", 3, 1, "unknown key \"x\""});
    refused = co_await reload.run(std::move(bad), true);
  });
  EXPECT_TRUE(dry.ok);
  EXPECT_EQ(dry.to_json()["dry_run"], true);
  EXPECT_EQ(dry.to_json()["plan"], real.to_json()["plan"]);
  EXPECT_EQ(dry.plan.settings.size(), 1u);
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(refused.to_json(), nlohmann::json::parse(R"({"ok":false,"errors":["config.toml:3:1: unknown key \"x\""]})"));
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "reload_succeeded"), 1);  // the real one only
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "reload_failed"), 0);
}
