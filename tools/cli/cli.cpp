#include "tools/cli/cli.hpp"

#include <cstdlib>
#include <cstring>

#include <nlohmann/json.hpp>

#include "dockless_config.h"
#include "tools/cli/cli_context.hpp"

namespace tools::cli {

namespace {

constexpr const char* kDefaultSocket = "/run/dockless/dockless.sock";

struct Command {
  const char* name;
  const char* synopsis;  // after "dockless "
  const char* summary;
  const char* details;   // the flags, for `dockless COMMAND --help`
  std::vector<FlagSpec> flags;
  std::size_t min_args;
  std::size_t max_args;  // SIZE_MAX: any number
  int (*run)(Context&, const Flags&);
};

constexpr std::size_t kMany = static_cast<std::size_t>(-1);

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"ps", "ps [--json]", "list the services: state, pid, uptime, restarts, health, cpu, memory, ports",
       "  --json       the API's JSON array instead of the table\n"
       "STATE is coloured on a terminal (NO_COLOR disables it).\n",
       {{"--json"}}, 0, 0, cmd_ps},
      {"status", "status [--json]", "the same as ps",
       "  --json       the API's JSON array instead of the table\n", {{"--json"}}, 0, 0, cmd_ps},
      {"top", "top [--once]", "live CPU, memory, restarts and the last hour of each service (q quits)",
       "  --once       print one snapshot and exit (also what happens without a terminal)\n"
       "Refreshes every 2 s; the node's load, memory and disk on the first line.\n",
       {{"--once"}}, 0, 0, cmd_top},
      {"inspect", "inspect [--json] [--secrets] NAME|EVENT-ID", "show one service and its spec, or one trigger event, as JSON",
       "  --json       compact JSON on one line (default: indented)\n"
       "  --secrets    include the values of `env` (otherwise null); the daemon records who\n"
       "               asked as a secrets_read event\n",
       {{"--json"}, {"--secrets"}}, 1, 1, cmd_inspect},
      {"start", "start [--no-deps] NAME...", "start services, and first what they depend on",
       "  --no-deps    only NAME, at once: no dependency is started or waited for\n",
       {{"--no-deps"}}, 1, kMany, cmd_action},
      {"stop", "stop [--no-deps] NAME...", "stop services, and first what depends on them",
       "  --no-deps    only NAME: its dependents keep running\n",
       {{"--no-deps"}}, 1, kMany, cmd_action},
      {"restart", "restart NAME...", "restart services", "", {}, 1, kMany, cmd_action},
      {"logs", "logs [-f] [-n N|all] [--since TIME] [--stream stdout|stderr] NAME",
       "print a service's output (stdout and stderr interleaved by time)",
       "  -f, --follow       keep printing new output until interrupted (Ctrl-C exits 0)\n"
       "  -n, --tail N       the last N lines (\"all\" for everything; default 100)\n"
       "  --since TIME       from TIME: RFC 3339, or a duration ago like 10m, 2h\n"
       "  --stream S         only stdout or only stderr\n",
       {{"-f --follow"}, {"-n --tail", true}, {"--since", true}, {"--stream", true}}, 1, 1, cmd_logs},
      {"events", "events [-f [--output]] [--since SEQ] [--service NAME,...] [--kind K,...] [--json]",
       "print the daemon's events (the last 100 by default)",
       "  -f, --follow       keep printing new events until interrupted\n"
       "  --output           with -f: the services' stdout/stderr lines too, as events\n"
       "  --since SEQ        events after sequence number SEQ\n"
       "  --service NAME,... only these services' events (and output)\n"
       "  --kind K,...       only these kinds (e.g. exited,oom_killed; stdout, stderr)\n"
       "  --json             one JSON object per line, as the daemon sends them\n",
       {{"-f --follow"}, {"--output"}, {"--since", true}, {"--service", true}, {"--kind", true}, {"--json"}}, 0, 0,
       cmd_events},
      {"add", "add FILE.toml", "register a service from a TOML file with one [services.NAME] table",
       "Errors in the file are printed as FILE:LINE:COL: message.\n", {}, 1, 1, cmd_add},
      {"rm", "rm NAME...", "stop and remove services added with `dockless add`",
       "Services defined in config.toml are removed by editing it and `dockless reload`.\n", {}, 1,
       kMany, cmd_rm},
      {"reload", "reload [--dry-run] [--json]", "re-read config.toml and apply it; prints the plan it applied",
       "  --dry-run    print what a reload would do (the same plan), changing nothing\n"
       "  --json       the API's JSON answer\n"
       "On errors the running config stays, the errors are printed, and the exit code is 1.\n",
       {{"--dry-run"}, {"--json"}}, 0, 0, cmd_reload},
      {"signal", "signal NAME SIGNAL", "send a signal (HUP, SIGUSR1, 10, ...) to a running service", "",
       {}, 2, 2, cmd_signal},
      {"attach", "attach NAME PID", "watch process PID as the service NAME (declared with attach = { ... })",
       "The process is checked (alive, not a recycled pid) and pinned by a pidfd; whatever NAME\n"
       "watched before is left running. After PID exits, NAME follows its pid_file again.\n",
       {}, 2, 2, cmd_attach},
      {"stdin", "stdin NAME [TEXT | --file FILE]", "send a line, a file or standard input to a service's stdin",
       "  TEXT         sent as one line (a newline is added)\n"
       "  --file FILE  the file's bytes as they are (\"-\": standard input, the default without TEXT)\n"
       "The service needs `stdin = true`; bytes go in order, 64 KiB per request.\n",
       {{"--file", true}}, 1, 2, cmd_stdin},
      {"triggers", "triggers [--json]", "list the webhook triggers: path, handler, binding version, queue",
       "  --json       the API's JSON instead of the table\n", {{"--json"}}, 0, 0, cmd_triggers},
      {"queue", "queue [--state pending|dead|done|all] [--trigger ID] [--json]",
       "list the trigger queue's events (pending by default)",
       "  --state S    pending (default), dead, done (the last 100) or all\n"
       "  --trigger ID only this trigger's events\n"
       "  --json       the API's JSON instead of the table\n",
       {{"--state", true}, {"--trigger", true}, {"--json"}}, 0, 0, cmd_queue},
      {"dlq", "dlq [--trigger ID] [--json]", "list dead-lettered trigger events (replay them with `dockless replay`)",
       "  --trigger ID only this trigger's events\n"
       "  --json       the API's JSON instead of the table\n",
       {{"--trigger", true}, {"--json"}}, 0, 0, cmd_dlq},
      {"replay", "replay EVENT-ID...", "queue done or dead-lettered trigger events again (attempts from zero)", "",
       {}, 1, kMany, cmd_replay},
      {"upgrade", "upgrade", "re-execute the daemon's installed binary in place; services keep running",
       "The daemon checks that the binary runs, hands its services, logs and sockets to the new\n"
       "image and execs it in the same pid. Waits (up to 60 s) until the new image answers.\n"
       "On failure the running image stays, the error is printed and the exit code is 1.\n",
       {}, 0, 0, cmd_upgrade},
  };
  return table;
}

