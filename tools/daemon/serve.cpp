#include "tools/daemon/serve.hpp"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "actors/event_log.hpp"
#include "actors/event_type.hpp"
#include "actors/history.hpp"
#include "actors/reload.hpp"
#include "actors/service_env.hpp"
#include "actors/supervisor.hpp"
#include "actors/trigger_dispatcher.hpp"
#include "config/config.hpp"
#include "dockless_config.h"
#include "http/api/api.hpp"
#include "http/api/triggers.hpp"
#include "http/auth.hpp"
#include "http/dashboard/dashboard.hpp"
#include "http/server.hpp"
#include "runtime/fd.hpp"
#include "runtime/reactor.hpp"
#include "runtime/scope.hpp"
#include "runtime/signals.hpp"
#include "tools/daemon/cgroups.hpp"
#include "tools/daemon/daemon_log.hpp"
#include "tools/daemon/listeners.hpp"
#include "tools/daemon/load.hpp"
#include "tools/daemon/reload.hpp"
#include "tools/daemon/sd_env.hpp"
#include "tools/daemon/sd_notify.hpp"
#include "runtime/footprint.hpp"
#include "runtime/ops_wait.hpp"
#include "tools/daemon/upgrade.hpp"

namespace tools {

namespace {

using actors::EventType;
using runtime::Task;

// What serve() has read and opened before the reactor runs.
struct Startup {
  config::Config config;
  bool from_file = false;
  std::shared_ptr<const http::TlsContext> tls;  // null: plain HTTP
  std::vector<http::auth::Key> keys;
};

// The history's tick: 10 s, so that its 360 points are the last hour. DOCKLESS_HISTORY_INTERVAL
// (whole seconds, 1 to 60) changes it; the ring keeps 360 points whatever the tick, so it
// then spans 360 ticks (the tests sample every second).
std::chrono::milliseconds history_interval() {
  const char* v = std::getenv("DOCKLESS_HISTORY_INTERVAL");
  if (!v || !*v) return actors::History::kDefaultInterval;
  char* end = nullptr;
  const long s = std::strtol(v, &end, 10);
  if (*end != '\0' || s < 1 || s > 60) {
    log(Level::warn, std::string("DOCKLESS_HISTORY_INTERVAL=") + v + " is not 1 to 60 seconds; using 10");
    return actors::History::kDefaultInterval;
  }
  return std::chrono::seconds(s);
}

// A second after READY=1; and when the boot's starts outlast that second (hundreds of
// services: READY comes once every start is requested, not done), once more after the
// supervisor has been quiet (no status change) for a whole second, or the code those
// starts ran (spawns, events, snapshots) would stay mapped: ~0.7 MiB at 500 services
// (issue #12). The polls end with the start-up; an idle daemon never wakes for them.
// Each release is the loop's last act before it sleeps (runtime/footprint.hpp).
Task<void> release_after_boot(const actors::Supervisor& supervisor, std::stop_token stop) {
  constexpr int kMaxPolls = 60;
  std::uint64_t seen = supervisor.generation();
  for (int poll = 0; poll < kMaxPolls; ++poll) {
    runtime::Result<int> slept = co_await runtime::sleep_for(std::chrono::seconds(1)).stop_on(stop);
    if (!slept) co_return;
    const bool quiet = supervisor.generation() == seen;
    seen = supervisor.generation();
    if (quiet) break;
    if (poll == 0) runtime::reactor().once_before_sleep(&runtime::release_startup_pages_now);
  }
  // Logged first: a log line written after the release would fault the logger back in.
  log(Level::info, "start-up done: releasing the pages only start-up used");
  runtime::reactor().once_before_sleep(&runtime::release_startup_pages_now);
}

// The running daemon: everything daemon_main's steps build, as members. They are destroyed
// in reverse order of declaration, and that order is load-bearing:
//  - the gate outlives the server: the server's connection actors call it until stop() returns;
//  - the event log outlives everything that appends to it (supervisor, dispatcher), and its
//    writer (a child Scope, not a detached actor) is joined in shut_down(), before the log is
//    destroyed;
//  - the service-manager link (READY=1, STATUS=, watchdog pings) is joined last of all.
class Daemon {
 public:
  Daemon(const ServeOptions& opts, Startup& start, ManagerEnvironment& manager, std::optional<Inheritance> inherited,
         const runtime::CgroupTree* cgroups)
      : opts_(opts), manager_(manager), cgroups_(cgroups), inherited_(std::move(inherited)), server_(server_limits(start.config)),
        sd_(manager.notify_socket) {
    if (inherited_) {
      upgrade_.image = inherited_->image + 1;
      upgrade_.from_version = inherited_->from_version;
    }
    gate_.set_keys(std::move(start.keys));
    gate_.set_policy(auth_policy(start.config));
    server_.set_tls(std::move(start.tls));
    server_.set_filter([this](http::Request& req, http::Headers& extra) {
      return gate_.check(req, static_cast<std::int64_t>(std::time(nullptr)), extra, &req.principal);
    });
  }
  // Routes, filters and actors hold `this`.
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // The API's sockets, before boot (a port clash fails the daemon before any service runs);
  // the fd store's pipes come back with the listeners (LISTEN_FDS) and are taken out first.
  bool start_listeners(const config::Config& cfg) {
    stored_sockets_ = take_stored_sockets(manager_.listen_fds, &stored_socket_names_);
    stored_pipes_ = take_stored_pipes(manager_.listen_fds);
    return bind_listeners(server_, opts_, cfg, manager_, inherited_);
  }

