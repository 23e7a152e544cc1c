#pragma once
// The container executor: a service with `image` runs as a container managed
// through the docker CLI (Docker, or podman's docker shim). Every CLI call is a
// child process of the daemon awaited through its pidfd on the ring; output is
// read from pipes. The container is named dockless-NAME and labelled
// dockless.service=NAME, which is how a restarted daemon finds it again.
#include <chrono>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include "actors/executor.hpp"
#include "config/config.hpp"
#include "runtime/task.hpp"

namespace actors {

inline constexpr std::string_view kContainerPrefix = "dockless-";
inline constexpr std::string_view kServiceLabel = "dockless.service";
// The docker CLI a spec uses: `docker_cli`, else `docker` from PATH.
std::string docker_cli_of(const config::ServiceSpec& spec);

class DockerExecutor final : public Executor {
 public:
  explicit DockerExecutor(const config::ServiceSpec& spec);
  std::string_view kind() const override { return "docker"; }
  runtime::Task<std::unique_ptr<Execution>> launch(LaunchRequest req, std::string* error) override;
  // An exec check runs inside the container (`docker exec`), where the service's
  // files and tools are.
  config::HealthCheck health_check(const config::HealthCheck& check) const override;

 private:
  std::string cli_;
  std::string container_;
};

// The result of one CLI call.
struct CliResult {
  bool spawned = false;  // false: the CLI could not be started (`error` says why)
  bool timed_out = false;
  int exit_code = -1;
  std::string out, err, error;
  bool ok() const { return spawned && !timed_out && exit_code == 0; }
  // The engine's or the CLI's own message from stderr (the first line reporting an error,
  // never docker's "See '... --help'" pointer), or why it did not run.
  std::string message() const;
};
// Runs `cli args...` as a child of the daemon and awaits it through its pidfd.
// timeout 0: none. A timeout or a stop request kills the CLI process.
runtime::Task<CliResult> run_cli(std::string cli, std::vector<std::string> args,
                                 std::chrono::milliseconds timeout, std::stop_token stop = {});

// At boot: containers labelled dockless.service=NAME whose NAME is not in `keep`
// belong to services that no longer exist (or will not be started); they are
// stopped and removed. One entry per container touched, for events. A CLI or
// engine that cannot answer is not an error here: there is nothing to sweep.
struct SweptContainer {
  std::string service, container, error;  // error empty: removed
};
runtime::Task<std::vector<SweptContainer>> sweep_orphan_containers(std::string cli, std::set<std::string> keep,
                                                                 std::stop_token stop);

}  // namespace actors
