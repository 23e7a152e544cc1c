// config: the Dockless configuration schema and its parser.
//
// TOML in, a typed Config or a complete list of precise errors out. This folder opens
// nothing itself: the config file, the env files it names and the environment it substitutes
// reach it through Inputs, which the daemon fills from the host (actors/config_inputs.hpp)
// and tests fill from maps. Exceptions stop at the parse boundary: every public function
// returns values.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "config/limits.hpp"
#include "runtime/environment.hpp"

namespace config {

using Duration = std::chrono::milliseconds;

// Looks up a variable of the daemon's environment, for ${VAR}.
using VariableLookup = std::function<std::optional<std::string>(std::string_view)>;
// Reads a whole file (the config, an env_file): its text, or nullopt and the reason
// ("No such file or directory") in *error.
using FileReader = std::function<std::optional<std::string>(const std::string& path, std::string* error)>;

// Everything a parse may read besides the text it is handed.
struct Inputs {
  VariableLookup env;
  FileReader read_file;
  // Reads a secret file (config/secrets.hpp): the daemon's refuses one others may read and
  // says "No such file or directory" for a missing one. Unset: read_file.
  FileReader read_secret_file = {};
};
VariableLookup map_environment(std::map<std::string, std::string> vars);
// Files by path; any other path reads as "No such file or directory".
FileReader map_files(std::map<std::string, std::string> files);

struct SourcePos {
  int line = 0;
  int col = 0;
};

// One problem found in a config: "config.toml:12:1: unknown key ...".
struct Error {
  std::string file;
  int line = 0;
  int col = 0;
  std::string message;
  std::string to_string() const;
};

enum class LogLevel { debug, info, warn, error };
enum class RestartPolicy { no, on_failure, always };
enum class DependencyCondition { started, healthy };
enum class ReadyMode { exec, notify, fd };
// How an operator's restart replaces the running instance (crash restarts are always stop-first).
enum class RestartMode { stop_first, overlap };
// boot: started by the daemon (autostart); connection: the daemon holds the sockets and starts
// the service on the first connection or datagram.
enum class StartOn { boot, connection };

struct Dependency {
  std::string name;
  DependencyCondition condition = DependencyCondition::started;
  SourcePos pos;
};

struct Port {
  std::uint16_t number = 0;  // 0 when automatic
  bool automatic = false;    // "auto": picked at start, passed as $PORT
  SourcePos pos;
};

// One entry of a service's `sockets`: bound by the daemon before the service's first start,
// kept open across its restarts and passed to every instance from fd 3 with LISTEN_FDS,
// LISTEN_PID and LISTEN_FDNAMES (config/sockets.cpp parses it, actors/socket_set.* binds it).
struct Socket {
  enum class Family : std::uint8_t { inet, unix_path };
  enum class Type : std::uint8_t { stream, datagram };
  static constexpr int kDefaultBacklog = 4096;  // SOMAXCONN since Linux 5.4; the kernel caps it
  static constexpr std::size_t kMaxPerService = 32;

  std::string listen;  // as written (after ${VAR} substitution), for messages
  Family family = Family::inet;
  Type type = Type::stream;
  std::string address;  // Family::inet: the IP literal, without brackets
  bool ipv6 = false;
  std::uint16_t port = 0;
  std::string path;  // Family::unix_path: absolute
  std::string name;  // LISTEN_FDNAMES entry: given, else derived ("tcp-8080", "app.sock")
  int backlog = kDefaultBacklog;
  bool reuse_port = false;
  std::uint32_t mode = 0666;  // unix paths
  std::string user;           // unix paths: owner of the socket file (empty: the daemon's)
  std::string group;
  SourcePos pos;