  bool open_event_log(const config::Config& cfg) {
    const std::string& data_dir = cfg.data_dir;
    auto events = actors::EventLog::open(data_dir + "/events.log", actors::EventLog::kDefaultRingCapacity,
                                         event_log_limits(cfg));
    if (!events) {
      log(Level::error, "open " + data_dir + "/events.log: " + events.message());
      return false;
    }
    events_ = std::move(events).value();
    event_writer_.spawn(events_->run(events_stop_.get_token()), "event-log");
    return true;
  }

  // The supervisor, the trigger dispatcher, the reload and its participants, and every
  // route. Routes go in before boot: /readyz answers 503 while boot restores services.
  void create_supervisor(const config::Config& cfg);

  Task<void> boot_supervisor(config::Config cfg, bool from_file);

  // READY=1, then STATUS= and watchdog pings until the very end.
  void notify_ready() {
    if (sd_.enabled())
      manager_link_.spawn(run_manager_link(sd_, *supervisor_, manager_.watchdog, stopping_, manager_link_.token()),
                          "sd-link");
  }

  // Start-up runs code the steady state never runs again (config parsing, boot,
  // first-boot work) and fault-around maps whole 64 KiB windows around it: a second
  // after READY=1 the daemon drops those mappings (runtime/footprint.hpp).
  void release_startup_memory() {
    footprint_.spawn(release_after_boot(*supervisor_, footprint_.token()), "footprint");
  }

  // CPU and memory per service over the last hour, and the lifecycle timeline
  // (actors/history.hpp): in memory only, asleep while no service runs.
  void start_history(const runtime::CgroupTree* cgroups) {
    history_.emplace(actors::History::Options{history_interval(), cgroups}, *supervisor_, *events_);
    history_scope_.spawn(history_->sample(history_scope_.token()), "history-sampler");
    history_scope_.spawn(history_->follow_events(history_scope_.token()), "history-events");
    api_.history = &*history_;
  }

  // SIGHUP reloads, SIGUSR2 upgrades; returns on SIGTERM/SIGINT.
  Task<void> run(runtime::SignalSet& signals);

  Task<void> shut_down();

  // A daemon that failed before boot: nothing but the listeners to close.
  Task<void> abandon() { return server_.stop(std::chrono::milliseconds(0)); }

 private:
  void register_routes(const config::Config& cfg);
  void record_started(const config::Config& cfg, bool from_file);
  Task<void> upgrade_or_report();

