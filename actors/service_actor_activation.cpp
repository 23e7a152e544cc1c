// start_on = "connection": the daemon binds the service's sockets and waits on them
// instead of starting it; the first connection (a pending accept on a stream socket, a
// datagram on the others) starts it, and it waits in the backlog until the service
// accepts it. A service that later ends by itself (an idle exit) is watched for again.
//
// GCC 12 at -O3: see service_actor.cpp for the maybe-uninitialized false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <poll.h>

#include "actors/event_log.hpp"
#include "actors/service_actor.hpp"
#include "runtime/ops_wait.hpp"

namespace actors {

using runtime::Task;

namespace {
bool settled(State s) { return s == State::stopped || s == State::exited || s == State::failed; }
}  // namespace

// One poll per socket, all in activation_: whichever fires first reports; the others
// are stopped by disarm_activation(). A poll does not consume anything, so the
// connection (or datagram) is still there for the service.
void ServiceActor::arm_activation() {
  activation_wanted_ = true;
  if (activation_ || !custody_.supervising()) return;
  std::string error;
  if (!sockets_.ensure(spec_->sockets, &error)) {
    status_.last_error = error;
    record(EventType::spawn_failed, {{"error", error}});
    store_sockets();
    return;
  }
  store_sockets();
  activation_ = std::make_unique<runtime::Scope>();
  const std::uint64_t watch = ++watch_;
  auto body = [](ServiceActor* self, int fd, std::uint64_t w, std::size_t index, std::stop_token st) -> Task<void> {
    runtime::Result<int> r = co_await runtime::poll(fd, POLLIN).stop_on(st);
    if (r.ok()) self->post(ConnectionArrived{w, index});
  };
  const std::vector<int> fds = sockets_.fds();
  for (std::size_t i = 0; i < fds.size(); ++i)
    activation_->spawn(body(this, fds[i], watch, i, activation_->token()), spec_->name + "/activation");
  status_.waiting_for_connection = true;
  record(EventType::listening, {{"sockets", sockets_.describe()}});
}

Task<void> ServiceActor::disarm_activation() {
  status_.waiting_for_connection = false;
  if (!activation_) co_return;
  ++watch_;  // a report already in the mailbox is stale now
  activation_->request_stop();
  co_await activation_->join();
  activation_.reset();
}

Task<void> ServiceActor::on_connection(const ConnectionArrived& c) {
  if (c.watch != watch_ || !activation_) co_return;
  co_await disarm_activation();
  record(EventType::activated, {{"socket", c.socket < sockets_.size() ? sockets_.name(c.socket) : std::string()}});
  co_await feed({EventKind::start});
}

void ServiceActor::rearm_if_idle() {
  if (!starts_on_connection() || !activation_wanted_ || activation_ || !custody_.supervising()) return;
  const State s = machine_.state();
  // failed: the crash-loop limit parked it; a connection must not undo that (an
  // operator's start does).
  if (settled(s) && s != State::failed) arm_activation();
}

}  // namespace actors
