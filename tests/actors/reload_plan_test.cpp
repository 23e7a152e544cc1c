// actors::plan_reload: one plan for every kind of change a reload makes, secrets masked.
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "actors/reload_plan.hpp"
#include "../config/test_inputs.hpp"

using actors::KeyChange;
using actors::ReloadPlan;
using actors::RunningService;
using nlohmann::json;

namespace {

config::Config parse(const std::string& text) {
  auto r = config::parse_string(text, "config.toml", "/nonexistent", test_inputs({{"SECRET", "s3"}}));
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors.front().to_string());
  return r.ok() ? *r.config : config::Config{};
}

// The plan of going from `before` (every service from the config, running) to `after`.
ReloadPlan plan(const std::string& before, const std::string& after) {
  const config::Config running = parse(before);
  std::map<std::string, RunningService> now;
  for (const auto& s : running.services) now[s.name] = {&s, true, false};
  return actors::plan_reload(running, now, parse(after));
}

const std::string kA = "[services.a]\ncommand = [\"sleep\", \"1\"]\nenv = { TOKEN = \"abc\", MODE = \"x\" }\n";
const std::string kB = "[services.b]\ncommand = [\"sleep\", \"2\"]\n";

std::string trigger(const std::string& secret, const std::string& service) {
  return "[[triggers]]\nid = \"deploy\"\nkind = \"webhook\"\nprovider = \"hmac\"\nsecret = \"" + secret +
         "\"\naction = { restart = \"" + service + "\" }\n";
}

TEST(ReloadPlan, NothingChanged) {
  ReloadPlan p = plan(kA + kB, kB + kA);
  EXPECT_TRUE(p.empty());
  EXPECT_EQ(p.to_json()["empty"], true);
}

TEST(ReloadPlan, AddedAndRemoved) {
  ReloadPlan p = plan(kA, kB);
  EXPECT_EQ(p.added, std::vector<std::string>{"b"});
  EXPECT_EQ(p.removed, std::vector<std::string>{"a"});
  EXPECT_TRUE(p.restarted.empty());
}

TEST(ReloadPlan, RestartNamesEveryChangedKeyWithEnvValuesMasked) {
  const std::string next =
      "[services.a]\ncommand = [\"sleep\", \"9\"]\nenv = { TOKEN = \"xyz\", NEW = \"n\" }\nstop_timeout = \"3s\"\n";
  ReloadPlan p = plan(kA, next);
  ASSERT_EQ(p.restarted.size(), 1u);
  EXPECT_EQ(p.restarted[0].name, "a");
  const std::vector<KeyChange> want = {
      {"command", json{"sleep", "1"}, json{"sleep", "9"}, false},
      {"env.MODE", "***", nullptr, true},
      {"env.NEW", nullptr, "***", true},
      {"env.TOKEN", "***", "***", true},
      {"stop_timeout", "10s", "3s", false},
  };
  EXPECT_EQ(p.restarted[0].changes, want);
  EXPECT_EQ(p.to_json().dump().find("xyz"), std::string::npos);
  EXPECT_EQ(p.to_json().dump().find("abc"), std::string::npos);
}

// A socket shows under its name with what it binds; a changed socket restarts the service.
TEST(ReloadPlan, SocketsByNameRestart) {
  const std::string before = kB + "sockets = [{ listen = \"127.0.0.1:8080\", name = \"http\" }]\n";
  const std::string after = kB +
                            "sockets = [{ listen = \"127.0.0.1:8081\", name = \"http\", reuse_port = true },"
                            " { listen = \"/run/b.sock\", mode = \"0660\" }]\n";
  ReloadPlan p = plan(before, after);
  ASSERT_EQ(p.restarted.size(), 1u);
  const std::vector<KeyChange> want = {
      {"sockets.b.sock", nullptr, "unix /run/b.sock backlog 4096 mode 0660", false},
      {"sockets.http", "tcp 127.0.0.1:8080 backlog 4096", "tcp 127.0.0.1:8081 backlog 4096 reuse_port", false},
  };
  EXPECT_EQ(p.restarted[0].changes, want);
}

// Turning on lazy start and overlap restarts is a restart that names both keys.
TEST(ReloadPlan, SocketModesShowAsKeys) {
  const std::string sock = "sockets = [{ listen = \"127.0.0.1:8080\", name = \"http\" }]\nready = \"notify\"\n";
  ReloadPlan p = plan(kB + sock, kB + sock + "restart_mode = \"overlap\"\nstart_on = \"connection\"\n");
  ASSERT_EQ(p.restarted.size(), 1u);
  const std::vector<KeyChange> want = {
      {"restart_mode", "stop-first", "overlap", false},
      {"start_on", "boot", "connection", false},
  };
  EXPECT_EQ(p.restarted[0].changes, want);
}