  const ServeOptions& opts_;
  ManagerEnvironment& manager_;
  const runtime::CgroupTree* cgroups_;  // serve()'s, outliving the daemon; null: none
  std::optional<Inheritance> inherited_;  // an upgrade's hand-over, used up by boot
  UpgradeState upgrade_;
  http::auth::Gate gate_;
  http::Server server_;
  std::map<std::string, runtime::Fd> stored_pipes_;
  std::map<std::string, std::vector<runtime::Fd>> stored_sockets_;
  std::vector<std::string> stored_socket_names_;
  std::unique_ptr<actors::EventLog> events_;
  std::stop_source events_stop_;
  runtime::Scope event_writer_;
  SdNotifier sd_;
  std::optional<actors::Supervisor> supervisor_;
  http::ApiContext api_;
  std::optional<actors::History> history_;
  runtime::Scope history_scope_;
  std::optional<actors::TriggerDispatcher> dispatcher_;
  std::optional<http::TriggerRoutes> triggers_;
  std::optional<actors::Reload> reload_;
  bool stopping_ = false;  // read by the manager link
  runtime::Scope manager_link_;
  runtime::Scope footprint_;
};


void Daemon::create_supervisor(const config::Config& cfg) {
  if (!sd_.error().empty()) log(Level::warn, sd_.error());
  actors::Supervisor::Options sopts;
  sopts.data_dir = cfg.data_dir;
  // Of the daemon's environment services and jobs keep only this (service_env.hpp).
  sopts.base_env = actors::forwarded_environment(runtime::process_environment());
  sopts.cgroups = cgroups_;
  // Under systemd the pipes' daemon ends also live in the manager's fd store, so a
  // crash of the daemon leaves every service's output a reader (docs/operate.md, "Under systemd").
  if (sd_.enabled())
    sopts.pipes_changed = [this](const std::string& name, int out, int err, int in) {
      sd_.store_fd(stored_pipe_name(name, "stdout"), out);
      sd_.store_fd(stored_pipe_name(name, "stderr"), err);
      sd_.store_fd(stored_pipe_name(name, "stdin"), in);
    };
  // And a service's listening sockets: after a crash the next daemon takes them back,
  // and clients that connected meanwhile wait in their backlog.
  if (sd_.enabled())
    sopts.sockets_changed = [this](const std::string& name, const std::vector<int>& fds) {
      for (std::size_t i = 0; i < config::Socket::kMaxPerService; ++i)
        sd_.store_fd(stored_socket_name(name, i), i < fds.size() ? fds[i] : -1);
    };
  for (const auto& [name, fd] : stored_pipes_) sd_.note_stored(name);
  for (const auto& name : stored_socket_names_) sd_.note_stored(name);
  supervisor_.emplace(sopts, *events_);
  supervisor_->set_stored_pipes(std::move(stored_pipes_));
  supervisor_->set_stored_sockets(std::move(stored_sockets_));
  dispatcher_.emplace(actors::TriggerDispatcher::Options{cfg.data_dir, sopts.base_env, actors::default_job_user()},
                      *supervisor_, *events_);
  // Without its queue the daemon still serves; deliveries are answered 503 until a restart.
  if (std::string error = dispatcher_->open_queue(); !error.empty()) log(Level::error, error);
  else if (const actors::TriggerQueue* q = dispatcher_->queue(); q && (q->pending_count() > 0 || !cfg.triggers.empty()))
    log(Level::info, "trigger queue " + q->path() + ": " + std::to_string(q->pending_count()) + " pending, " +
                         std::to_string(q->in_state(actors::QueuedState::dead).size()) + " dead-lettered");
  triggers_.emplace(*dispatcher_);
  start_history(cgroups_);
  reload_.emplace(*supervisor_);
  add_http_participants(*reload_, {opts_, *supervisor_, *events_, server_, gate_, *triggers_});
  register_routes(cfg);
}

void Daemon::register_routes(const config::Config& cfg) {
  http::Router& router = server_.router();
  api_.supervisor = &*supervisor_;
  api_.events = events_.get();
  api_.server = &server_;
  // Webhook deliveries carry their own signatures (checked by TriggerRoutes), not API keys.
  gate_.set_public_matcher(
      [this](std::string_view method, std::string_view path) { return triggers_->claims(method, path); });
  api_.reload = [this](bool dry_run) {
    return dry_run ? reload_config(opts_, *reload_, true) : announced_reload(sd_, reload_config(opts_, *reload_));
  };
  http::register_api(router, api_);
  router.post("/v1/upgrade", [this](http::Request&) { return upgrade_request(*supervisor_, upgrade_); });
  router.get("/v1/upgrade", [this](http::Request&) -> Task<http::Response> {
    co_return http::Response::json(200, upgrade_json(upgrade_));
  });
  http::register_dashboard(router);
  triggers_->attach(router);
  // config/ already refused every path and setting that could fail here; what is left
  // (data_dir not writable) leaves the daemon serving without triggers rather than down.
  const std::vector<std::string> errors = triggers_->install(cfg.triggers, router);
  for (const std::string& e : errors) log(Level::error, e);
  if (errors.empty()) log_triggers(cfg);
}

void Daemon::record_started(const config::Config& cfg, bool from_file) {
  events_->append(std::nullopt, EventType::daemon_started,
                  {{"version", DOCKLESS_VERSION}, {"pid", ::getpid()},
                   {"config", from_file ? opts_.config_path : "(embedded defaults)"},
                   {"data_dir", cfg.data_dir},
                   {"ring", runtime::reactor().features().describe()}});
  if (inherited_) {
    nlohmann::json up = nlohmann::json::object();
    up["from_version"] = inherited_->from_version;
    up["image"] = upgrade_.image;
    up["services"] = inherited_->services.size();
    events_->append(std::nullopt, EventType::upgraded, up);
  }
}

Task<void> Daemon::boot_supervisor(config::Config cfg, bool from_file) {
  record_started(cfg, from_file);
  const std::size_t service_count = cfg.services.size();
  std::optional<actors::Inheritance> inherited_services;
  if (inherited_) inherited_services = std::move(inherited_->services);
  co_await supervisor_->boot(std::move(cfg), std::move(inherited_services));
  // Queued trigger events act on services: not before the supervisor knows them.
  dispatcher_->start_dispatching();
  log(Level::info, "supervising " + std::to_string(service_count) + " configured service(s)");
}

Task<void> Daemon::upgrade_or_report() {
  // Returns only when the exec did not happen; supervision never stopped.
  std::string error = co_await upgrade(server_, *supervisor_, *events_, manager_, upgrade_);
  ++upgrade_.failures;
  upgrade_.last_error = error;
  log(Level::error, "upgrade failed, this image keeps running: " + error);
  nlohmann::json ev = nlohmann::json::object();
  ev["error"] = error;
  events_->append(std::nullopt, EventType::upgrade_failed, ev);
}

Task<void> Daemon::run(runtime::SignalSet& signals) {
  while (true) {
    runtime::Result<int> sig = co_await signals.next();
    if (!sig) {
      log(Level::error, "signal wait failed: " + sig.message());
      co_return;
    }
    if (*sig == SIGHUP) {
      log(Level::info, "SIGHUP");
      (void)co_await api_.reload(false);
    } else if (*sig == SIGUSR2) {
      co_await upgrade_or_report();
    } else {
      log(Level::info, std::string(sigabbrev_np(*sig)) + ": stopping services");
      co_return;
    }
  }
}

Task<void> Daemon::shut_down() {
  stopping_ = true;
  sd_.stopping();
  // Stop accepting and drain in-flight requests (streams end at once), then stop
  // the services: nothing can reach the supervisor once it is shutting down.
  co_await server_.stop();
  co_await dispatcher_->shutdown();
  history_scope_.request_stop();
  co_await history_scope_.join();
  events_->append(std::nullopt, EventType::daemon_stopping, {});
  co_await supervisor_->shutdown();
  events_->append(std::nullopt, EventType::daemon_stopped, {});
  co_await events_->flush();
  events_stop_.request_stop();
  co_await event_writer_.join();
  manager_link_.request_stop();
  co_await manager_link_.join();
  footprint_.request_stop();
  co_await footprint_.join();
}

// The daemon's life on the reactor, step by step. serve() has loaded the config, the
// certificate and the keys and opened the data directory.
Task<int> daemon_main(const ServeOptions& opts, Startup start, ManagerEnvironment& manager,
                      std::optional<Inheritance> inherited, const runtime::CgroupTree* cgroups) {
  auto signals = runtime::SignalSet::open({SIGTERM, SIGINT, SIGHUP, SIGUSR2});
  if (!signals) {
    log(Level::error, "signalfd: " + signals.message());
    co_return 1;
  }
  Daemon daemon(opts, start, manager, std::move(inherited), cgroups);
  if (!daemon.start_listeners(start.config) || !daemon.open_event_log(start.config)) {
    co_await daemon.abandon();
    co_return 1;
  }
  daemon.create_supervisor(start.config);
  co_await daemon.boot_supervisor(std::move(start.config), start.from_file);
  daemon.notify_ready();
  daemon.release_startup_memory();
  co_await daemon.run(*signals);
  co_await daemon.shut_down();
  co_return 0;
}

// An upgrade's new image: the previous one stripped the manager's variables, so they
// come from the hand-over blob, with the services and the listeners.
std::optional<Inheritance> take_upgrade(ManagerEnvironment& manager) {
  std::string error;
  std::optional<Inheritance> inherited = take_inheritance(&error);
  if (!error.empty()) log(Level::error, "upgrade hand-over unreadable, starting afresh: " + error);
  if (inherited) {
    log(Level::info, "resuming after an upgrade from dockless " + inherited->from_version + " (" +
                         std::to_string(inherited->services.size()) + " services)");
    if (manager.notify_socket.empty()) manager.notify_socket = inherited->notify_socket;
    if (manager.watchdog.count() == 0) manager.watchdog = inherited->watchdog;
  }
  return inherited;
}

void set_log_level(config::LogLevel level) {
  switch (level) {
    case config::LogLevel::debug: set_min_level(Level::debug); break;
    case config::LogLevel::info: set_min_level(Level::info); break;
    case config::LogLevel::warn: set_min_level(Level::warn); break;
    case config::LogLevel::error: set_min_level(Level::error); break;
  }
}

// The config and the certificate; nullopt (logged) when the daemon must not start.
std::optional<Startup> load_startup(const ServeOptions& opts) {
  LoadedConfig loaded = load_config(opts);
  if (!loaded.config) {
    log_errors(loaded.errors);
    log(Level::error, "not starting: the config is invalid");
    return std::nullopt;
  }
  Startup start{std::move(*loaded.config), loaded.from_file, {}, {}};
  // Before anything starts: a TLS setup that cannot work is a config error.
  http::TlsContext::Loaded tls = load_tls(start.config.http);
  if (!tls.error.empty()) {
    log(Level::error, tls.error);
    log(Level::error, "not starting: the TLS certificate or key is unusable");
    return std::nullopt;
  }
  if (tls.context) log_tls(*tls.context, "TLS certificate");
  start.tls = std::move(tls.context);
  set_log_level(start.config.log_level);
  if (!loaded.from_file) log(Level::info, "no config at " + opts.config_path + "; running on embedded defaults");
  return start;
}

}  // namespace

int serve(const ServeOptions& opts) {
  // First, before anything copies the environment for the services.
  ManagerEnvironment manager = take_manager_environment();
  for (const auto& w : manager.warnings) log(Level::warn, w);
  std::optional<Inheritance> inherited = take_upgrade(manager);

  std::optional<Startup> start = load_startup(opts);
  if (!start) return 2;
  std::optional<runtime::Fd> lock = open_data_dir(start->config.data_dir);
  if (!lock) return 1;
  log(Level::info, "dockless " DOCKLESS_VERSION " data in " + start->config.data_dir);
  // Never an open admin API on the network: without usable keys the daemon does not start.
  // (After the data directory: the first-boot key is written there.)
  std::string key_error;
  auto keys = load_api_keys(opts, start->config, &key_error);
  if (!keys) {
    log(Level::error, "not starting: " + key_error);
    return 2;
  }
  log_keys(*keys);
  start->keys = std::move(keys->keys);

  // A write to a closed socket or pipe is an EPIPE value, never a fatal signal.
  ::signal(SIGPIPE, SIG_IGN);
  // Children must stay waitable: an inherited SIG_IGN would make the kernel reap them.
  ::signal(SIGCHLD, SIG_DFL);

  // Before the reactor: the daemon moves into its leaf with no child and no
  // io_uring worker yet. An upgrade's exec finds itself there again.
  std::optional<runtime::CgroupTree> cgroups = setup_cgroups(start->config.data_dir);
  // A clean exit (an upgrade execs from inside the loop and never gets here): the
  // subtree it made goes, when its services left it empty.
  struct Release {
    std::optional<runtime::CgroupTree>& tree;
    ~Release() {
      if (tree) tree->release();
    }
  } release{cgroups};
  try {
    runtime::Reactor reactor;
    return reactor.run(
        daemon_main(opts, std::move(*start), manager, std::move(inherited), cgroups ? &*cgroups : nullptr));
  } catch (const std::exception& e) {
    log(Level::error, std::string("fatal: ") + e.what());
    return 1;
  }
}

}  // namespace tools
