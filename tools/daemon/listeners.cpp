#include "tools/daemon/listeners.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>

#include "runtime/fs.hpp"
#include "runtime/user_db.hpp"
#include "tools/daemon/daemon_log.hpp"

namespace tools {

namespace {

// The unix socket skips authentication: its owner and mode are the access
// control. Root-owned, group "dockless" when that group exists (its members use
// the CLI without a key), mode 0660 (set by listen_unix). Returns a note for the log.
std::string trust_unix_socket(const std::string& path) {
  if (::geteuid() != 0) return " (owned by this user)";
  const std::optional<gid_t> g = runtime::find_local_group("dockless");
  const gid_t gid = g.value_or(0);
  if (::chown(path.c_str(), 0, gid) != 0)
    return std::string(" (chown failed: ") + std::strerror(errno) + ")";
  return g ? " (root:dockless 0660)" : " (root:root 0660; create group dockless to share it)";
}

bool bind_unix_listener(http::Server& server, const ServeOptions& opts) {
  if (opts.socket_path.empty()) return true;
  const std::string parent = std::filesystem::path(opts.socket_path).parent_path().string();
  if (!parent.empty()) {
    if (auto r = runtime::make_dirs(parent, 0755, /*may_be_symlink=*/true); !r) {
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

// After a crash (or kill -9) the kernel tears the old ring down asynchronously, and
// its pending accept holds the port for a moment: a restart by systemd 100 ms later
// would fail with EADDRINUSE and give up. Waiting a bounded while is what nginx does
// on a busy port; anything still holding it after that is really someone else.
runtime::Result<std::uint16_t> listen_tcp_when_free(http::Server& server, const config::Config& cfg) {
  constexpr auto kPatience = std::chrono::seconds(3);
  constexpr auto kRetryEvery = std::chrono::milliseconds(50);
  const auto give_up_at = std::chrono::steady_clock::now() + kPatience;
  auto port = server.listen_tcp(cfg.listen_address, cfg.listen_port);
  if (!port && port.error() == EADDRINUSE && cfg.listen_port != 0)
    log(Level::info, "port " + std::to_string(cfg.listen_port) + " is still in use; waiting up to " +
                         std::to_string(kPatience.count()) + " s for it (a previous daemon's socket closing)");
  while (!port && port.error() == EADDRINUSE && cfg.listen_port != 0 &&
         std::chrono::steady_clock::now() < give_up_at) {
    // Start-up, before any service or client: nothing else is waiting on this thread.
    std::this_thread::sleep_for(kRetryEvery);
    port = server.listen_tcp(cfg.listen_address, cfg.listen_port);
  }
  return port;
}

}  // namespace

http::ServerLimits server_limits(const config::Config& cfg) {
  http::ServerLimits limits;
  limits.max_body_bytes = cfg.http.max_body_bytes;
  limits.max_connections_per_client = cfg.http.max_connections_per_client;
  limits.drain_timeout = cfg.http.drain_timeout;
  return limits;
}

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
  auto port = listen_tcp_when_free(server, cfg);
  if (!port) {
    log(Level::error, "cannot listen on " + cfg.listen_address + ":" + std::to_string(cfg.listen_port) +
                          ": " + port.message());
    return false;
  }
  // As a URL, so the log says where a webhook sender is to be pointed.
  const bool v6 = cfg.listen_address.find(':') != std::string::npos;
  log(Level::info, std::string(server.tls() ? "HTTPS API on https://" : "API on http://") + (v6 ? "[" : "") +
                       cfg.listen_address + (v6 ? "]:" : ":") + std::to_string(*port));
  return adopted.unix_socket || bind_unix_listener(server, opts);
}

void log_triggers(const config::Config& cfg) {
  using Action = config::Trigger::Action;
  const bool by_reference = std::any_of(cfg.triggers.begin(), cfg.triggers.end(),
                                        [](const config::Trigger& t) { return !t.secret_ref.empty(); });
  if (by_reference) {
    std::string chain;
    for (const std::string& step : cfg.secret_chain) chain += (chain.empty() ? "" : "; ") + step;
    log(Level::info, "secrets by reference, looked up in order: " + chain);
  }
  for (const config::Trigger& t : cfg.triggers) {
    std::string events;
    for (const std::string& e : t.events) events += (events.empty() ? "" : ",") + e;
    std::string handler = t.handler;
    if (handler.empty()) {
      const char* verb = t.action == Action::restart ? "restart" : t.action == Action::start ? "start"
                         : t.action == Action::stop  ? "stop" : "run";
      handler = std::string(verb) + ":" + (t.action == Action::run ? t.run.front() : t.service);
    } else if (t.action == Action::run || t.action == Action::exec) {
      handler = handler.substr(0, handler.find(':') + 1) + t.run.front();  // arguments may carry tokens
    } else if (t.action == Action::post) {
      handler = handler.substr(0, handler.find('?'));  // so may a query
    }
    log(Level::info, "trigger " + t.id + ": " + t.kind + "/" + t.provider + " POST " + t.path + " events " +
                         (events.empty() ? "any" : events) + " -> " + handler + "; " +
                         (t.kind == "a2a-push" ? std::string("authenticated by the API keys")
                                               : "secret from " + t.secret_source) +
                         "; up to " + std::to_string(t.max_attempts) + " attempts");
  }
}

}  // namespace tools