  bool tcp() const { return family == Family::inet && type == Type::stream; }
  bool udp() const { return family == Family::inet && type == Type::datagram; }
  // "tcp 0.0.0.0:8080", "udp [::1]:53", "unix /run/app.sock", "unix-dgram /run/log.sock"
  std::string describe() const;
  // Every setting that changes what is bound, in a stable text form.
  std::string fingerprint() const;
};

struct HealthCheck {
  enum class Kind { exec, http, tcp };
  Kind kind = Kind::exec;
  std::vector<std::string> exec;  // Kind::exec: argv
  std::string url;                // Kind::http: the URL as written (after substitution)
  std::string host;               // Kind::http / Kind::tcp
  std::uint16_t port = 0;         // 0: "$PORT"/"${PORT}" — the service's own port at start time
  std::string path = "/";         // Kind::http
  Duration interval{10'000};
  Duration timeout{2'000};
  Duration start_period{0};
  int retries = 3;
  bool restart_on_unhealthy = false;
};

// `attach = { pid_file = "...", control = false }`: a process Dockless did not start, watched
// through a pidfd (actors/attach_executor.cpp). Its restart policy is fixed: after an exit the
// pid_file is read again every kAttachPoll until it names a new live process.
struct Attach {
  std::string pid_file;  // absolute (a relative one is resolved against the config's directory)
  bool control = false;  // stop and signal act on the pid; otherwise they are refused
  SourcePos pos;
};
inline constexpr Duration kAttachPoll{1'000};

struct ServiceSpec {
  std::string name;
  SourcePos pos;  // of the [services.NAME] table
  std::vector<std::string> command;
  // env_file entries first (in order), then the env table on top.
  runtime::Environment env;
  std::vector<std::string> env_files;  // as resolved against the config file's directory
  std::string working_dir;
  std::string user;
  std::string group;
  RestartPolicy restart = RestartPolicy::on_failure;
  Duration restart_delay{100};
  Duration restart_delay_max{30'000};
  Duration restart_reset_after{60'000};
  int restart_limit = 5;  // 0 = unlimited
  Duration restart_window{10'000};
  int stop_signal = 15;  // SIGTERM
  Duration stop_timeout{10'000};
  std::vector<Dependency> depends_on;
  // The primary port ($PORT): `port`, else the first of `ports`. `ports` lists every port the
  // service claims, the primary one included, each once.
  std::optional<Port> port;
  std::vector<Port> ports;
  // Bound and held by the daemon (their ports are not in `ports`, which the service binds).
  std::vector<Socket> sockets;
  std::optional<HealthCheck> health;
  std::uint64_t log_max_size = 10u << 20;
  int log_keep = 5;
  bool autostart = true;
  bool stdin = false;
  ReadyMode ready = ReadyMode::exec;
  int ready_fd = -1;  // ReadyMode::fd
  Duration ready_timeout{60'000};  // notify/fd: no READY by then → killed, a failed start
  RestartMode restart_mode = RestartMode::stop_first;  // overlap: needs sockets and ready = "notify"
  StartOn start_on = StartOn::boot;                    // connection: needs sockets
  // Stored for the container integration; not interpreted here.
  std::optional<std::string> image;
  std::vector<std::string> docker_args;
  std::vector<std::string> volumes;
  std::optional<std::string> network;
  std::optional<std::string> docker_cli;
  std::optional<Attach> attach;  // set: no command; the process is someone else's
  // Services whose "auto" port this spec references as ${services.NAME.port}; the text is left
  // in place and the supervisor substitutes it once that port is picked.
  std::vector<std::string> port_refs;
  // memory_max, cpu_max, pids_max, ... (config/limits.hpp): written into the service's cgroup.
  ResourceLimits limits;

  // Every setting (not the source position) in a stable text form: equal fingerprints mean a
  // reload does not need to touch the service.
  std::string fingerprint() const;
  bool operator==(const ServiceSpec& other) const { return fingerprint() == other.fingerprint(); }
  // The first TCP socket's port (0: none): $PORT when the service has no `port`.
  std::uint16_t first_tcp_socket_port() const;
};

// What a reload does to a service whose spec went from `running` to `next`: nothing, write
// the new limits into its cgroup in place (nothing else differs), or restart it.
enum class SpecChange { none, limits_only, restart };
SpecChange classify_change(const ServiceSpec& running, const ServiceSpec& next);

struct HttpConfig {
  std::vector<std::string> allowed_origins;
  std::uint64_t max_body_bytes = 10u << 20;
  std::string api_keys_file;
  std::string cert;
  std::string key;
  bool public_read = false;
  std::uint64_t max_connections_per_client = 64;  // per source address; 0 = no cap
  std::uint64_t max_registered_services = 256;    // services added through the API; 0 = no cap
  std::uint64_t max_follow_streams = 256;         // per API key; 0 = no cap
  std::uint64_t max_public_follow_streams = 16;   // per address, requests without a key; 0 = no cap
  Duration drain_timeout{10'000};                 // SIGTERM: in-flight requests get this long
  std::string section = "http";                   // which table set these: "http" or "orchestrator"
};

// [events]: rotation of <data_dir>/events.log (max_age 0: no age limit).
struct EventsConfig {
  std::uint64_t max_size = 8u << 20;
  int keep = 4;  // files in all, the current one included
  Duration max_age{30LL * 24 * 3600 * 1000};
};

// One [[triggers]] entry (config/trigger.cpp). `table` keeps the raw TOML; the fields below
// are its checked interpretation, which the trigger dispatcher (http/api/triggers.*) acts on.
struct Trigger {
  std::string id;
  toml::table table;
  SourcePos pos;

  // run: argv with DOCKLESS_* variables; exec: the same with the event JSON on stdin;
  // post: the event JSON POSTed to post_host:post_port/post_path, or to `service`'s port.
  enum class Action { restart, start, stop, run, exec, post };
  std::string kind = "webhook";      // "webhook", or "a2a-push" (authenticated by the API's keys)
  std::string provider;              // "github", "standard-webhooks" (alias "webhook"), "hmac", "a2a-push"
  std::string path;                  // "/triggers/<id>" unless set
  std::vector<std::string> events;   // match.events; empty: any event
  std::string branch;                // match.branch; empty: any branch
  std::string secret;                // after ${VAR} substitution or resolution; never logged
  std::string secret_ref;            // secrets.signing_secret as written ("" with `secret`)
  std::string secret_source;         // where the secret came from, for the start-up log
  std::string handler;               // `handler` as written ("" with `action`)
  Action action = Action::restart;
  std::string service;               // restart/start/stop; post to service://NAME/path
  std::vector<std::string> run;      // run/exec: argv
  std::string post_host;             // post to http://HOST:PORT/path (numeric or localhost); "" with service
  std::uint16_t post_port = 0;
  std::string post_path = "/";
  Duration timeout{300'000};         // run/exec: killed (process group) at this deadline; post: 30 s unless set
  std::string user;                  // run: the job's user; empty: the default (docs/config.md)
  // Dispatches of one queued event (actors/trigger_queue.hpp) before it is dead-lettered,
  // `backoff` after the first failure, doubling up to kMaxBackoff.
  static constexpr int kMaxAttemptsLimit = 100;
  static constexpr Duration kMaxBackoff{300'000};
  int max_attempts = 5;
  Duration backoff{1'000};
};

struct Config {
  std::string source_file;  // as given to the parser, used in messages
  std::uint16_t listen_port = 3080;
  std::string listen_address = "0.0.0.0";
  std::string data_dir = "/etc/dockless/data";
  std::string secrets_dir;  // files for secrets by reference (config/secrets.hpp); "" = none
  std::vector<std::string> secret_chain;  // the lookup order, described, for the start-up log
  LogLevel log_level = LogLevel::info;
  HttpConfig http;
  EventsConfig events;
  std::vector<Trigger> triggers;
  std::vector<ServiceSpec> services;  // sorted by name

  const ServiceSpec* find(std::string_view name) const;
};

struct ParseResult {
  std::optional<Config> config;  // set only when errors is empty
  std::vector<Error> errors;     // every problem found, in file order
  bool ok() const { return config.has_value() && errors.empty(); }
};

ParseResult parse_file(const std::string& path, const Inputs& in);
ParseResult parse_string(std::string_view toml_text, const std::string& source_name,
                         const std::string& base_dir, const Inputs& in);

// What a single service's parse needs to know of the rest of the config.
struct ServiceContext {
  std::string source_name;  // file name used in messages
  std::string base_dir;     // env_file paths are relative to it
  Inputs inputs;
  // Every known service and its primary port (nullopt: none), for ${services.NAME.port}.
  std::map<std::string, std::optional<Port>, std::less<>> ports;

  static ServiceContext from(const Config& config, const Inputs& in);
};

struct ServiceResult {
  std::optional<ServiceSpec> service;
  std::vector<Error> errors;
  bool ok() const { return service.has_value() && errors.empty(); }
};

// One service table (the HTTP API's POST /v1/services body, `dockless add FILE.toml`).
ServiceResult parse_service(std::string_view name, const toml::table& table,
                            const ServiceContext& ctx);
// A TOML document holding exactly one [services.NAME] table.
ServiceResult parse_service_string(std::string_view toml_text, const ServiceContext& ctx);

// Checks across services: unknown or unhealthy-capable dependencies, port conflicts, cycles.
// parse_* already run it; call it again after adding a service to an existing Config.
std::vector<Error> validate_services(const Config& config);

Config embedded_defaults();

// A LISTEN_FDNAMES entry: 1-255 of [A-Za-z0-9._@+-] (systemd refuses ':' and controls).
bool socket_name_valid(std::string_view name);

// [a-z0-9][a-z0-9_.-]{0,62}: the name becomes a file name.
bool service_name_valid(std::string_view name);

std::string_view to_string(LogLevel level);
std::string_view to_string(RestartPolicy policy);
std::string_view to_string(DependencyCondition condition);

// Value parsers, exposed for the CLI and the HTTP API. On failure they return nullopt and put
// the reason in *error.
std::optional<Duration> parse_duration(std::string_view text, std::string* error);
std::optional<std::uint64_t> parse_size(std::string_view text, std::string* error);
std::optional<int> parse_signal(std::string_view text, std::string* error);
std::optional<std::vector<std::string>> split_command(std::string_view text, std::string* error);

}  // namespace config
