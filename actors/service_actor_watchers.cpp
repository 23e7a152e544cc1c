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
  start_oom_watch();
  start_health();
}

void ServiceActor::start_health() {
  if (!spec_->health) return;
  const std::uint64_t gen = status_.generation;
  incarnation_->spawn(run_health_checks(executor_->health_check(*spec_->health), primary_port(),
                                        incarnation_->token(),
                                        [this, gen](const HealthReport& r) { post(HealthChanged{gen, r}); },
                                        health_exec_context()),
                      spec_->name + "/health");
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
  spawn_capture(*incarnation_, std::move(out), std::move(err));
}

// Into `scope`: the incarnation's, or an overlap's new instance's (the two instances'
// captures then take turns on the stream, LogStore::try_take_turn).
void ServiceActor::spawn_capture(runtime::Scope& scope, runtime::Fd out, runtime::Fd err) {
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
  if (out) scope.spawn(body(this, ctx_.logs, Stream::out, std::move(out), scope.token()), spec_->name + "/stdout");
  if (err) scope.spawn(body(this, ctx_.logs, Stream::err, std::move(err), scope.token()), spec_->name + "/stderr");
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

// Only with the memory controller in the instance's cgroup (memory.events exists).
// The watch's frame owns its fds, and it is a child of the incarnation: stopped by
// its token and joined before the next spawn, so nothing of it outlives the instance.
void ServiceActor::start_oom_watch() {
  oom_seen_ = {};
  const int cg = execution_->cgroup_fd();
  if (cg < 0) return;
  runtime::Result<runtime::CgroupFile> events = runtime::CgroupFile::open(cg, "memory.events");
  if (!events) return;
  // The baseline now, before the instance can run into its limit: a cgroup reused
  // from an earlier instance keeps that one's counts.
  if (runtime::Result<std::string> text = events->read()) oom_seen_ = runtime::parse_memory_events(*text);
  // memory.max is read at each change, not now: a reload may change it in place.
  runtime::Fd max_file(::openat(cg, "memory.max", O_RDONLY | O_CLOEXEC));
  auto body = [](ServiceActor* self, runtime::CgroupFile file, runtime::Fd max_fd, runtime::MemoryEvents base,
                 std::stop_token st) -> Task<void> {
    (void)co_await runtime::watch_memory_events(
        std::move(file), base, st, [self, &max_fd](const runtime::MemoryEvents&, const runtime::MemoryEvents& now) {
          runtime::OomCounters c{now, {}};
          char buf[64];
          if (max_fd) {
            const ssize_t n = ::pread(max_fd.get(), buf, sizeof buf, 0);
            if (n > 0) c.memory_max.assign(buf, static_cast<std::size_t>(n));
            while (!c.memory_max.empty() && c.memory_max.back() == '\n') c.memory_max.pop_back();
          }
          self->note_oom(c);
        });
  };
  incarnation_->spawn(body(this, std::move(events).value(), std::move(max_file), oom_seen_, incarnation_->token()),
                      spec_->name + "/oom");
}

// The kill itself is the kernel's; the exit (SIGKILL) follows as usual, and the
// restart policy applies. This only says why.
void ServiceActor::note_oom(const runtime::OomCounters& now) {
  if (now.events.oom_kill > oom_seen_.oom_kill) {
    nlohmann::json d = {{"oom_kill", now.events.oom_kill},
                        {"new", now.events.oom_kill - oom_seen_.oom_kill},
                        {"oom", now.events.oom},
                        {"max", now.events.max},
                        {"high", now.events.high}};
    d["memory_max"] = now.memory_max.empty() ? nlohmann::json(nullptr) : nlohmann::json(now.memory_max);
    record(EventType::oom_killed, std::move(d));
  }
  oom_seen_ = now.events;
}

Task<void> ServiceActor::wait_for_exit(std::uint64_t generation) {
  return wait_for_exit_of(this, execution_.get(), generation);
}

Task<void> ServiceActor::wait_for_exit_of(ServiceActor* self, Execution* ex, std::uint64_t generation) {
  // Not stop_on(incarnation token): the exit waiter must see the exit, and the
  // incarnation is only drained after the exit has been handled.
  runtime::Result<runtime::ExitStatus> st = co_await ex->wait();
  if (!st && st.error() == ECANCELED) co_return;  // detached: the workload runs on
  self->post(ProcessExited{generation, st.ok() ? *st : runtime::ExitStatus{}, st.ok()});
}

}  // namespace actors
