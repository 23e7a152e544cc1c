// Resource limits through the supervisor: a real Supervisor with the daemon's cgroup
// subtree (runtime::CgroupTree) starts a native service with limits and the values are
// in its BASE/svc.NAME before anything else; a reload that changes only limits rewrites
// them in the running instance's cgroup (a removed one back to "max") without a restart.
// Needs a cgroup2 whose root offers the memory and pids controllers: the aarch64 VM
// (tools/arm-test.sh); skipped on the development machines, whose cgroup2 offers none.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "actors/event_log.hpp"
#include "actors/reload.hpp"
#include "actors/supervisor.hpp"
#include "run_loop.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/ops_wait.hpp"

using runtime::Task;

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

std::string read_trimmed(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

config::ServiceSpec capped(std::uint64_t memory_max, std::optional<std::uint64_t> pids_max) {
  config::ServiceSpec s;
  s.name = "capped";
  s.command = {"sleep", "1000"};
  s.stop_timeout = std::chrono::seconds(5);
  s.limits.memory_max = config::MemoryLimit::of_bytes(memory_max);
  s.limits.pids_max = pids_max;
  return s;
}

class LimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto mount = runtime::find_cgroup2_mount();
    if (!mount) GTEST_SKIP() << "no cgroup2 mounted";
    const std::string root = mount->mount_point;
    const std::string offered = read_trimmed(root + "/cgroup.controllers");
    if (offered.find("memory") == std::string::npos || offered.find("pids") == std::string::npos)
      GTEST_SKIP() << "the cgroup2 root offers no memory/pids controller (\"" << offered << "\")";
    // The root may take controllers in its subtree_control whatever it holds.
    if (!write_file(root + "/cgroup.subtree_control", "+memory +pids"))
      GTEST_SKIP() << "cannot enable memory and pids under " << root;
    char tmpl[] = "/tmp/dockless-limits-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  // Runs `body` with a Supervisor over `tree` and a fresh event log, then shuts both
  // down, so every event is in dir_/events.log afterwards (read with events_of()).
  template <class F>
  void with_supervisor(runtime::CgroupTree& tree, F body) {
    auto events = actors::EventLog::open(dir_ + "/events.log");
    ASSERT_TRUE(events.ok()) << events.message();
    run_loop([&]() -> Task<void> {
      std::stop_source stop;
      runtime::Scope writer;
      writer.spawn((*events)->run(stop.get_token()), "event-log");
      actors::Supervisor::Options so;
      so.data_dir = dir_;
      so.capture_logs = false;
      so.cgroups = &tree;
      actors::Supervisor sup(so, **events);
      co_await body(sup);
      co_await sup.shutdown();
      co_await (*events)->flush();
      stop.request_stop();
      co_await writer.join();
    });
  }
  std::vector<nlohmann::json> events_of(const std::string& kind) const {
    std::vector<nlohmann::json> out;
    std::ifstream in(dir_ + "/events.log");
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object() && j.value("kind", "") == kind) out.push_back(std::move(j));
    }
    return out;
  }
  std::string dir_;
};

