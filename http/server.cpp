#include "http/server.hpp"

#include "http/connection.hpp"
#include "runtime/ops_wait.hpp"

namespace http {

using runtime::Task;

Server::Server(ServerLimits limits) : core_(std::make_shared<detail::Core>(limits)) {}

Server::~Server() {
  core_->stopping = true;
  core_->accept_stop.request_stop();
  core_->kill_all();
}

Router& Server::router() noexcept { return core_->router; }
void Server::set_filter(RequestFilter filter) { core_->filter = std::move(filter); }
const ServerStats& Server::stats() const noexcept { return core_->stats; }
const ServerLimits& Server::limits() const noexcept { return core_->limits; }
void Server::set_tls(std::shared_ptr<const TlsContext> tls) noexcept { core_->tls = std::move(tls); }
const std::shared_ptr<const TlsContext>& Server::tls() const noexcept { return core_->tls; }

namespace {
// Past the drain deadline every connection is cancelled; its actor then ends
// (awaiting its cancelled ops) and posts to `changed`.
Task<void> drain_timer(std::shared_ptr<detail::Core> core, std::chrono::milliseconds drain,
                       std::stop_token cancel) {
  const runtime::Result<int> r = co_await runtime::sleep_for(drain).stop_on(std::move(cancel));
  if (r.ok()) core->kill_all();
}
}  // namespace

Task<void> Server::stop() { return stop(core_->limits.drain_timeout); }

Task<void> Server::stop(std::chrono::milliseconds drain) {
  std::shared_ptr<detail::Core> core = core_;
  core->stopping = true;
  core->accept_stop.request_stop();
  // Copy: a stop request may not end an actor synchronously, but be safe.
  for (detail::Connection* c : std::vector<detail::Connection*>(core->connections)) c->on_server_stop();
  std::stop_source timer_stop;
  runtime::spawn(drain_timer(core, drain, timer_stop.get_token()), "http-drain");
  while (!core->drained()) (void)co_await core->changed.recv();
  timer_stop.request_stop();
}

}  // namespace http
