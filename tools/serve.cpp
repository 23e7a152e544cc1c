#include "tools/serve.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include "actors/event_log.hpp"
#include "actors/service_env.hpp"
#include "actors/supervisor.hpp"
#include "config/config.hpp"
#include "dockless_config.h"
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

Task<int> daemon_main(const ServeOptions& opts, config::Config cfg, bool from_file) {
  auto signals = runtime::SignalSet::open({SIGTERM, SIGINT, SIGHUP});
  if (!signals) {
    log(Level::error, "signalfd: " + signals.message());
    co_return 1;
  }
  auto events_or = actors::EventLog::open(cfg.data_dir + "/events.log");
  if (!events_or) {
    log(Level::error, "open " + cfg.data_dir + "/events.log: " + events_or.message());
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
      log(Level::info, "SIGHUP: reloading " + opts.config_path);
      Loaded next = load_config(opts);
      if (!next.config) {
        print_errors(next.errors);
        supervisor.reload_failed(next.errors);
        log(Level::warn, "reload failed; the running config stays");
        continue;
      }
      if (next.config->data_dir != supervisor.config().data_dir ||
          next.config->listen_port != supervisor.config().listen_port ||
          next.config->listen_address != supervisor.config().listen_address)
        log(Level::warn, "data_dir and listen settings change only on restart");
      next.config->data_dir = supervisor.config().data_dir;
      next.config->listen_port = supervisor.config().listen_port;
      next.config->listen_address = supervisor.config().listen_address;
      actors::ReloadOutcome out = co_await supervisor.apply(std::move(*next.config));
      log(Level::info, "reload applied: " + std::to_string(out.added.size()) + " added, " +
                           std::to_string(out.removed.size()) + " removed, " +
                           std::to_string(out.changed.size()) + " changed");
      continue;
    }
    log(Level::info, std::string(sigabbrev_np(*sig)) + ": stopping services");
    break;
  }
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
  log(Level::info, "dockless " DOCKLESS_VERSION " data in " + cfg.data_dir + ", API on " +
                       cfg.listen_address + ":" + std::to_string(cfg.listen_port));

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
