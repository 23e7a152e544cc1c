// The children of one incarnation of a ServiceActor: the readiness watch, the
// exit waiter, log capture, the stdin writer, health checks.
//
// GCC 12 at -O3 reports HealthReport::healthy as maybe-uninitialized inside
// std::variant's move of Message (a known false positive: every member has an
// initializer; see service_actor.cpp). GCC only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "actors/service_actor.hpp"

#include <fcntl.h>

#include <cstring>

#include "actors/log_actor.hpp"
#include "actors/log_store.hpp"
#include "actors/orphan_scan.hpp"
#include "actors/service_env.hpp"
#include "runtime/ops_rw.hpp"
#include "runtime/ops_wait.hpp"

namespace actors {

using runtime::Task;

// An exec check runs as its service does (user, group, working directory), with the
// service's own env over the fixed base, and marked like the service (orphan_scan.hpp),
// never with the daemon's environment. A container's check is the docker CLI
// (DockerExecutor::health_check): it runs as the daemon with the daemon's DOCKER_HOST and
// friends; the command in the container sees only the container's.
ExecContext ServiceActor::health_exec_context() const {
  ExecContext exec;
  if (spec_->image) {
    exec.env = runtime::process_environment();
    return exec;
  }
  runtime::SpawnOptions identity;
  if (!apply_identity(spec_->user, spec_->group, identity, &exec.identity_error)) return exec;
  exec.uid = identity.uid;
  exec.gid = identity.gid;
  exec.groups = std::move(identity.groups);
  exec.working_dir = spec_->working_dir;
  exec.env = base_environment(ctx_.base_env, exec.uid.value_or(::geteuid()));
  for (const auto& [k, v] : spec_->env) exec.env.insert_or_assign(k, substitute(v));
  if (!ctx_.supervisor_id.empty()) exec.env[kSupervisorEnv] = ctx_.supervisor_id;
  return exec;
}

namespace {
runtime::Fd dup_fd(const runtime::Fd& fd) {
  return fd ? runtime::Fd(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3)) : runtime::Fd();
}
}  // namespace

// The incarnation's children: readiness watch, exit waiter, log capture, stdin
// writer, health checks. Also what a failed upgrade restarts (resume_watching).
void ServiceActor::start_watchers(std::optional<ReadinessChannel>* readiness, runtime::Fd out, runtime::Fd err,
                                  runtime::Fd in) {
  incarnation_ = std::make_unique<runtime::Scope>();
  if (readiness && *readiness) {
    (*readiness)->spawned();
    const std::uint64_t gen = status_.generation;
    incarnation_->spawn(ReadinessChannel::watch(std::move(**readiness), execution_->pid(), incarnation_->token(),
                                                [this, gen](ReadinessReport r) { post(ReadySignal{gen, std::move(r)}); }),
                        spec_->name + "/ready");
  }
  incarnation_->spawn(wait_for_exit(status_.generation), spec_->name + "/wait");
  start_log_capture(std::move(out), std::move(err));
  start_stdin_writer(std::move(in));
  if (spec_->health) {
    const std::uint64_t gen = status_.generation;
    incarnation_->spawn(
        run_health_checks(executor_->health_check(*spec_->health), status_.ports.empty() ? 0 : status_.ports.front(),
                          incarnation_->token(),
                          [this, gen](const HealthReport& r) { post(HealthChanged{gen, r}); },
                          health_exec_context()),
        spec_->name + "/health");
  }
}

// The exec failed after a native hand-over: the instance ran on unwatched, its
// output waiting in the pipes; watching starts again from the kept copies.
void ServiceActor::resume_watching() {
  if (alive() && !incarnation_) start_watchers(nullptr, dup_fd(out_copy_), dup_fd(err_copy_), dup_fd(in_copy_));
}

// stdout and stderr are spliced into the service's LogStore by two child actors
// of this incarnation. They end on EOF, i.e. when the service and everything it
// forked have closed the pipe (the group is killed when the leader exits).
void ServiceActor::start_log_capture(runtime::Fd out, runtime::Fd err) {
  out_copy_ = dup_fd(out);
  err_copy_ = dup_fd(err);
  if (!ctx_.logs) return;
  auto body = [](ServiceActor* self, LogStore* store, Stream s, runtime::Fd fd,
                 std::stop_token st) -> Task<void> {
    CaptureResult r = co_await capture(*store, s, std::move(fd), st, [self](const DropEpisode& d) {
      nlohmann::json details = {{"stream", stream_name(d.stream)}, {"error", std::strerror(d.error)}};
      if (d.resumed) details["dropped_bytes"] = d.dropped;
      self->record(d.resumed ? EventType::log_resumed : EventType::log_dropped, std::move(details));
    });
    if (r.error != 0)
      self->record(EventType::log_capture_failed, {{"stream", stream_name(s)}, {"error", std::strerror(r.error)}});
  };
  if (out)
    incarnation_->spawn(body(this, ctx_.logs, Stream::out, std::move(out), incarnation_->token()),
                        spec_->name + "/stdout");
  if (err)
    incarnation_->spawn(body(this, ctx_.logs, Stream::err, std::move(err), incarnation_->token()),
                        spec_->name + "/stderr");
}

// The pipe is non-blocking (the service must never be able to block the daemon),
// so a full pipe means waiting for POLLOUT through the ring, then writing again.
void ServiceActor::start_stdin_writer(runtime::Fd in) {
  stdin_queue_.reset();
  in_copy_ = dup_fd(in);
  if (!in) return;
  stdin_queue_ = std::make_unique<runtime::Channel<std::string>>(256);
  auto body = [](runtime::Channel<std::string>* queue, runtime::Fd fd, std::stop_token st) -> Task<void> {
    while (true) {
      runtime::Result<std::string> chunk = co_await queue->recv(st);
      if (!chunk) co_return;
      std::string_view rest = *chunk;
      while (!rest.empty()) {
        runtime::Result<int> w = co_await runtime::write(fd.get(), std::as_bytes(std::span(rest.data(), rest.size())));
        if (w.ok()) {
          rest.remove_prefix(static_cast<std::size_t>(w.value()));
        } else if (w.error() == EAGAIN) {
          if (!co_await runtime::poll(fd.get(), POLLOUT).stop_on(st)) co_return;
        } else {
          co_return;  // EPIPE: the service closed its stdin
        }
      }
    }
  };
  incarnation_->spawn(body(stdin_queue_.get(), std::move(in), incarnation_->token()),
                      spec_->name + "/stdin");
}

Task<void> ServiceActor::wait_for_exit(std::uint64_t generation) {
  // Not stop_on(incarnation token): the exit waiter must see the exit, and the
  // incarnation is only drained after the exit has been handled.
  runtime::Result<runtime::ExitStatus> st = co_await execution_->wait();
  if (!st && st.error() == ECANCELED) co_return;  // detached: the workload runs on
  ProcessExited ex{generation, st.ok() ? *st : runtime::ExitStatus{}, st.ok()};
  post(ex);
}

}  // namespace actors