const Command* find_command(const std::string& name) {
  for (const auto& c : commands())
    if (name == c.name) return &c;
  return nullptr;
}

bool is_global_flag(const std::string& a, std::string* name, std::string* inline_value, bool* has_inline) {
  for (const char* g : {"--socket", "--host", "--token", "--cacert"}) {
    std::size_t n = std::strlen(g);
    if (a == g) {
      *name = g;
      *has_inline = false;
      return true;
    }
    if (a.size() > n && a.compare(0, n, g) == 0 && a[n] == '=') {
      *name = g;
      *inline_value = a.substr(n + 1);
      *has_inline = true;
      return true;
    }
  }
  return false;
}

std::optional<Endpoint> choose_endpoint(const Globals& g, std::string* error) {
  auto env = [](const char* n) -> std::string {
    const char* v = std::getenv(n);
    return v ? v : "";
  };
  const std::string cacert = g.cacert.empty() ? env("DOCKLESS_CACERT") : g.cacert;
  auto tcp = [&](const std::string& url) {
    std::optional<Endpoint> ep = Endpoint::parse_host(url, error);
    if (ep) ep->cacert = cacert;
    return ep;
  };
  if (g.host_flag) return tcp(g.host);
  if (g.socket_flag) return Endpoint::unix_socket(g.socket);
  if (!env("DOCKLESS_HOST").empty()) return tcp(env("DOCKLESS_HOST"));
  std::string s = env("DOCKLESS_SOCKET");
  return Endpoint::unix_socket(s.empty() ? kDefaultSocket : s);
}

std::string token_of(const Globals& g) {
  if (!g.token.empty()) return g.token;
  const char* t = std::getenv("DOCKLESS_TOKEN");
  return t ? t : "";
}

}  // namespace