TEST(ReloadPlan, AttachKeysShow) {
  const std::string a = "[services.a]\nattach = { pid_file = \"/run/a.pid\" }\n";
  ReloadPlan p = plan(a, "[services.a]\nattach = { pid_file = \"/run/b.pid\", control = true }\n");
  ASSERT_EQ(p.restarted.size(), 1u);
  const std::vector<KeyChange> want = {
      {"attach.control", false, true, false},
      {"attach.pid_file", "/run/a.pid", "/run/b.pid", false},
  };
  EXPECT_EQ(p.restarted[0].changes, want);
}

TEST(ReloadPlan, LimitsOnlyAreInPlace) {
  ReloadPlan p = plan(kB + "memory_max = \"512M\"\n", kB + "memory_max = \"1G\"\npids_max = 8\n");
  ASSERT_EQ(p.in_place.size(), 1u);
  EXPECT_TRUE(p.restarted.empty());
  ASSERT_EQ(p.in_place[0].changes.size(), 2u);
  EXPECT_EQ(p.in_place[0].changes[0].key, "limits.memory_max");
  EXPECT_EQ(p.in_place[0].changes[1], (KeyChange{"limits.pids_max", nullptr, 8, false}));
}

// Health checks and log settings are not applied in place today: the plan says restart.
TEST(ReloadPlan, HealthAndLogSettingsRestart) {
  ReloadPlan p = plan(kB, kB + "log_keep = 2\n");
  ASSERT_EQ(p.restarted.size(), 1u);
  EXPECT_EQ(p.restarted[0].changes, (std::vector<KeyChange>{{"log_keep", 5, 2, false}}));
}

TEST(ReloadPlan, RegisteredServiceTakenOverRestarts) {
  const config::Config running = parse(kB);
  std::map<std::string, RunningService> now;
  now["b"] = {&running.services[0], false, false};
  ReloadPlan p = actors::plan_reload(running, now, parse(kB));
  ASSERT_EQ(p.restarted.size(), 1u);
  EXPECT_TRUE(p.restarted[0].changes.empty());
  EXPECT_FALSE(p.restarted[0].reason.empty());
}

TEST(ReloadPlan, TriggersAddedRemovedAndChangedWithTheSecretMasked) {
  EXPECT_EQ(plan(kB, kB + trigger("s3cret", "b")).triggers_added, std::vector<std::string>{"deploy"});
  EXPECT_EQ(plan(kB + trigger("s3cret", "b"), kB).triggers_removed, std::vector<std::string>{"deploy"});
  ReloadPlan p = plan(kA + kB + trigger("s3cret", "b"), kA + kB + trigger("other", "a"));
  ASSERT_EQ(p.triggers_changed.size(), 1u);
  EXPECT_EQ(p.triggers_changed[0].name, "deploy");
  const std::vector<KeyChange> want = {
      {"action.restart", "b", "a", false},
      {"secret", "***", "***", true},
  };
  EXPECT_EQ(p.triggers_changed[0].changes, want);
  EXPECT_EQ(p.to_json().dump().find("s3cret"), std::string::npos);
  EXPECT_TRUE(plan(kB + trigger("s3cret", "b"), kB + trigger("s3cret", "b")).empty());
}

// The same ${SECRET} text reads another value: a new secret all the same.
TEST(ReloadPlan, TriggerSecretFromTheEnvironment) {
  const config::Config before = parse(kB + trigger("${SECRET}", "b"));
  auto r = config::parse_string(kB + trigger("${SECRET}", "b"), "config.toml", "/nonexistent",
                                test_inputs({{"SECRET", "changed"}}));
  ASSERT_TRUE(r.ok());
  ReloadPlan p = actors::plan_reload(before, {}, *r.config);
  ASSERT_EQ(p.triggers_changed.size(), 1u);
  EXPECT_EQ(p.triggers_changed[0].changes, (std::vector<KeyChange>{{"secret", "***", "***", true}}));
}

TEST(ReloadPlan, ListenerChangesNeedADaemonRestart) {
  ReloadPlan p = plan("listen_port = 3080\n" + kB, "listen_port = 3081\nlog_level = \"debug\"\n" + kB);
  EXPECT_EQ(p.daemon_restart, (std::vector<KeyChange>{{"listen_port", 3080, 3081, false}}));
  EXPECT_EQ(p.settings, (std::vector<KeyChange>{{"log_level", "info", "debug", false}}));
  EXPECT_FALSE(p.empty());
}

}  // namespace
