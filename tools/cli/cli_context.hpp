#pragma once
// Internals shared by the CLI's dispatch (cli.cpp) and its commands (cli_commands.cpp).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tools/cli/cli.hpp"
#include "tools/cli/http_client.hpp"

namespace tools::cli {

struct Context {
  HttpClient client;
  std::string command;
};

// A command's flag: `names` like "-f --follow" (the last one, without dashes, is its
// key); `value` when it takes one ("-n 5", "--tail=5").
struct FlagSpec {
  const char* names;
  bool value = false;
};

struct Flags {
  std::map<std::string, std::string> values;  // key → value ("" for a switch)
  std::vector<std::string> positional;
  bool help = false;  // -h/--help was given: the caller prints help and exits 0
  bool has(const std::string& key) const { return values.count(key) != 0; }
  std::string get(const std::string& key, const std::string& fallback = "") const {
    auto it = values.find(key);
    return it == values.end() ? fallback : it->second;
  }
};

// nullopt after printing a usage error (exit kUsage).
std::optional<Flags> parse_flags(const std::string& command, const std::vector<std::string>& args,
                                 const std::vector<FlagSpec>& specs);
// Prints "dockless COMMAND: message" and the command's synopsis; returns kUsage.
int usage_error(const std::string& command, const std::string& message);

// Sends a request expecting a complete response; on a transport failure prints it
// and returns nullopt with *exit = kUnreachable.
std::optional<HttpResponse> send(const Context& ctx, const HttpRequest& req, int* exit);
// Prints the daemon's error ("dockless: WHAT: error" and the detail) to stderr;
// returns kNotFound for 404, kRefused otherwise.
int report(const HttpResponse& resp, const std::string& what);
bool success(int status);

int cmd_ps(Context& ctx, const Flags& f);
int cmd_inspect(Context& ctx, const Flags& f);
int cmd_action(Context& ctx, const Flags& f);  // start, stop, restart (ctx.command)
int cmd_logs(Context& ctx, const Flags& f);
int cmd_events(Context& ctx, const Flags& f);
int cmd_add(Context& ctx, const Flags& f);
int cmd_rm(Context& ctx, const Flags& f);
int cmd_reload(Context& ctx, const Flags& f);
int cmd_signal(Context& ctx, const Flags& f);
int cmd_attach(Context& ctx, const Flags& f);
int cmd_upgrade(Context& ctx, const Flags& f);
int cmd_stdin(Context& ctx, const Flags& f);  // cli_stdin.cpp
int cmd_top(Context& ctx, const Flags& f);    // cli_top.cpp
// cli_triggers.cpp
int cmd_triggers(Context& ctx, const Flags& f);
int cmd_queue(Context& ctx, const Flags& f);
int cmd_dlq(Context& ctx, const Flags& f);
int cmd_replay(Context& ctx, const Flags& f);
int cmd_inspect_event(Context& ctx, const Flags& f);
// "ev-" and 16 hex digits: a trigger event's id, which `inspect` shows instead of a service.
bool is_event_id(const std::string& id);

}  // namespace tools::cli
