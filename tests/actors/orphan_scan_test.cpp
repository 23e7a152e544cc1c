// find_marked_processes against real children: it finds what carries the marker (and
// inherits it), never another data_dir's, never a zombie, never itself.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "actors/orphan_scan.hpp"

namespace {

// A `sleep` in its own process group with `env` as its whole environment.
pid_t spawn_sleep(std::vector<std::string> env) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    std::vector<char*> envp;
    envp.reserve(env.size() + 1);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    char sleep_path[] = "/bin/sleep";
    char secs[] = "30";
    char* argv[] = {sleep_path, secs, nullptr};
    ::execve(sleep_path, argv, envp.data());
    ::_exit(127);
  }
  return pid;
}

bool found(const std::vector<actors::MarkedProcess>& v, pid_t pid, const std::string& service) {
  return std::any_of(v.begin(), v.end(), [&](const auto& m) {
    return m.pid == pid && m.pgid == pid && m.service == service;
  });
}

TEST(OrphanScan, FindsMarkedProcessesOfThisDataDirOnly) {
  const std::string dir = "/tmp/orphan-scan-test-" + std::to_string(::getpid());
  const pid_t ours = spawn_sleep({"DOCKLESS_SUPERVISOR=" + dir, "DOCKLESS_SERVICE=web", "A=1"});
  const pid_t other = spawn_sleep({"DOCKLESS_SUPERVISOR=" + dir + "-other", "DOCKLESS_SERVICE=db"});
  const pid_t unmarked = spawn_sleep({"DOCKLESS_SERVICE=web"});
  const pid_t zombie = spawn_sleep({"DOCKLESS_SUPERVISOR=" + dir, "DOCKLESS_SERVICE=gone"});
  ASSERT_GT(ours, 0);
  ASSERT_GT(zombie, 0);
  // Wait until execve has replaced the environment (the forked copy still has ours).
  for (int i = 0; i < 500; ++i) {
    if (found(actors::find_marked_processes(dir, ::getpid()), ours, "web")) break;
    ::usleep(10'000);
  }
  ::kill(zombie, SIGKILL);
  siginfo_t info{};
  ::waitid(P_PID, static_cast<id_t>(zombie), &info, WEXITED | WNOWAIT);  // exited, not reaped

  const auto got = actors::find_marked_processes(dir, ::getpid());
  EXPECT_TRUE(found(got, ours, "web"));
  for (const auto& m : got) {
    EXPECT_NE(m.pid, other);
    EXPECT_NE(m.pid, unmarked);
    EXPECT_NE(m.pid, zombie);
  }
  // The caller's own pid is excluded even when it carries the marker.
  const auto without_ours = actors::find_marked_processes(dir, ours);
  EXPECT_FALSE(found(without_ours, ours, "web"));

  for (pid_t p : {ours, other, unmarked, zombie}) {
    ::kill(p, SIGKILL);
    ::waitpid(p, nullptr, 0);
  }
}

}  // namespace
