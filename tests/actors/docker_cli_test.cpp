// What an operator reads when a docker call fails: the engine's words, not docker's
// pointer at its help. The inputs are what docker and podman print on stderr.
#include <gtest/gtest.h>

#include "actors/docker_executor.hpp"

namespace {

actors::CliResult failed(std::string err, int code = 125) {
  actors::CliResult r;
  r.spawned = true;
  r.exit_code = code;
  r.err = std::move(err);
  return r;
}

TEST(DockerCliMessage, TheEngineErrorNotTheHelpPointer) {
  EXPECT_EQ(failed("docker: Error response from daemon: pull access denied for nope, repository does not exist.\n"
                   "See 'docker run --help'.\n")
                .message(),
            "docker: Error response from daemon: pull access denied for nope, repository does not exist.");
  EXPECT_EQ(failed("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n")
                .message(),
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?");
  EXPECT_EQ(failed("unknown flag: --bogus\nSee 'docker run --help'.\n").message(), "unknown flag: --bogus");
  EXPECT_EQ(failed("Cannot connect to Podman. Please verify your connection to the Linux system using "
                   "`podman system connection list`, or try `podman machine init`\n"
                   "Error: unable to connect to Podman socket: dial unix /run/no-engine.sock: connect: no such file\n")
                .message(),
            "Error: unable to connect to Podman socket: dial unix /run/no-engine.sock: connect: no such file");
  EXPECT_EQ(failed("Error: unable to connect to Podman socket: dial unix /run/x.sock: connect: no such file\n")
                .message(),
            "Error: unable to connect to Podman socket: dial unix /run/x.sock: connect: no such file");
}

TEST(DockerCliMessage, WithNothingToSayTheExitCode) {
  EXPECT_EQ(failed("").message(), "exited with 125");
  EXPECT_EQ(failed("\nSee 'docker run --help'.\n", 1).message(), "exited with 1");
}

TEST(DockerCliMessage, NotRunAndTimedOut) {
  actors::CliResult not_run;
  not_run.error = "exec /nonexistent/docker: No such file or directory";
  EXPECT_EQ(not_run.message(), not_run.error);
  actors::CliResult slow = failed("Error: late\n");
  slow.timed_out = true;
  EXPECT_EQ(slow.message(), "timed out");
}

}  // namespace
