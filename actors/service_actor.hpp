#pragma once
// ServiceActor: one per managed service. It owns the service's process, its
// timers, its health checker and its log capture (as child actors in a Scope),
// feeds everything that happens through one mailbox into its two machines — the
// lifecycle (ServiceMachine) and who holds the workload (CustodyMachine: shutdown,
// the upgrade's hand-over and resume) — and performs the actions they return.
// service_actor.cpp: the mailbox, the lifecycle's actions; service_actor_watchers.cpp:
// an incarnation's child actors; service_actor_handover.cpp: custody's actions, adoption.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/adopt.hpp"
#include "actors/event_type.hpp"
#include "actors/executor.hpp"
#include "actors/health.hpp"
#include "actors/readiness.hpp"
#include "actors/service_actor_custody.hpp"
#include "actors/service_machine.hpp"
#include "actors/socket_set.hpp"
#include "config/config.hpp"
#include "runtime/cgroup_stats.hpp"
#include "runtime/channel.hpp"
#include "runtime/process.hpp"
#include "runtime/scope.hpp"

namespace actors {

class EventLog;
class LogStore;

enum class Health : std::uint8_t { none, unknown, healthy, unhealthy };
std::string_view to_string(Health h);

// A copy of what the actor knows, published after every change. Readers (the
// supervisor's table, the API) never look into the actor itself.
struct ServiceStatus {
  std::string name;
  State state = State::stopped;
  std::optional<pid_t> pid;
  std::uint64_t pid_start_ticks = 0;  // /proc/PID/stat field 22: tells a recycled pid apart
  int restarts = 0;
  std::optional<std::chrono::system_clock::time_point> started_at;
  std::optional<runtime::ExitStatus> last_exit;
  // The last exit happened but its status could not be read (an instance adopted
  // after a daemon crash is init's child, not ours).
  bool last_exit_unknown = false;
  Health health = Health::none;
  std::string health_reason;
  std::string notify_status;         // the service's last STATUS= (ready = "notify")
  std::vector<std::uint16_t> ports;  // resolved ("auto" → the picked number)
  std::string last_error;            // why the last start failed
  std::chrono::milliseconds next_restart_in{0};
  std::uint64_t generation = 0;      // bumps on every spawn
  std::string executor;              // "process", "docker" (Executor::kind) once started
  std::string cgroup;                // the running instance's cgroup (Execution::cgroup), empty: none
  // start_on = "connection": the sockets are bound and watched; the first connection
  // (or datagram) starts the service.
  bool waiting_for_connection = false;
  // restart_mode = "overlap": the new instance started beside this one, until it is ready.
  std::optional<pid_t> next_pid;
};

// Messages in the mailbox: commands from the supervisor, and what the actor's own
// children report. Stale reports (an older generation) are dropped.
// One service's spec, immutable once built: the supervisor's entry, the actor and an
// update_spec command share it instead of holding copies (~0.9 KiB each, issue #12).
using SpecPtr = std::shared_ptr<const config::ServiceSpec>;

struct Command {
  // adopt: take over a running instance (boot after a crash or an upgrade).
  // handover: the daemon is about to exec a new image: stop watching (capture,
  // health, the exit wait) without touching the instance, fill the record, then
  // ignore everything until resume (the exec failed) — or until the exec.
  // update_limits: a spec that differs from the running one in its limits only; they
  // are written into the running instance's cgroup, which goes on without a restart.
  // attach: an attached service (spec.attach) takes the pid in `signal` now.
  enum class Kind { start, stop, restart, signal, update_spec, update_limits, shutdown, stdin, adopt, handover, resume, attach } kind;
  int signal = 0;
  SpecPtr spec;      // Kind::update_spec, Kind::update_limits
  std::string data;  // Kind::stdin
  std::shared_ptr<AdoptInfo> adopt;            // Kind::adopt
  std::shared_ptr<HandoverRecord> handover;    // Kind::handover
  static Command of(Kind k, int sig = 0) { return Command{k, sig, {}, {}, {}, {}}; }
  static Command update(SpecPtr s) { return Command{Kind::update_spec, 0, std::move(s), {}, {}, {}}; }
  static Command limits(SpecPtr s) { return Command{Kind::update_limits, 0, std::move(s), {}, {}, {}}; }
  static Command input(std::string bytes) { return Command{Kind::stdin, 0, {}, std::move(bytes), {}, {}}; }
  static Command adopting(std::shared_ptr<AdoptInfo> a) {
    return Command{Kind::adopt, 0, {}, {}, std::move(a), {}};
  }
  static Command handing_over(std::shared_ptr<HandoverRecord> r) {
    return Command{Kind::handover, 0, {}, {}, {}, std::move(r)};
  }
};
struct ProcessExited { std::uint64_t generation; runtime::ExitStatus status; bool known; };
// The "exited" event's details: code or signal and a description.
nlohmann::json exit_details(const ProcessExited& ex);
struct TimerFired { std::uint64_t timer_id; EventKind kind; };
struct HealthChanged { std::uint64_t generation; HealthReport report; };
struct ReadySignal { std::uint64_t generation; ReadinessReport report; };
// start_on = "connection": socket `socket` (an index into the SocketSet) became readable
// while watch `watch` was armed.
struct ConnectionArrived { std::uint64_t watch; std::size_t socket; };
// restart_mode = "overlap": the new instance's ready_timeout passed, or the replaced one's
// stop_timeout (each names its instance by generation).
struct OverlapTimeout { std::uint64_t generation; bool replaced; };
using Message = std::variant<Command, ProcessExited, TimerFired, HealthChanged, ReadySignal, ConnectionArrived,
                             OverlapTimeout>;

struct ServiceContext {
  EventLog* events = nullptr;
  LogStore* logs = nullptr;  // may be null in tests: output then goes to /dev/null
  std::function<void(const ServiceStatus&)> publish;
  // Ports of other services, for ${services.NAME.port} (auto ports are picked at start).
  std::function<std::optional<std::uint16_t>(const std::string&)> port_of;
  runtime::Environment base_env;  // forwarded_environment() of the daemon's (service_env.hpp)
  // The daemon's ends of the current instance's pipes (-1: none; all -1: the
  // instance is gone), for systemd's fd store: a daemon restarted after a crash
  // gets them back, so writers never meet a pipe without a reader.
  std::function<void(int out, int err, int in)> pipes_changed;
  std::string supervisor_id;          // LaunchRequest::supervisor_id
  // The fd store for the service's sockets (empty vector: closed), and what the store
  // handed back at this daemon's start (SocketSet::adopt_stored), when anything.
  std::function<void(const std::vector<int>& fds)> sockets_changed;
  std::shared_ptr<std::vector<runtime::Fd>> stored_sockets;
  // The daemon's cgroup v2 subtree (null: none usable, process groups only); the
  // daemon's, outliving every actor.
  const runtime::CgroupTree* cgroups = nullptr;
};

class ServiceActor {
 public:
  ServiceActor(SpecPtr spec, ServiceContext ctx);
  ServiceActor(const ServiceActor&) = delete;
  ServiceActor& operator=(const ServiceActor&) = delete;

