#include "tools/serve.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <optional>

#include "actors/event_log.hpp"
#include "actors/service_env.hpp"
#include "actors/supervisor.hpp"
#include "config/config.hpp"
#include "dockless_config.h"
#include "http/api/api.hpp"
#include "http/dashboard/dashboard.hpp"
#include "http/server.hpp"
#include "runtime/fd.hpp"
#include "runtime/fs.hpp"
#include "runtime/reactor.hpp"
#include "runtime/scope.hpp"
#include "runtime/signals.hpp"
#include "tools/daemon_log.hpp"

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
    config::ParseResult r = config::parse_file(opts.config_path, config::process_environment());
    if (!r.ok()) {
      out.errors = std::move(r.errors);
      return out;
    }
    out.config = std::move(r.config);
    out.from_file = true;
  }
  if (!opts.data_dir.empty()) out.config->data_dir = opts.data_dir;
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

// SIGHUP and POST /v1/reload: reparse the config file and apply it as a diff. An
// invalid config keeps the running one.
Task<nlohmann::json> reload_config(const ServeOptions& opts, actors::Supervisor& supervisor,
                                   http::LogFollowers& followers) {
  log(Level::info, "reloading " + opts.config_path);
  Loaded next = load_config(opts);
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
  next.config->data_dir = supervisor.config().data_dir;
  next.config->listen_port = supervisor.config().listen_port;
  next.config->listen_address = supervisor.config().listen_address;
  // Config services the reload drops lose their LogStore: end their log followers first.
  std::vector<std::string> dropped;
  for (const auto& s : supervisor.list())
    if (supervisor.from_config(s.name) && !next.config->find(s.name)) dropped.push_back(s.name);
  for (const auto& name : dropped) followers.end(name);
  actors::ReloadOutcome out = co_await supervisor.apply(std::move(*next.config));
  for (const auto& name : dropped) followers.forget(name);
  log(Level::info, "reload applied: " + std::to_string(out.added.size()) + " added, " +
                       std::to_string(out.removed.size()) + " removed, " +
                       std::to_string(out.changed.size()) + " changed");
  co_return reload_json(out);
}

http::ServerLimits server_limits(const config::Config& cfg) {
  http::ServerLimits limits;
  limits.max_body_bytes = cfg.http.max_body_bytes;
  return limits;
}

// The listeners come up before boot, so a port clash fails the daemon at once,
// before any service is started (and would have to be stopped again).
bool bind_listeners(http::Server& server, const ServeOptions& opts, const config::Config& cfg) {
  auto port = server.listen_tcp(cfg.listen_address, cfg.listen_port);
  if (!port) {
    log(Level::error, "cannot listen on " + cfg.listen_address + ":" + std::to_string(cfg.listen_port) +
                          ": " + port.message());
    return false;
  }
  log(Level::info, "API on " + cfg.listen_address + ":" + std::to_string(*port));
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
    log(Level::info, "API on unix:" + opts.socket_path);
  return true;
}

Task<int> daemon_main(const ServeOptions& opts, config::Config cfg, bool from_file) {
  auto signals = runtime::SignalSet::open({SIGTERM, SIGINT, SIGHUP});
  if (!signals) {
    log(Level::error, "signalfd: " + signals.message());
    co_return 1;
  }
  http::Server server(server_limits(cfg));
  if (!bind_listeners(server, opts, cfg)) {
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

  actors::Supervisor::Options sopts;
  sopts.data_dir = cfg.data_dir;
  sopts.base_env = actors::current_environment();
  actors::Supervisor supervisor(sopts, *events);

  // Routes go in before boot: /readyz answers 503 while boot restores services.
  http::ApiContext api;
  api.supervisor = &supervisor;
  api.events = events.get();
  api.server = &server;
  api.reload = [&opts, &supervisor, &api]() { return reload_config(opts, supervisor, api.followers); };
  http::register_api(server.router(), api);
  http::register_dashboard(server.router());

  events->append(std::nullopt, "daemon_started",
                 {{"version", DOCKLESS_VERSION}, {"pid", ::getpid()},
                  {"config", from_file ? opts.config_path : "(embedded defaults)"},
                  {"data_dir", cfg.data_dir},
                  {"ring", runtime::reactor().features().describe()}});
  const std::size_t service_count = cfg.services.size();
  co_await supervisor.boot(std::move(cfg));
  log(Level::info, "supervising " + std::to_string(service_count) + " configured service(s)");

  while (true) {
    runtime::Result<int> sig = co_await signals->next();
    if (!sig) {
      log(Level::error, "signal wait failed: " + sig.message());
      break;
    }
    if (*sig == SIGHUP) {
      log(Level::info, "SIGHUP");
      (void)co_await reload_config(opts, supervisor, api.followers);
      continue;
    }
    log(Level::info, std::string(sigabbrev_np(*sig)) + ": stopping services");
    break;
  }
  // Stop accepting and drain in-flight requests (streams end at once), then stop
  // the services: nothing can reach the supervisor once it is shutting down.
  co_await server.stop();
  events->append(std::nullopt, "daemon_stopping", {});
  co_await supervisor.shutdown();
  events->append(std::nullopt, "daemon_stopped", {});
  co_await events->flush();
  events_stop.request_stop();
  co_await event_writer.join();
  co_return 0;
}

}  // namespace

int serve(const ServeOptions& opts) {
  Loaded loaded = load_config(opts);
  if (!loaded.config) {
    print_errors(loaded.errors);
    log(Level::error, "not starting: the config is invalid");
    return 2;
  }
  config::Config cfg = std::move(*loaded.config);
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

  // A write to a closed socket or pipe is an EPIPE value, never a fatal signal.
  ::signal(SIGPIPE, SIG_IGN);
  // Children must stay waitable: an inherited SIG_IGN would make the kernel reap them.
  ::signal(SIGCHLD, SIG_DFL);

  try {
    runtime::Reactor reactor;
    const bool from_file = loaded.from_file;
    return reactor.run(daemon_main(opts, std::move(cfg), from_file));
  } catch (const std::exception& e) {
    log(Level::error, std::string("fatal: ") + e.what());
    return 1;
  }
}

}  // namespace tools
