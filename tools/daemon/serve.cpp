#include "tools/daemon/serve.hpp"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <optional>
#include <ctime>

#include "actors/config_inputs.hpp"
#include "actors/event_log.hpp"
#include "actors/service_env.hpp"
#include "actors/supervisor.hpp"
#include "actors/trigger_dispatcher.hpp"
#include "config/config.hpp"
#include "dockless_config.h"
#include "http/api/api.hpp"
#include "http/auth.hpp"
#include "http/auth_keys.hpp"
#include "http/api/triggers.hpp"
#include "http/dashboard/dashboard.hpp"
#include "http/server.hpp"
#include "runtime/fd.hpp"
#include "runtime/user_db.hpp"
#include "runtime/fs.hpp"
#include "runtime/reactor.hpp"
#include "runtime/scope.hpp"
#include "runtime/signals.hpp"
#include "tools/daemon/daemon_log.hpp"
#include "tools/daemon/sd_env.hpp"
#include "tools/daemon/sd_notify.hpp"
#include "tools/daemon/upgrade.hpp"

namespace tools {

namespace {

using runtime::Task;

struct Loaded {
  std::optional<config::Config> config;
  std::vector<config::Error> errors;
  bool from_file = false;
};

// Reads the config (or the embedded defaults when no file exists and none was
// named), then applies the command-line overrides.
Loaded load_config(const ServeOptions& opts) {
  Loaded out;
  struct stat st{};
  if (::stat(opts.config_path.c_str(), &st) != 0 && errno == ENOENT && !opts.config_explicit) {
    out.config = config::embedded_defaults();
  } else {
    config::ParseResult r = config::parse_file(opts.config_path, actors::host_config_inputs());
    if (!r.ok()) {
      out.errors = std::move(r.errors);
      return out;
    }
    out.config = std::move(r.config);
    out.from_file = true;
  }
  if (!opts.data_dir.empty()) out.config->data_dir = opts.data_dir;
  if (!opts.cert.empty()) out.config->http.cert = opts.cert;
  if (!opts.key.empty()) out.config->http.key = opts.key;
  if (!opts.listen.empty()) {
    auto colon = opts.listen.rfind(':');
    std::string host = colon == std::string::npos ? "" : opts.listen.substr(0, colon);
    std::string port = colon == std::string::npos ? opts.listen : opts.listen.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    char* end = nullptr;
    long p = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || p < 0 || p > 65535) {
      out.errors.push_back({"--listen", 0, 0, "expected ADDR:PORT or :PORT, got \"" + opts.listen + "\""});
      out.config.reset();
      return out;
    }
    out.config->listen_port = static_cast<std::uint16_t>(p);
    if (!host.empty()) out.config->listen_address = host;
  }
  return out;
}

void print_errors(const std::vector<config::Error>& errors) {
  for (const auto& e : errors) log(Level::error, e.to_string());
}

// One daemon per data_dir: a second one would fight the first over every service.
std::optional<runtime::Fd> lock_data_dir(const std::string& dir, std::string* error) {
  runtime::Fd fd(::open((dir + "/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) {
    *error = "open " + dir + "/.lock: " + std::strerror(errno);
    return std::nullopt;
  }
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    *error = errno == EWOULDBLOCK ? "another dockless daemon is using " + dir
                                  : std::string("flock: ") + std::strerror(errno);
    return std::nullopt;
  }
  return fd;
}

// The HTTPS certificate named by the config (after flag and env overrides).
// Neither cert nor key: plain HTTP (a null context, no error).
http::TlsContext::Loaded load_tls(const config::HttpConfig& http) {
  if (http.cert.empty() && http.key.empty()) return {};
  if (http.cert.empty() || http.key.empty()) {
    http::TlsContext::Loaded out;
    out.error = http.cert.empty() ? "a TLS key (" + http.key + ") needs a certificate: --cert, DOCKLESS_CERT or [http] cert"
                                  : "a TLS certificate (" + http.cert + ") needs a key: --key, DOCKLESS_KEY or [http] key";
    return out;
  }
  return http::TlsContext::load(http.cert, http.key);
}

void log_tls(const http::TlsContext& tls, const std::string& what) {
  log(Level::info, what + " " + tls.subject() + " sha256 " + tls.fingerprint());
}

// SIGHUP's certificate reload, done before anything else of the reload: a
// certificate that does not load fails the reload as a config error would, and
// the running certificate stays. TLS is switched on or off only at start.
// Returns the new context (null: none to install) or an error.
http::TlsContext::Loaded reload_tls(const http::Server& server, const config::HttpConfig& http) {
  if (!server.tls()) {
    if (!http.cert.empty() || !http.key.empty()) log(Level::warn, "TLS is switched on only at start; still plain HTTP");
    return {};
  }
  http::TlsContext::Loaded next = load_tls(http);
  if (!next.context && next.error.empty())
    next.error = "no certificate configured; TLS is switched off only at start";
  return next;
}

nlohmann::json tls_event(const http::TlsContext& tls) {
  nlohmann::json j = nlohmann::json::object();
  j["subject"] = tls.subject();
  j["fingerprint"] = tls.fingerprint();
  return j;
}

// JSON for the reload outcome, built outside the coroutine (GCC 12 cannot compile a
// braced list of string literals inside one).
nlohmann::json reload_json(const actors::ReloadOutcome& out) {
  nlohmann::json j = nlohmann::json::object();
  j["ok"] = out.ok;
  j["added"] = out.added;
  j["removed"] = out.removed;
  j["changed"] = out.changed;
  return j;
}

nlohmann::json reload_failed_json(const std::vector<config::Error>& errors) {
  nlohmann::json j = nlohmann::json::object();
  j["ok"] = false;
  nlohmann::json list = nlohmann::json::array();
  for (const auto& e : errors) list.push_back(e.to_string());
  j["errors"] = std::move(list);
  return j;
}

// API keys from the environment, the config's keys file (relative to the config
// file's directory) or the first-boot key in data_dir.
std::optional<http::auth::LoadedKeys> load_api_keys(const ServeOptions& opts, const config::Config& cfg,
                                                    std::string* error) {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  http::auth::KeySource src;
  src.env_keys = env("DOCKLESS_API_KEYS");
  src.env_hmac = env("DOCKLESS_HMAC_SECRET");
  src.keys_file = cfg.http.api_keys_file;
  if (!src.keys_file.empty() && src.keys_file.front() != '/')
    src.keys_file = (std::filesystem::path(opts.config_path).parent_path() / src.keys_file).string();
  src.data_dir = cfg.data_dir;
  return http::auth::load_keys(src, error);
}

http::auth::Policy auth_policy(const config::Config& cfg) {
  http::auth::Policy p;
  p.public_read = cfg.http.public_read;
  p.allowed_origins = cfg.http.allowed_origins;
  return p;
}

void log_keys(const http::auth::LoadedKeys& keys) {
  if (keys.created)
    log(Level::info, "no API key configured: created an admin key in " + keys.where +
                         " (mode 0600; send it as \"Authorization: Bearer <key>\")");
  else
    log(Level::info, "API keys: " + std::to_string(keys.keys.size()) + " from " + keys.where);
}

// SIGHUP and POST /v1/reload: reparse the config file and apply it as a diff. An
// invalid config keeps the running one.
Task<nlohmann::json> reload_config(const ServeOptions& opts, actors::Supervisor& supervisor,
                                   http::Server& server, actors::EventLog& events,
                                   http::auth::Gate& gate, http::TriggerRoutes& triggers) {
  const http::Router& router = server.router();
  log(Level::info, "reloading " + opts.config_path);
  Loaded next = load_config(opts);
  // The trigger set is swapped before the services change: a trigger that cannot be installed
  // fails the reload as a whole, like any other config error.
  if (next.config)
    for (std::string& e : triggers.install(next.config->triggers, router)) {
      next.errors.push_back({opts.config_path, 0, 0, std::move(e)});
      next.config.reset();
    }
  if (!next.config) {
    print_errors(next.errors);
    supervisor.reload_failed(next.errors);
    log(Level::warn, "reload failed; the running config stays");
    co_return reload_failed_json(next.errors);
  }
  if (next.config->data_dir != supervisor.config().data_dir ||
      next.config->listen_port != supervisor.config().listen_port ||
      next.config->listen_address != supervisor.config().listen_address)
    log(Level::warn, "data_dir and listen settings change only on restart");
  if (next.config->http.max_body_bytes != supervisor.config().http.max_body_bytes ||
      next.config->http.max_connections_per_client != supervisor.config().http.max_connections_per_client)
    log(Level::warn, "[http] max_body_bytes and max_connections_per_client change only on restart");
  http::TlsContext::Loaded tls = reload_tls(server, next.config->http);
  if (!tls.error.empty()) {
    const std::vector<config::Error> errors{{"TLS", 0, 0, tls.error}};
    print_errors(errors);
    supervisor.reload_failed(errors);
    log(Level::warn, "reload failed; the running config and certificate stay");
    co_return reload_failed_json(errors);
  }
  if (tls.context) {
    log_tls(*tls.context, "TLS certificate reloaded:");
    events.append(std::nullopt, "tls_reloaded", tls_event(*tls.context));
    server.set_tls(tls.context);
  }
  next.config->data_dir = supervisor.config().data_dir;
  next.config->listen_port = supervisor.config().listen_port;
  next.config->listen_address = supervisor.config().listen_address;
  // Keys and the access policy follow the new config; unusable keys keep the old ones.
  gate.set_policy(auth_policy(*next.config));
  std::string key_error;
  if (auto keys = load_api_keys(opts, *next.config, &key_error)) {
    log_keys(*keys);
    gate.set_keys(std::move(keys->keys));
  } else {
    log(Level::warn, "API keys not reloaded (the running ones stay): " + key_error);
  }
  actors::ReloadOutcome out = co_await supervisor.apply(std::move(*next.config));
  log(Level::info, "reload applied: " + std::to_string(out.added.size()) + " added, " +
                       std::to_string(out.removed.size()) + " removed, " +
                       std::to_string(out.changed.size()) + " changed");
  nlohmann::json j = reload_json(out);
  if (tls.context) j["tls"] = tls_event(*tls.context);
  co_return j;
}

// Every reload (SIGHUP, POST /v1/reload) is announced to the service manager. The
// reload task is lazy: it starts at the co_await, after RELOADING=1 has gone out.
Task<nlohmann::json> announced_reload(SdNotifier& sd, Task<nlohmann::json> reload) {
  sd.reloading();
  nlohmann::json out = co_await std::move(reload);
  sd.ready();
  co_return out;
}

http::ServerLimits server_limits(const config::Config& cfg) {
  http::ServerLimits limits;
  limits.max_body_bytes = cfg.http.max_body_bytes;
  limits.max_connections_per_client = cfg.http.max_connections_per_client;
  return limits;
}

// The unix socket skips authentication: its owner and mode are the access
// control. Root-owned, group "dockless" when that group exists (its members use
// the CLI without a key), mode 0660 (set by listen_unix). Returns a note for the log.
std::string trust_unix_socket(const std::string& path) {
  if (::geteuid() != 0) return " (owned by this user)";
  const std::optional<gid_t> g = runtime::find_group("dockless");
  const gid_t gid = g.value_or(0);
  if (::chown(path.c_str(), 0, gid) != 0)
    return std::string(" (chown failed: ") + std::strerror(errno) + ")";
  return g ? " (root:dockless 0660)" : " (root:root 0660; create group dockless to share it)";
}

bool bind_unix_listener(http::Server& server, const ServeOptions& opts);

// The listeners come up before boot, so a port clash fails the daemon at once,
// before any service is started (and would have to be stopped again).
bool bind_listeners(http::Server& server, const ServeOptions& opts, const config::Config& cfg,
                    ManagerEnvironment& manager, std::optional<Inheritance>& inherited) {
  if (inherited && !inherited->listeners.empty()) {
    // The same sockets the previous image listened on: never closed, so clients that
    // connected during the exec are in their backlog and are served now.
    log(Level::info, "API listeners handed over by the previous image: " +
                         std::to_string(inherited->listeners.size()));
    server.resume(std::exchange(inherited->listeners, {}));
    return true;
  }
  const AdoptedListeners adopted = adopt_listeners(server, manager.listen_fds);
  if (adopted.tcp) return adopted.unix_socket || bind_unix_listener(server, opts);
  auto port = server.listen_tcp(cfg.listen_address, cfg.listen_port);
  if (!port) {
    log(Level::error, "cannot listen on " + cfg.listen_address + ":" + std::to_string(cfg.listen_port) +
                          ": " + port.message());
    return false;
  }
  log(Level::info, std::string(server.tls() ? "HTTPS API on " : "API on ") + cfg.listen_address + ":" +
                       std::to_string(*port));
  return adopted.unix_socket || bind_unix_listener(server, opts);
}

bool bind_unix_listener(http::Server& server, const ServeOptions& opts) {
  if (opts.socket_path.empty()) return true;
  const std::string parent = std::filesystem::path(opts.socket_path).parent_path().string();
  if (!parent.empty()) {
    if (auto r = runtime::make_dirs(parent, 0755); !r) {
      log(Level::warn, "cannot create " + parent + ": " + r.message() + "; no unix socket");
      return true;
    }
  }
  if (auto r = server.listen_unix(opts.socket_path, 0660); !r)
    log(Level::warn, "cannot listen on " + opts.socket_path + ": " + r.message() + "; no unix socket");
  else
    log(Level::info, "API on unix:" + opts.socket_path + trust_unix_socket(opts.socket_path));
  return true;
}

Task<int> daemon_main(const ServeOptions& opts, config::Config cfg, bool from_file,
                      std::shared_ptr<const http::TlsContext> tls, std::vector<http::auth::Key> keys,
                      ManagerEnvironment& manager, std::optional<Inheritance> inherited) {
  auto signals = runtime::SignalSet::open({SIGTERM, SIGINT, SIGHUP, SIGUSR2});
  UpgradeState upgrade_state;
  if (inherited) {
    upgrade_state.image = inherited->image + 1;
    upgrade_state.from_version = inherited->from_version;
  }
  if (!signals) {
    log(Level::error, "signalfd: " + signals.message());
    co_return 1;
  }
  // Declared before the server: its connection actors call the gate until stop() returns.
  http::auth::Gate gate;
  gate.set_keys(std::move(keys));
  gate.set_policy(auth_policy(cfg));
  http::Server server(server_limits(cfg));
  server.set_tls(std::move(tls));
  server.set_filter([&gate](const http::Request& req, http::Headers& extra) {
    return gate.check(req, static_cast<std::int64_t>(std::time(nullptr)), extra);
  });
  // The fd store's pipes come back with the listeners (LISTEN_FDS): taken out first.
  std::map<std::string, runtime::Fd> stored_pipes = take_stored_pipes(manager.listen_fds);
  if (!bind_listeners(server, opts, cfg, manager, inherited)) {
    co_await server.stop(std::chrono::milliseconds(0));
    co_return 1;
  }
  auto events_or = actors::EventLog::open(cfg.data_dir + "/events.log");
  if (!events_or) {
    log(Level::error, "open " + cfg.data_dir + "/events.log: " + events_or.message());
    co_await server.stop(std::chrono::milliseconds(0));
    co_return 1;
  }
  std::unique_ptr<actors::EventLog> events = std::move(events_or).value();
  // The writer is a child of this frame (a Scope, not a detached actor): it must
  // finish before `events` is destroyed at the end of this function.
  std::stop_source events_stop;
  runtime::Scope event_writer;
  event_writer.spawn(events->run(events_stop.get_token()), "event-log");

  SdNotifier sd(manager.notify_socket);
  if (!sd.error().empty()) log(Level::warn, sd.error());
  actors::Supervisor::Options sopts;
  sopts.data_dir = cfg.data_dir;
  sopts.base_env = actors::current_environment();
  // Under systemd the pipes' daemon ends also live in the manager's fd store, so a
  // crash of the daemon leaves every service's output a reader (README).
  if (sd.enabled())
    sopts.pipes_changed = [&sd](const std::string& name, int out, int err, int in) {
      sd.store_fd(stored_pipe_name(name, "stdout"), out);
      sd.store_fd(stored_pipe_name(name, "stderr"), err);
      sd.store_fd(stored_pipe_name(name, "stdin"), in);
    };
  for (const auto& [name, fd] : stored_pipes) sd.note_stored(name);
  actors::Supervisor supervisor(sopts, *events);
  supervisor.set_stored_pipes(std::move(stored_pipes));

  // Routes go in before boot: /readyz answers 503 while boot restores services.
  http::ApiContext api;
  api.supervisor = &supervisor;
  api.events = events.get();
  api.server = &server;
  actors::TriggerDispatcher dispatcher({cfg.data_dir, actors::current_environment()}, supervisor, *events);
  http::TriggerRoutes triggers(dispatcher);
  // Webhook deliveries carry their own signatures (checked by TriggerRoutes), not API keys.
  gate.set_public_matcher(
      [&triggers](std::string_view method, std::string_view path) { return triggers.claims(method, path); });
  api.reload = [&opts, &supervisor, &server, &events, &gate, &triggers, &sd]() {
    return announced_reload(sd, reload_config(opts, supervisor, server, *events, gate, triggers));
  };
  http::register_api(server.router(), api);
  server.router().post("/v1/upgrade", [&supervisor, &upgrade_state](http::Request&) {
    return upgrade_request(supervisor, upgrade_state);
  });
  server.router().get("/v1/upgrade", [&upgrade_state](http::Request&) -> Task<http::Response> {
    co_return http::Response::json(200, upgrade_json(upgrade_state));
  });
  http::register_dashboard(server.router());
  triggers.attach(server.router());
  // config/ already refused every path and setting that could fail here; what is left
  // (data_dir not writable) leaves the daemon serving without triggers rather than down.
  for (const std::string& e : triggers.install(cfg.triggers, server.router())) log(Level::error, e);

  events->append(std::nullopt, "daemon_started",
                 {{"version", DOCKLESS_VERSION}, {"pid", ::getpid()},
                  {"config", from_file ? opts.config_path : "(embedded defaults)"},
                  {"data_dir", cfg.data_dir},
                  {"ring", runtime::reactor().features().describe()}});
  if (inherited) {
    nlohmann::json up = nlohmann::json::object();
    up["from_version"] = inherited->from_version;
    up["image"] = upgrade_state.image;
    up["services"] = inherited->services.size();
    events->append(std::nullopt, "upgraded", up);
  }
  const std::size_t service_count = cfg.services.size();
  std::optional<actors::Inheritance> inherited_services;
  if (inherited) inherited_services = std::move(inherited->services);
  co_await supervisor.boot(std::move(cfg), std::move(inherited_services));
  log(Level::info, "supervising " + std::to_string(service_count) + " configured service(s)");
  bool stopping = false;
  runtime::Scope manager_link;  // READY=1, STATUS=, watchdog pings: until the very end
  if (sd.enabled())
    manager_link.spawn(run_manager_link(sd, supervisor, manager.watchdog, stopping, manager_link.token()),
                       "sd-link");

  while (true) {
    runtime::Result<int> sig = co_await signals->next();
    if (!sig) {
      log(Level::error, "signal wait failed: " + sig.message());
      break;
    }
    if (*sig == SIGHUP) {
      log(Level::info, "SIGHUP");
      (void)co_await api.reload();
      continue;
    }
    if (*sig == SIGUSR2) {
      // Returns only when the exec did not happen; supervision never stopped.
      std::string error = co_await upgrade(server, supervisor, *events, manager, upgrade_state);
      ++upgrade_state.failures;
      upgrade_state.last_error = error;
      log(Level::error, "upgrade failed, this image keeps running: " + error);
      nlohmann::json ev = nlohmann::json::object();
      ev["error"] = error;
      events->append(std::nullopt, "upgrade_failed", ev);
      continue;
    }
    log(Level::info, std::string(sigabbrev_np(*sig)) + ": stopping services");
    break;
  }
  // Read by run_manager_link, which holds a reference (the analyzer cannot see across the coroutine).
  stopping = true;  // NOLINT(clang-analyzer-deadcode.DeadStores)
  sd.stopping();
  // Stop accepting and drain in-flight requests (streams end at once), then stop
  // the services: nothing can reach the supervisor once it is shutting down.
  co_await server.stop();
  co_await dispatcher.shutdown();
  events->append(std::nullopt, "daemon_stopping", {});
  co_await supervisor.shutdown();
  events->append(std::nullopt, "daemon_stopped", {});
  co_await events->flush();
  events_stop.request_stop();
  co_await event_writer.join();
  manager_link.request_stop();
  co_await manager_link.join();
  co_return 0;
}

}  // namespace

int serve(const ServeOptions& opts) {
  // First, before anything copies the environment for the services.
  ManagerEnvironment manager = take_manager_environment();
  for (const auto& w : manager.warnings) log(Level::warn, w);
  // An upgrade's new image: the previous one stripped the manager's variables, so
  // they come from the blob, with the services and the listeners.
  std::string inherit_error;
  std::optional<Inheritance> inherited = take_inheritance(&inherit_error);
  if (!inherit_error.empty()) log(Level::error, "upgrade hand-over unreadable, starting afresh: " + inherit_error);
  if (inherited) {
    log(Level::info, "resuming after an upgrade from dockless " + inherited->from_version + " (" +
                         std::to_string(inherited->services.size()) + " services)");
    if (manager.notify_socket.empty()) manager.notify_socket = inherited->notify_socket;
    if (manager.watchdog.count() == 0) manager.watchdog = inherited->watchdog;
  }
  Loaded loaded = load_config(opts);
  if (!loaded.config) {
    print_errors(loaded.errors);
    log(Level::error, "not starting: the config is invalid");
    return 2;
  }
  config::Config cfg = std::move(*loaded.config);
  // Before anything starts: a TLS setup that cannot work is a config error.
  http::TlsContext::Loaded tls = load_tls(cfg.http);
  if (!tls.error.empty()) {
    log(Level::error, tls.error);
    log(Level::error, "not starting: the TLS certificate or key is unusable");
    return 2;
  }
  if (tls.context) log_tls(*tls.context, "TLS certificate");
  switch (cfg.log_level) {
    case config::LogLevel::debug: set_min_level(Level::debug); break;
    case config::LogLevel::info: set_min_level(Level::info); break;
    case config::LogLevel::warn: set_min_level(Level::warn); break;
    case config::LogLevel::error: set_min_level(Level::error); break;
  }
  if (!loaded.from_file)
    log(Level::info, "no config at " + opts.config_path + "; running on embedded defaults");
  for (const char* sub : {"", "/logs", "/services"}) {
    if (auto r = runtime::make_dirs(cfg.data_dir + sub, 0755); !r) {
      log(Level::error, "cannot create " + cfg.data_dir + sub + ": " + r.message());
      return 1;
    }
  }
  std::string lock_error;
  auto lock = lock_data_dir(cfg.data_dir, &lock_error);
  if (!lock) {
    log(Level::error, lock_error);
    return 1;
  }
  log(Level::info, "dockless " DOCKLESS_VERSION " data in " + cfg.data_dir);
  // Never an open admin API on the network: without usable keys the daemon does not start.
  std::string key_error;
  auto keys = load_api_keys(opts, cfg, &key_error);
  if (!keys) {
    log(Level::error, "not starting: " + key_error);
    return 2;
  }
  log_keys(*keys);

  // A write to a closed socket or pipe is an EPIPE value, never a fatal signal.
  ::signal(SIGPIPE, SIG_IGN);
  // Children must stay waitable: an inherited SIG_IGN would make the kernel reap them.
  ::signal(SIGCHLD, SIG_DFL);

  try {
    runtime::Reactor reactor;
    const bool from_file = loaded.from_file;
    return reactor.run(
        daemon_main(opts, std::move(cfg), from_file, std::move(tls.context), std::move(keys->keys), manager,
                    std::move(inherited)));
  } catch (const std::exception& e) {
    log(Level::error, std::string("fatal: ") + e.what());
    return 1;
  }
}

}  // namespace tools