  // Never blocks: the mailbox is large and commands are few. False only after shutdown.
  bool post(Message m) { return mailbox_.try_send(std::move(m)); }
  // The actor body. Returns after a shutdown command: the process stopped (within
  // stop_timeout), every child actor joined.
  runtime::Task<void> run();

  const ServiceStatus& status() const noexcept { return status_; }

 private:
  // Why the workload is killed: the stop or the ready timer expired.
  enum class KillReason : std::uint8_t { stop_timeout, ready_timeout };

  runtime::Task<void> handle(Message& m);
  runtime::Task<void> feed(ServiceEvent e);
  runtime::Task<void> feed_custody(CustodyEvent e, HandoverRecord* rec = nullptr);
  // An incarnation is alive from its start until its exit has been seen; the
  // exited one waits in retired_ until it is closed.
  bool alive() const noexcept { return execution_ != nullptr; }
  Workload workload() const;
  runtime::Task<void> do_spawn();
  void begin_incarnation(std::unique_ptr<Execution> ex);
  void start_watchers(std::optional<ReadinessChannel>* readiness, runtime::Fd out, runtime::Fd err, runtime::Fd in);
  runtime::Task<void> do_adopt(AdoptInfo& info);
  runtime::Task<void> suspend_watching(HandoverRecord& rec);
  runtime::Task<void> detach_for_handover();
  void fill_record(HandoverRecord& rec);
  void resume_watching();
  void rearm_backoff();
  // Attached services (attach_executor.cpp): stop watching the process and leave it
  // running (the daemon exiting, a read-only stop); the machine ends up stopped.
  runtime::Task<void> release_attached();
  runtime::Task<void> attach_to(pid_t pid);
  void do_stop_signal();
  void do_kill(KillReason reason);
  void arm_timer(std::chrono::milliseconds delay, EventKind kind);
  void cancel_timer();
  void on_exit(const ProcessExited& ex);
  void on_health(const HealthChanged& h);
  runtime::Task<void> on_ready(const ReadySignal& r);
  void publish();
  void record(EventType type, nlohmann::json details);
  // start_on = "connection" (service_actor_activation.cpp): arm() binds the sockets and
  // watches them; the first readable one starts the service through the machine.
  bool starts_on_connection() const noexcept { return spec_->start_on == config::StartOn::connection; }
  void arm_activation();
  runtime::Task<void> disarm_activation();
  runtime::Task<void> on_connection(const ConnectionArrived& c);
  // restart_mode = "overlap" (service_actor_overlap.cpp): a restart of a running service
  // starts the new instance beside the old one on the same sockets; once it says READY=1
  // the old one is stopped. Until then the old one serves, and a new one that fails is
  // killed and the old one goes on.
  bool can_overlap() const;
  runtime::Task<void> begin_overlap();
  // Messages about the new or the replaced instance; true when `m` was one of them.
  runtime::Task<bool> overlap_message(Message& m);
  runtime::Task<void> promote_candidate();
  runtime::Task<void> drop_candidate(std::string_view reason, bool kill);
  runtime::Task<void> finish_replaced(const ProcessExited* ex);
  // A stop, restart, upgrade or shutdown during an overlap: the new instance is killed, and
  // so is the replaced one (it had its stop signal already).
  runtime::Task<void> settle_overlap(std::string_view reason);
  void spawn_capture(runtime::Scope& scope, runtime::Fd out, runtime::Fd err);
  void start_health();
  // After each message: a lazy service that ended by itself (not stopped by the
  // operator, not parked by the crash-loop limit) waits for the next connection again.
  void rearm_if_idle();
  // spec_'s limits into the running instance's cgroup; recorded as limits_applied.
  void apply_limits_in_place();
  runtime::Task<void> wait_for_exit(std::uint64_t generation);
  static runtime::Task<void> wait_for_exit_of(ServiceActor* self, Execution* ex, std::uint64_t generation);
  runtime::Task<void> drain_incarnation();
  std::optional<LaunchRequest> build_launch(std::string* error);
  void start_log_capture(runtime::Fd out, runtime::Fd err);
  void start_stdin_writer(runtime::Fd in);
  // memory.events of the instance's cgroup, watched through the ring; an oom_kill
  // that grew is recorded as oom_killed (note_oom), once per kill.
  void start_oom_watch();
  void note_oom(const runtime::OomCounters& now);
  std::string substitute(std::string text) const;
  // $PORT: the first resolved port, else the first TCP socket's (0: none).
  std::uint16_t primary_port() const;
  ExecContext health_exec_context() const;