bool parse_command_line(const std::vector<std::string>& argv, CommandLine* out) {
  bool rest_literal = false;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    std::string name, value;
    bool has_inline = false;
    if (!rest_literal && is_global_flag(a, &name, &value, &has_inline)) {
      if (!has_inline) {
        if (i + 1 >= argv.size()) {
          std::fprintf(stderr, "dockless: %s needs a value\n", name.c_str());
          return false;
        }
        value = argv[++i];
      }
      if (name == "--socket") {
        out->globals.socket = value;
        out->globals.socket_flag = true;
      } else if (name == "--host") {
        out->globals.host = value;
        out->globals.host_flag = true;
      } else if (name == "--cacert") {
        out->globals.cacert = value;
      } else {
        out->globals.token = value;
      }
      continue;
    }
    if (out->command.empty()) {
      out->command = a;
      // serve, check-config and export parse their own flags (serve has its own --socket).
      if (a == "serve" || a == "check-config" || a == "export") {
        out->args.assign(argv.begin() + static_cast<std::ptrdiff_t>(i) + 1, argv.end());
        return true;
      }
      continue;
    }
    if (a == "--") rest_literal = true;
    out->args.push_back(a);
  }
  return true;
}

std::optional<Flags> parse_flags(const std::string& command, const std::vector<std::string>& args,
                                 const std::vector<FlagSpec>& specs) {
  Flags f;
  bool literal = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (literal || a.size() < 2 || a[0] != '-') {
      f.positional.push_back(a);
      continue;
    }
    if (a == "--") {
      literal = true;
      continue;
    }
    if (a == "-h" || a == "--help") {
      f.help = true;
      continue;
    }
    std::string flag = a, value;
    bool has_inline = false;
    if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      flag = a.substr(0, eq);
      value = a.substr(eq + 1);
      has_inline = true;
    }
    const FlagSpec* match = nullptr;
    std::string key;
    for (const auto& s : specs) {
      std::string names = s.names;
      std::size_t pos = 0;
      while (pos < names.size()) {
        std::size_t end = names.find(' ', pos);
        if (end == std::string::npos) end = names.size();
        std::string n = names.substr(pos, end - pos);
        if (n == flag) match = &s;
        key = n;
        pos = end + 1;
      }
      if (match) break;
    }
    if (!match) return usage_error(command, "unknown option \"" + a + "\""), std::nullopt;
    key = key.substr(key.find_first_not_of('-'));
    if (match->value) {
      if (!has_inline) {
        if (i + 1 >= args.size()) return usage_error(command, flag + " needs a value"), std::nullopt;
        value = args[++i];
      }
    } else if (has_inline) {
      return usage_error(command, flag + " takes no value"), std::nullopt;
    }
    f.values[key] = value;
  }
  return f;
}

int usage_error(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "dockless %s: %s\n", command.c_str(), message.c_str());
  if (const Command* c = find_command(command))
    std::fprintf(stderr, "usage: dockless %s\n", c->synopsis);
  return kUsage;
}

bool is_client_command(const std::string& command) { return find_command(command) != nullptr; }

int run_client(const CommandLine& cl) {
  const Command* c = find_command(cl.command);
  if (!c) return usage_error(cl.command, "unknown command");
  std::optional<Flags> flags = parse_flags(c->name, cl.args, c->flags);
  if (!flags) return kUsage;
  if (flags->help) {
    print_command_help(c->name, stdout);
    return kOk;
  }
  std::size_t n = flags->positional.size();
  if (n < c->min_args) return usage_error(c->name, c->min_args == 1 ? "missing NAME" : "missing arguments");
  if (n > c->max_args) return usage_error(c->name, "too many arguments");
  std::string error;
  std::optional<Endpoint> ep = choose_endpoint(cl.globals, &error);
  if (!ep) return usage_error(c->name, "--host: " + error);
  Context ctx{HttpClient(std::move(*ep), token_of(cl.globals)), c->name};
  return c->run(ctx, *flags);
}

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: dockless [--socket PATH | --host http://IP:PORT] [--token TOKEN] COMMAND [ARGS]\n"
               "\n"
               "The daemon:\n"
               "  %-30s %s\n  %-30s %s\n  %-30s %s\n  %-30s %s\n\n",
               "serve [--config FILE] [...]", "run the daemon (dockless serve --help)",
               "check-config [--plan] [FILE]", "validate a config file without running anything",
               "export --format F [NAME...]", "the config as compose, systemd units or a nomad job",
               "version", "print the client's version (and whether the daemon answers)");
  std::fprintf(out, "Services (talk to the daemon):\n");
  for (const auto& c : commands()) {
    if (std::strlen(c.synopsis) <= 30) std::fprintf(out, "  %-30s %s\n", c.synopsis, c.summary);
    else std::fprintf(out, "  %s\n  %-30s %s\n", c.synopsis, "", c.summary);
  }
  std::fputs(
      "\n"
      "Global options (before or after the command):\n"
      "  --socket PATH     the daemon's unix socket (env DOCKLESS_SOCKET;\n"
      "                    default /run/dockless/dockless.sock)\n"
      "  --host URL        talk TCP instead: http://IP:PORT or https://HOST:PORT (env DOCKLESS_HOST)\n"
      "  --cacert FILE     the CA (PEM) that an https daemon's certificate must chain to\n"
      "                    (env DOCKLESS_CACERT; default: the system's trust store)\n"
      "  --token TOKEN     sent as \"Authorization: Bearer TOKEN\" (env DOCKLESS_TOKEN)\n"
      "\n"
      "Exit codes:\n"
      "  0  ok\n"
      "  1  the daemon said no (an HTTP 4xx/5xx other than 404, 401 included: no or a wrong --token)\n"
      "  2  usage error\n"
      "  3  cannot reach the daemon (not running, wrong --socket/--host, timed out)\n"
      "  4  not found (no such service)\n"
      "With several names (start/stop/restart/rm), each is tried and the exit code is the\n"
      "first failure's.\n"
      "\n"
      "`dockless help COMMAND` or `dockless COMMAND --help` describes a command.\n",
      out);
}