TEST_F(LimitsTest, WrittenBeforeTheStartAndChangedInPlaceByAReload) {
  std::string reason;
  auto tree = runtime::CgroupTree::setup(dir_, &reason);
  ASSERT_TRUE(tree.ok()) << reason;
  // Offered, but on only once a limit needs them (runtime/cgroup.hpp says why).
  const auto& offered = tree->offered();
  ASSERT_NE(std::find(offered.begin(), offered.end(), "memory"), offered.end());
  ASSERT_NE(std::find(offered.begin(), offered.end(), "pids"), offered.end());
  EXPECT_TRUE(tree->controllers().empty());
  const std::string svc = tree->base_fs_path() + "/svc.capped";

  pid_t first_pid = -1, pid_after_reload = -1;
  std::string memory_at_start, pids_at_start, memory_after, pids_after;
  actors::ReloadOutcome outcome;
  with_supervisor(*tree, [&](actors::Supervisor& sup) -> Task<void> {
    auto running_pid = [&]() -> std::optional<pid_t> {
      auto st = sup.status("capped");
      if (st && st->state == actors::State::running && st->pid) return st->pid;
      return std::nullopt;
    };
    config::Config boot;
    boot.services = {capped(32 * kMiB, 16)};
    co_await sup.boot(std::move(boot));
    for (int i = 0; i < 400 && !running_pid(); ++i) co_await runtime::sleep_for(std::chrono::milliseconds(25));
    first_pid = running_pid().value_or(-1);
    memory_at_start = read_trimmed(svc + "/memory.max");
    pids_at_start = read_trimmed(svc + "/pids.max");

    config::Config next;
    next.services = {capped(64 * kMiB, std::nullopt)};
    outcome = co_await sup.apply(std::move(next));
    co_await runtime::sleep_for(std::chrono::milliseconds(200));  // the actor takes the update
    pid_after_reload = running_pid().value_or(-1);
    memory_after = read_trimmed(svc + "/memory.max");
    pids_after = read_trimmed(svc + "/pids.max");

  });
  tree->release();

  ASSERT_GT(first_pid, 0) << "capped never ran";
  EXPECT_EQ(memory_at_start, std::to_string(32 * kMiB));
  EXPECT_EQ(pids_at_start, "16");
  EXPECT_EQ(outcome.updated_in_place, (std::vector<std::string>{"capped"}));
  EXPECT_TRUE(outcome.changed.empty());
  EXPECT_EQ(pid_after_reload, first_pid) << "a limit-only reload restarted the service";
  EXPECT_EQ(memory_after, std::to_string(64 * kMiB));
  EXPECT_EQ(pids_after, "max");
  const std::vector<nlohmann::json> applied = events_of("limits_applied");
  ASSERT_EQ(applied.size(), 1u);
  EXPECT_EQ(applied[0].value("ok", false), true) << applied[0].dump();
}

// A service that allocates past memory_max: busybox tail -c keeps the last N bytes of
// a pipe in one buffer, so 80 MB of zeros under a 32 MiB limit is an OOM kill. The
// kill is recorded as oom_killed with the counts and the limit, and restart = always
// starts it again.
TEST_F(LimitsTest, OverMemoryMaxIsOomKilledRecordedAndRestarted) {
  std::string reason;
  auto tree = runtime::CgroupTree::setup(dir_, &reason);
  ASSERT_TRUE(tree.ok()) << reason;
  int restarts = 0;
  with_supervisor(*tree, [&](actors::Supervisor& sup) -> Task<void> {
    config::ServiceSpec hog = capped(32 * kMiB, std::nullopt);
    hog.name = "hog";
    // tail is the victim (the biggest); the shell then exits 137, and restart = always.
    hog.command = {"sh", "-c", "head -c 80000000 /dev/zero | tail -c 80000000 >/dev/null"};
    hog.restart = config::RestartPolicy::always;
    config::Config boot;
    boot.services = {hog};
    co_await sup.boot(std::move(boot));
    // An emulated CPU pipes zeros slowly: up to 60 s for two kills.
    for (int i = 0; i < 2400 && restarts < 1; ++i) {
      co_await runtime::sleep_for(std::chrono::milliseconds(25));
      if (auto st = sup.status("hog")) restarts = st->restarts;
    }
  });
  tree->release();

  const std::vector<nlohmann::json> ooms = events_of("oom_killed");
  EXPECT_GE(ooms.size(), 1u) << "no oom_killed event";
  for (const auto& j : ooms) {
    EXPECT_EQ(j.value("service", ""), "hog") << j.dump();
    EXPECT_GE(j.value("oom_kill", 0), 1) << j.dump();
    EXPECT_GE(j.value("new", 0), 1) << j.dump();
    EXPECT_EQ(j.value("memory_max", ""), std::to_string(32 * kMiB)) << j.dump();
  }
  EXPECT_GE(restarts, 1) << "the OOM-killed service was not restarted";
}

}  // namespace