  SpecPtr spec_;  // never null
  ServiceContext ctx_;
  ServiceMachine machine_;
  CustodyMachine custody_;
  ServiceStatus status_;
  runtime::Channel<Message> mailbox_{4096};
  // How the service runs (picked from the spec at each start), the live
  // incarnation, and the last one whose exit was seen, until it is closed.
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<Execution> execution_;
  std::unique_ptr<Execution> retired_;
  // Children of the current incarnation (exit waiter, log capture, health): all
  // joined before the next spawn, so two incarnations never write one log.
  std::unique_ptr<runtime::Scope> incarnation_;
  // Bytes for the service's stdin (stdin = true), written in order by a child actor.
  std::unique_ptr<runtime::Channel<std::string>> stdin_queue_;
  runtime::Scope timers_;
  std::optional<std::stop_source> timer_stop_;
  std::uint64_t timer_id_ = 0;
  // Copies of the current incarnation's pipe ends (the capture actors own the
  // originals): what an upgrade hands over, and what capture restarts from when a
  // failed exec resumes supervision.
  runtime::Fd out_copy_, err_copy_, in_copy_;
  // The instance's memory.events as last seen (the watch's baseline at its start):
  // the watch and the final look at exit both compare against it, so a kill is
  // recorded once whichever sees it first.
  runtime::MemoryEvents oom_seen_;
  // The service's `sockets`, bound before its first start and held across its
  // restarts; closed when the actor ends (the service removed, the daemon exiting).
  SocketSet sockets_;
  std::uint64_t sockets_stored_ = 0;  // the SocketSet::version() the fd store holds
  // start_on = "connection": one poll per socket while armed (a Scope of its own, not
  // the incarnation's: nothing runs while it waits); `watch_` tells a stale report apart.
  std::unique_ptr<runtime::Scope> activation_;
  std::uint64_t watch_ = 0;
  bool activation_wanted_ = false;  // started (boot or operator) and not stopped since
  // restart_mode = "overlap": the new instance until it is ready (its generation is
  // status_.generation + n << 32, so nothing of it is mistaken for the current one's),
  // then the replaced one until its exit has been seen.
  struct Overlapping {
    std::uint64_t generation = 0;
    std::unique_ptr<Execution> exec;
    std::unique_ptr<runtime::Scope> scope;  // its exit waiter, capture, readiness, timer
    std::unique_ptr<runtime::Channel<std::string>> stdin_queue;
    runtime::Fd out_copy, err_copy, in;
    std::string notify_status;  // its last STATUS= before it was promoted
    bool failing = false;  // killed after its failure was recorded; its exit ends it
  };
  // Attached services: the operator's pid for the next launch (0: the pid_file), and the
  // process attached last (LaunchRequest::known_pid; from state.json after a crash).
  pid_t attach_pid_ = 0;
  pid_t attach_known_pid_ = 0;
  std::uint64_t attach_known_ticks_ = 0;
  std::unique_ptr<Overlapping> candidate_;
  std::unique_ptr<Overlapping> replaced_;
  std::uint64_t overlaps_ = 0;
  void store_sockets();
};

}  // namespace actors