bool print_command_help(const std::string& command, std::FILE* out) {
  if (command == "serve") {
    std::fputs(
        "usage: dockless serve [--config FILE] [--data-dir DIR] [--listen ADDR:PORT] [--socket PATH]\n"
        "                      [--cert PEM --key PEM]\n"
        "run the daemon until SIGTERM/SIGINT; SIGHUP reloads the config (and the TLS certificate)\n"
        "--cert/--key serve HTTPS on the TCP port (the unix socket stays plain)\n"
        "(env: DOCKLESS_CONFIG, DOCKLESS_DATA_DIR, DOCKLESS_LISTEN, DOCKLESS_SOCKET, DOCKLESS_CERT, DOCKLESS_KEY)\n",
        out);
    return true;
  }
  if (command == "check-config") {
    std::fputs("usage: dockless check-config [--plan [--json]] [FILE]\nvalidate a config file (default: DOCKLESS_CONFIG or "
               DOCKLESS_DEFAULT_CONFIG ") without running anything; exit 1 on errors\n"
               "  --plan    then print what a reload would do: the running daemon's dry run\n"
               "            (`dockless reload --dry-run`, for the config file the daemon reads);\n"
               "            with no daemon reachable, the plan of a first start of FILE\n"
               "  --json    the plan as JSON (with --plan)\n",
               out);
    return true;
  }
  if (command == "export") {
    std::fputs("usage: dockless export --format compose|systemd|nomad [--config FILE] [--output DIR] [NAME...]\n"
               "write the config's services (default: all) as Docker Compose YAML, systemd units or a Nomad\n"
               "job (JSON), from the config file (default: DOCKLESS_CONFIG or " DOCKLESS_DEFAULT_CONFIG "), offline\n"
               "  --output DIR  one file per unit or job in DIR instead of standard output\n"
               "What the target cannot express is listed on stderr (\"not exported: ...\").\n",
               out);
    return true;
  }
  if (command == "version") {
    std::fputs("usage: dockless version\nprint the client's version, then whether the daemon answers\n", out);
    return true;
  }
  const Command* c = find_command(command);
  if (!c) return false;
  std::fprintf(out, "usage: dockless %s\n%s\n%s", c->synopsis, c->summary, c->details);
  return true;
}

void print_version(const Globals& g) {
  std::printf("dockless %s (client)\n", DOCKLESS_VERSION);
  std::fflush(stdout);
  std::string error;
  std::optional<Endpoint> ep = choose_endpoint(g, &error);
  if (!ep) {
    std::printf("daemon: %s\n", error.c_str());
    return;
  }
  HttpClient client(*ep, token_of(g));
  HttpRequest req;
  req.target = "/health";
  auto [resp, err] = client.request(req);
  if (!resp) {
    std::printf("daemon: not reachable (%s)\n", err.message.c_str());
    return;
  }
  std::string version;
  auto j = nlohmann::json::parse(resp->body, nullptr, false);
  if (j.is_object() && j.contains("version") && j["version"].is_string()) version = j["version"];
  if (success(resp->status))
    std::printf("daemon: %s at %s\n", version.empty() ? "running" : ("dockless " + version).c_str(),
                ep->describe().c_str());
  else
    std::printf("daemon: answered %d at %s\n", resp->status, ep->describe().c_str());
}

}  // namespace tools::cli
