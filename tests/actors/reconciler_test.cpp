// plan_recovery as a table: each row is what a boot could find (state.json, the
// hand-over, stored pipes, the environment scan, liveness, the specs) and the plan it
// must produce, written out as short strings so a row reads as a sentence.
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "actors/reconciler.hpp"

namespace {

using actors::BootFacts;
using actors::FileId;
using actors::InheritedFacts;
using actors::MarkedProcess;
using actors::Plan;
using actors::PlannedAdoption;
using actors::ServiceFacts;
using actors::SnapshotEntry;

ServiceFacts native(const std::string& name, bool autostart = true) {
  ServiceFacts f;
  f.name = name;
  f.from_config = true;
  f.autostart = autostart;
  f.command = {"sleep", "1"};
  return f;
}

ServiceFacts container(const std::string& name, const std::string& cli, bool autostart = true) {
  ServiceFacts f = native(name, autostart);
  f.container = true;
  f.docker_cli = cli;
  return f;
}

SnapshotEntry ran(pid_t pid, std::uint64_t ticks, const std::string& executor = "") {
  SnapshotEntry e;
  e.state = "running";
  e.pid = pid;
  e.pid_start_ticks = ticks;
  e.executor = executor;
  e.restarts = 2;
  e.ports = {8080};
  e.started_unix_ms = 1000;
  return e;
}

void alive(BootFacts& f, pid_t pid, std::uint64_t ticks) { f.live[pid].start_ticks = ticks; }

InheritedFacts handed(const std::string& state, pid_t pid = 0, const std::string& executor = "process") {
  InheritedFacts h;
  h.state = state;
  h.executor = executor;
  h.instance = pid != 0;
  h.pid = pid;
  return h;
}

const char* pipes_name(PlannedAdoption::Pipes p) {
  switch (p) {
    case PlannedAdoption::Pipes::handed_over: return "handed_over";
    case PlannedAdoption::Pipes::not_captured: return "not_captured";
    case PlannedAdoption::Pipes::stored: return "stored";
    case PlannedAdoption::Pipes::reopen: return "reopen";
  }
  return "?";
}

// "web crash 100 reopen", "web crash 100 stored out=svc.web.stdout err=svc.web.stderr"
std::vector<std::string> adoptions(const Plan& p) {
  std::vector<std::string> out;
  for (const auto& a : p.adopt) {
    std::string s = a.service + " " + a.origin + " " + std::to_string(a.pid) + " " + pipes_name(a.pipes);
    if (!a.stored_in.empty()) s += " in=" + a.stored_in;
    if (!a.stored_out.empty()) s += " out=" + a.stored_out;
    if (!a.stored_err.empty()) s += " err=" + a.stored_err;
    out.push_back(s);
  }
  return out;
}

// "100 web sig=15 10000ms" ("-" when the event names no service; "inherited" when
// the previous image's pidfd is used)
std::vector<std::string> stops(const Plan& p) {
  std::vector<std::string> out;
  for (const auto& s : p.stop) {
    std::ostringstream o;
    o << s.pid << " " << s.service.value_or("-") << " sig=" << s.signal << " " << s.timeout.count() << "ms";
    if (!s.inherited_from.empty()) o << " inherited";
    out.push_back(o.str());
  }
  return out;
}

std::vector<pid_t> kills(const Plan& p) {
  std::vector<pid_t> out;
  for (const auto& [pid, ticks] : p.kill) out.push_back(pid);
  return out;
}

std::vector<std::string> keys(const std::map<std::string, std::string>& m) {
  std::vector<std::string> out;
  out.reserve(m.size());
  for (const auto& [k, v] : m) out.push_back(k);
  return out;
}

using S = std::vector<std::string>;

struct Row {
  const char* what;
  std::function<void(BootFacts&)> given;
  S adopt, stop;
  std::vector<pid_t> kill;
  S drop_pipes, start, not_started;
};

std::vector<Row> rows() {
  return {
      {"first boot: autostart services start, the rest wait",
       [](BootFacts& f) { f.services = {native("a"), native("b", false)}; },
       {}, {}, {}, {}, {"a"}, {}},
      {"crash, instance still running: adopted with its output reopened through /proc, not started",
       [](BootFacts& f) {
         f.services = {native("web")};
         f.previous.services["web"] = ran(100, 7);
         alive(f, 100, 7);
       },
       {"web crash 100 reopen"}, {}, {}, {}, {}, {"web"}},
      {"crash, recycled pid (another start time): nothing to adopt or stop, started",
       [](BootFacts& f) {
         f.services = {native("web")};
         f.previous.services["web"] = ran(100, 7);
         alive(f, 100, 8);
       },
       {}, {}, {}, {}, {"web"}, {}},
      {"crash, instance gone: started",
       [](BootFacts& f) {
         f.services = {native("web")};
         f.previous.services["web"] = ran(100, 7);
       },
       {}, {}, {}, {}, {"web"}, {}},
      {"crash, no recorded start time: never trusted",
       [](BootFacts& f) {
         f.services = {native("web")};
         f.previous.services["web"] = ran(100, 0);
         alive(f, 100, 0);
       },
       {}, {}, {}, {}, {"web"}, {}},
      {"crash, a service not autostarted is adopted all the same",
       [](BootFacts& f) {
         f.services = {native("web", false)};
         f.previous.services["web"] = ran(100, 7);
         alive(f, 100, 7);
       },
       {"web crash 100 reopen"}, {}, {}, {}, {}, {}},
      {"crash, removed service's orphan: SIGTERM, 10 s",
       [](BootFacts& f) {
         f.services = {native("web")};
         f.previous.services["old"] = ran(100, 7);
         alive(f, 100, 7);
       },
       {}, {"100 old sig=15 10000ms"}, {}, {}, {"web"}, {}},
      {"crash, a native instance of a service that is a container now: its config stop signal",
       [](BootFacts& f) {
         ServiceFacts c = container("web", "docker");
         c.stop_signal = 2;
         c.stop_timeout = config::Duration{3000};
         f.services = {c};
         f.previous.services["web"] = ran(100, 7);
         alive(f, 100, 7);
       },
       {}, {"100 web sig=2 3000ms"}, {}, {}, {"web"}, {}},
      {"crash, a registered (not config.toml) service's spec lends no stop signal",
       [](BootFacts& f) {
         ServiceFacts c = container("web", "docker");
         c.from_config = false;
         c.stop_signal = 2;
         f.services = {c};
         f.previous.services["web"] = ran(100, 7);
         alive(f, 100, 7);
       },
       {}, {"100 web sig=15 10000ms"}, {}, {}, {"web"}, {}},
      {"crash, containers are not stopped by pid",
       [](BootFacts& f) {
         f.services = {container("db", "docker")};
         f.previous.services["db"] = ran(100, 7, "docker");
         f.previous.services["gone"] = ran(101, 7, "docker");
         alive(f, 100, 7);
         alive(f, 101, 7);
       },
       {}, {}, {}, {}, {"db"}, {}},
      {"crash, output not captured",
       [](BootFacts& f) {
         f.services = {native("web")};
         f.capture_logs = false;
         f.previous.services["web"] = ran(100, 7);
         alive(f, 100, 7);
       },
       {"web crash 100 not_captured"}, {}, {}, {}, {}, {"web"}},
      {"crash, stored pipes that are the instance's: taken from the store",
       [](BootFacts& f) {
         f.services = {native("web")};
         f.previous.services["web"] = ran(100, 7);
         alive(f, 100, 7);
         f.live[100].fds = {FileId{1, 9}, FileId{1, 10}, FileId{1, 11}};
         f.stored_pipes["svc.web.stdout"] = FileId{1, 10};
         f.stored_pipes["svc.web.stderr"] = FileId{1, 11};
       },
       {"web crash 100 stored out=svc.web.stdout err=svc.web.stderr"}, {}, {}, {}, {}, {"web"}},
      {"crash, only stderr stored: stdout's absence does not send it to /proc",
       [](BootFacts& f) {
         f.services = {native("web")};
         f.previous.services["web"] = ran(100, 7);
         alive(f, 100, 7);
         f.live[100].fds = {std::nullopt, FileId{1, 10}, FileId{1, 11}};
         f.stored_pipes["svc.web.stderr"] = FileId{1, 11};
       },
       {"web crash 100 stored err=svc.web.stderr"}, {}, {}, {}, {}, {"web"}},
      {"crash, stored pipes of another instance: reopened through /proc, the stale ones dropped",
       [](BootFacts& f) {
         f.services = {native("web")};
         f.previous.services["web"] = ran(100, 7);
         alive(f, 100, 7);
         f.live[100].fds = {FileId{1, 9}, FileId{1, 10}, FileId{1, 11}};
         f.stored_pipes["svc.web.stdout"] = FileId{1, 20};
         f.stored_pipes["svc.web.stderr"] = FileId{2, 11};
       },
       {"web crash 100 reopen"}, {}, {}, {"web"}, {}, {"web"}},
      {"crash, a stored fd that is not a pipe never matches",
       [](BootFacts& f) {
         f.services = {native("web")};
         f.previous.services["web"] = ran(100, 7);
         alive(f, 100, 7);
         f.live[100].fds = {FileId{1, 9}, FileId{1, 10}, FileId{1, 11}};
         f.stored_pipes["svc.web.stdout"] = std::nullopt;
       },
       {"web crash 100 reopen"}, {}, {}, {"web"}, {}, {"web"}},
      {"crash, stored pipes of an instance that is gone: dropped, the service started",
       [](BootFacts& f) {
         f.services = {native("web"), native("other")};
         f.stored_pipes["svc.web.stdout"] = FileId{1, 10};
         f.stored_pipes["svc.web.stdin"] = FileId{1, 12};
       },
       {}, {}, {}, {"web"}, {"other", "web"}, {}},
      {"stored pipes of a service that no longer exists are closed, not reported",
       [](BootFacts& f) {
         f.services = {native("web")};
         f.stored_pipes["svc.old.stdout"] = FileId{1, 10};
       },
       {}, {}, {}, {}, {"web"}, {}},
      {"crash, a marked group leader state.json missed: its service's stop; its members go with it",
       [](BootFacts& f) {
         ServiceFacts w = native("web");
         w.stop_signal = 1;
         f.services = {w};
         f.marked = {MarkedProcess{200, 200, "web"}, MarkedProcess{201, 200, "web"}};
         alive(f, 200, 5);
         alive(f, 201, 6);
       },
       {}, {"200 web sig=1 10000ms"}, {}, {}, {"web"}, {}},
      {"crash, a marked process without DOCKLESS_SERVICE: no service in the event",
       [](BootFacts& f) {
         f.marked = {MarkedProcess{200, 200, ""}};
         alive(f, 200, 5);
       },
       {}, {"200 - sig=15 10000ms"}, {}, {}, {}, {}},
      {"crash, leaderless group members: SIGKILL",
       [](BootFacts& f) {
         f.services = {native("web")};
         f.marked = {MarkedProcess{300, 299, "web"}, MarkedProcess{301, 299, "web"}};
         alive(f, 300, 5);
         alive(f, 301, 5);
       },
       {}, {}, {300, 301}, {}, {"web"}, {}},
      {"crash, marked members of an adopted group are left to their service",
       [](BootFacts& f) {
         f.services = {native("web")};
         f.previous.services["web"] = ran(100, 7);
         alive(f, 100, 7);
         f.marked = {MarkedProcess{100, 100, "web"}, MarkedProcess{101, 100, "web"}};
       },
       {"web crash 100 reopen"}, {}, {}, {}, {}, {"web"}},
      {"crash, a removed service's orphan found twice is stopped once, by the state.json pass",
       [](BootFacts& f) {
         f.previous.services["old"] = ran(100, 7);
         alive(f, 100, 7);
         f.marked = {MarkedProcess{100, 100, "old"}, MarkedProcess{101, 100, "old"}};
       },
       {}, {"100 old sig=15 10000ms"}, {}, {}, {}, {}},
      {"upgrade: handed-over instance adopted with its own pidfd and pipes",
       [](BootFacts& f) {
         f.services = {native("web")};
         f.inherited.emplace()["web"] = handed("running", 100);
       },
       {"web upgrade 100 handed_over"}, {}, {}, {}, {}, {"web"}},
      {"upgrade with a service gone: its instance stopped through the inherited pidfd",
       [](BootFacts& f) {
         f.services = {native("web")};
         f.inherited.emplace()["old"] = handed("running", 100);
       },
       {}, {"100 - sig=15 10000ms inherited"}, {}, {}, {"web"}, {}},
      {"upgrade, a service that runs in a container now: the native instance stopped",
       [](BootFacts& f) {
         f.services = {container("web", "docker")};
         f.inherited.emplace()["web"] = handed("running", 100);
       },
       {}, {"100 - sig=15 10000ms inherited"}, {}, {}, {"web"}, {}},
      {"upgrade: stopped on purpose stays stopped; waiting or backing off starts",
       [](BootFacts& f) {
         f.services = {native("a"), native("b"), native("c"), native("d"), native("e"), native("f")};
         auto& h = f.inherited.emplace();
         h["a"] = handed("stopped");
         h["b"] = handed("exited");
         h["c"] = handed("failed");
         h["d"] = handed("stopped");
         h["d"].pending_start = true;
         h["e"] = handed("backoff");
         h["f"] = handed("stopped", 0, "docker");
       },
       {}, {}, {}, {}, {"d", "e", "f"}, {"a", "b", "c"}},
      {"upgrade: the hand-over is exact; state.json and the scan are not consulted",
       [](BootFacts& f) {
         f.services = {native("web")};
         f.inherited.emplace();
         f.previous.services["web"] = ran(100, 7);
         f.previous.services["old"] = ran(101, 7);
         alive(f, 100, 7);
         alive(f, 101, 7);
         f.marked = {MarkedProcess{300, 299, "web"}};
       },
       {}, {}, {}, {}, {"web"}, {}},
      {"upgrade: stored pipes of services are dropped (the actor stores its own again)",
       [](BootFacts& f) {
         f.services = {native("web")};
         f.inherited.emplace()["web"] = handed("running", 100);
         f.stored_pipes["svc.web.stdout"] = FileId{1, 10};
       },
       {"web upgrade 100 handed_over"}, {}, {}, {"web"}, {}, {"web"}},
  };
}

TEST(Reconciler, PlanTable) {
  for (const Row& r : rows()) {
    SCOPED_TRACE(r.what);
    BootFacts f;
    r.given(f);
    const Plan p = actors::plan_recovery(f);
    EXPECT_EQ(adoptions(p), r.adopt);
    EXPECT_EQ(stops(p), r.stop);
    EXPECT_EQ(kills(p), r.kill);
    EXPECT_EQ(p.drop_pipes, r.drop_pipes);
    EXPECT_EQ(p.start, r.start);
    EXPECT_EQ(keys(p.not_started), r.not_started);
  }
}

TEST(Reconciler, AdoptionCarriesWhatStateJsonRecorded) {
  BootFacts f;
  ServiceFacts w = native("web");
  w.with_stdin = true;
  f.services = {w};
  f.previous.services["web"] = ran(100, 7);
  alive(f, 100, 7);
  const Plan p = actors::plan_recovery(f);
  ASSERT_EQ(p.adopt.size(), 1u);
  const PlannedAdoption& a = p.adopt.front();
  EXPECT_EQ(a.start_ticks, 7u);
  EXPECT_EQ(a.restarts, 2);
  EXPECT_EQ(a.ports, std::vector<std::uint16_t>{8080});
  EXPECT_EQ(a.started_unix_ms, 1000);
  EXPECT_EQ(a.command, w.command);
  EXPECT_TRUE(a.with_stdin);
  EXPECT_EQ(p.origin, "crash");
  EXPECT_TRUE(p.eventful());
}

TEST(Reconciler, OrphansKeepTheStartTimeSeenSoTheExecutorCanCheckAgain) {
  BootFacts f;
  f.previous.services["old"] = ran(100, 7);
  alive(f, 100, 7);
  f.marked = {MarkedProcess{200, 200, ""}, MarkedProcess{300, 299, ""}};
  alive(f, 200, 5);
  alive(f, 300, 6);
  const Plan p = actors::plan_recovery(f);
  ASSERT_EQ(p.stop.size(), 2u);
  EXPECT_EQ(p.stop[0].start_ticks, 7u);
  EXPECT_EQ(p.stop[1].start_ticks, 5u);
  ASSERT_EQ(p.kill.size(), 1u);
  EXPECT_EQ(p.kill[0].second, 6u);
  EXPECT_FALSE(p.kill_reason.empty());
}

TEST(Reconciler, ContainersToKeepAndToSweep) {
  BootFacts f;
  f.services = {container("db", "docker"), container("cache", "podman", false), native("web")};
  f.previous.services["old"] = ran(0, 0, "docker");
  f.previous.services["older"] = ran(0, 0, "docker");
  f.previous.services["older"].docker_cli = "nerdctl";
  const Plan p = actors::plan_recovery(f);
  EXPECT_EQ(p.sweep.clis, (std::set<std::string>{"docker", "nerdctl", "podman"}));
  EXPECT_EQ(p.sweep.keep, (std::set<std::string>{"db"}));
  EXPECT_EQ(p.start, (S{"db", "web"}));
}

TEST(Reconciler, NoContainerServiceNoSweep) {
  BootFacts f;
  f.services = {native("web")};
  const Plan p = actors::plan_recovery(f);
  EXPECT_TRUE(p.sweep.clis.empty());
  EXPECT_FALSE(p.eventful());
  EXPECT_EQ(p.origin, "");
}

TEST(Reconciler, NotStartedSaysWhy) {
  BootFacts f;
  f.services = {native("a"), native("b")};
  auto& h = f.inherited.emplace();
  h["a"] = handed("running", 100);
  h["b"] = handed("failed");
  const Plan p = actors::plan_recovery(f);
  EXPECT_EQ(p.origin, "upgrade");
  EXPECT_NE(p.not_started.at("a").find("adopted"), std::string::npos);
  EXPECT_NE(p.not_started.at("b").find("failed"), std::string::npos);
}

}  // namespace
