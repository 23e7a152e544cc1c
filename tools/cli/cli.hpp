#pragma once
// The client side of the dockless binary: `dockless ps`, `logs`, `start`, … talk to the
// daemon's HTTP API over its unix socket (default) or TCP (--host).
#include <cstdio>
#include <string>
#include <vector>

namespace tools::cli {

// Exit codes of every client command (documented in `dockless help`).
enum Exit : int {
  kOk = 0,
  kRefused = 1,      // the daemon answered with an error (4xx/5xx other than 404)
  kUsage = 2,        // bad command line
  kUnreachable = 3,  // no answer: cannot connect, timed out, connection lost
  kNotFound = 4,     // 404: no such service
};

// Where and how to reach the daemon; flags first, then the environment.
struct Globals {
  std::string socket;  // --socket / DOCKLESS_SOCKET
  std::string host;    // --host / DOCKLESS_HOST (wins over a socket from the environment)
  std::string token;   // --token / DOCKLESS_TOKEN
  std::string cacert;  // --cacert / DOCKLESS_CACERT: the CA an https:// --host is verified against
  bool socket_flag = false;
  bool host_flag = false;
};

struct CommandLine {
  Globals globals;
  std::string command;            // "" when none was given
  std::vector<std::string> args;  // the command's own arguments
};

// Splits argv (without the program name): global flags may come before or after the
// command. For `serve` and `check-config` everything after the command is theirs,
// untouched. false (message printed) on a malformed global flag.
bool parse_command_line(const std::vector<std::string>& argv, CommandLine* out);

// Whether `command` is one of the client commands below.
bool is_client_command(const std::string& command);
// Runs a client command; returns the process exit code.
int run_client(const CommandLine& cl);

void print_usage(std::FILE* out);
// `dockless help COMMAND` / `dockless COMMAND --help`; false for an unknown command.
bool print_command_help(const std::string& command, std::FILE* out);
void print_version(const Globals& g);

}  // namespace tools::cli
