#pragma once
// Supervisor: owns the service table. It starts services in dependency order
// (a dependent waits for `started` or `healthy`), stops them in reverse, applies
// reloads as a diff, persists registered services and the state.json snapshot.
// The API talks to it; it talks to ServiceActors only through their mailboxes.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include "actors/adopt.hpp"
#include "actors/reload_plan.hpp"
#include "actors/service_actor.hpp"
#include "actors/state_store.hpp"
#include "config/config.hpp"
#include "runtime/notify.hpp"
#include "runtime/process.hpp"
#include "runtime/scope.hpp"

namespace actors {

class EventLog;
class LogStore;

struct ReloadOutcome {
  bool ok = false;
  std::vector<std::string> errors;  // "config.toml:3:1: ..." when !ok
  std::vector<std::string> added, removed, changed;
  // Only their limits changed: written into the running instance's cgroup, no restart.
  std::vector<std::string> updated_in_place;
  ReloadPlan plan;  // what was applied (added.. are its service names, kept for the old answer)
};

class Supervisor {
 public:
  struct Options {
    std::string data_dir;
    runtime::Environment base_env;  // forwarded_environment() of the daemon's: all services keep of it
    bool capture_logs = true;
    // systemd's fd store (tools/daemon/serve.cpp): called with a service's pipe ends when an
    // instance starts or is adopted, and with -1s when it is gone.
    std::function<void(const std::string& service, int out, int err, int in)> pipes_changed;
    // The same for a service's bound sockets (SocketSet): its fds in order, empty when closed.
    std::function<void(const std::string& service, const std::vector<int>& fds)> sockets_changed;
    // The daemon's cgroup v2 subtree (runtime/cgroup.hpp); null: process groups only.
    const runtime::CgroupTree* cgroups = nullptr;
  };
  // Pipe ends the manager handed back from its fd store (by FDNAME, see
  // tools/daemon/sd_env.hpp), used by boot() to adopt after a crash; set before boot().
  void set_stored_pipes(std::map<std::string, runtime::Fd> pipes) { stored_pipes_ = std::move(pipes); }
  // Service sockets from the fd store, by service (tools/daemon/sd_env.hpp); each actor
  // takes its own at creation if they still match its spec. Set before boot().
  void set_stored_sockets(std::map<std::string, std::vector<runtime::Fd>> sockets) {
    stored_sockets_ = std::move(sockets);
  }
  Supervisor(Options opts, EventLog& events);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Recovers what a previous daemon (crash) or image (upgrade: `inherited`, the
  // hand-over with its pidfds and pipes) left running, then starts every autostart
  // service from `config` and the service store in dependency order. Recovery is a
  // plan (reconciler.hpp): surveyed, planned, then executed and logged here, so that
  // instances are adopted or stopped before anything starts and nothing runs twice.
  // Returns once every start has been requested (not awaited: a service waiting for
  // a dependency keeps waiting in the background).
  runtime::Task<void> boot(config::Config config, std::optional<Inheritance> inherited = std::nullopt);
  // True after boot() has run: /readyz.
  bool ready() const noexcept { return ready_; }
  // The daemon's cgroup v2 subtree; null: none usable.
  const runtime::CgroupTree* cgroups() const noexcept { return opts_.cgroups; }

  // What applying `next` (freshly parsed) would do to the services as they are now.
  ReloadPlan plan(const config::Config& next) const;
  // Reparses nothing itself: applies plan(next).
  runtime::Task<ReloadOutcome> apply(config::Config next);
  // Applies exactly `plan`, computed by plan(next) with nothing in between. TRICKY: by
  // reference (the caller's outlives the call): GCC 12 frees a by-value temporary of a
  // co_await's full-expression twice.
  runtime::Task<ReloadOutcome> apply(const ReloadPlan& plan, config::Config next);
  // Records a reload whose parse failed; the running config stays.
  void reload_failed(const std::vector<config::Error>& errors);

  // Operator commands. ENOENT for an unknown service.
  // Deps::follow: a start first starts each dependency (transitively) that is down, a stop
  // first stops each dependent that is up, in dependency order; *also (if given) gets their
  // names. Deps::ignore: only the service — a start then does not wait for dependencies.
  enum class Deps { follow, ignore };
  runtime::Result<void> start(const std::string& name, Deps deps = Deps::follow, std::vector<std::string>* also = nullptr);
  runtime::Result<void> stop(const std::string& name, Deps deps = Deps::follow, std::vector<std::string>* also = nullptr);
  runtime::Result<void> restart(const std::string& name);
  runtime::Result<void> signal(const std::string& name, int sig);
  // An attached service (spec.attach) takes `pid` now, in place of what it watched (left
  // running). EINVAL: not an attached service; ESRCH: no such process.
  runtime::Result<void> attach(const std::string& name, pid_t pid);
  // Queues bytes for the service's stdin. ENOTSUP when its stdin is not enabled,
  // ESRCH when it is not running.
  runtime::Result<void> write_stdin(const std::string& name, std::string bytes);

  // Registered services (API / CLI): persisted in data_dir/services.
  // EEXIST when the name is taken; EINVAL (with *errors) when it does not validate
  // against the running set (ports, dependencies, cycles); EDQUOT (with *errors), nothing
  // written, when a new one would pass [http] max_registered_services.
  runtime::Task<runtime::Result<void>> add(config::ServiceSpec spec, std::string toml_text,
                                           bool replace, std::vector<std::string>* errors);
  runtime::Task<runtime::Result<void>> remove(std::string name);

  // The upgrade. Services starting or stopping (the hand-over refuses them: a
  // readiness wait or a stop in progress does not survive an exec).
  std::vector<std::string> in_transition() const;
  // Every actor stops watching its instance (the instance is untouched) and fills
  // its record; empty when an actor did not answer within `limit` (then every actor
  // has been resumed). Records own nothing: their fds stay the actors'.
  runtime::Task<std::map<std::string, std::shared_ptr<HandoverRecord>>> handover(std::chrono::milliseconds limit);
  // The exec failed: supervision continues in this image.
  void resume_after_handover();
  runtime::Task<void> write_snapshot();
  // The trigger dispatcher's bindings, written into state.json with the services.
  void set_trigger_bindings(std::vector<TriggerBinding> bindings);

  // Stops every service in reverse dependency order, writes the final snapshot.
  runtime::Task<void> shutdown();

  std::vector<ServiceStatus> list() const;
  std::optional<ServiceStatus> status(const std::string& name) const;
  const config::ServiceSpec* spec(const std::string& name) const;
  bool from_config(const std::string& name) const;
  // DOCKLESS_SUPERVISOR's value in what the daemon starts (orphan_scan.hpp).
  const std::string& supervisor_id() const { return supervisor_id_; }
  std::shared_ptr<LogStore> logs(const std::string& name) const;
  // The running config, but for its services: they live in the entries (spec(), list()),
  // and `services` is empty.
  const config::Config& config() const noexcept { return config_; }
  runtime::Notify& changed() noexcept { return changed_; }
  // Bumped with every change a client could see (status, spec, the set of services):
  // equal generations mean an answer built earlier is still exact.
  std::uint64_t generation() const noexcept { return generation_; }
  config::ServiceContext service_context() const;

 private:
  struct Entry;
  Entry* find(const std::string& name) const;
  void create_entry(config::ServiceSpec given, bool from_config);
  void request_start(Entry& e);
  bool update_entry(Entry& e, const config::ServiceSpec& spec);
  runtime::Task<void> start_when_ready(std::string name, std::stop_token stop);
  runtime::Task<void> run_actor(Entry* e);
  runtime::Task<void> stop_entries(std::vector<std::string> names, Command::Kind kind = Command::Kind::shutdown,
                                   std::stop_source cancel = std::stop_source(std::nostopstate));
  runtime::Task<void> snapshot_writer(std::stop_token stop);
  void on_status(const ServiceStatus& s);
  void announce() noexcept;
  std::vector<config::ServiceSpec> all_specs() const;
  Snapshot make_snapshot() const;

  Options opts_;
  std::string supervisor_id_;  // the canonical data_dir: services' DOCKLESS_SUPERVISOR
  EventLog& events_;
  ServiceStore store_;
  config::Config config_;
  std::map<std::string, std::unique_ptr<Entry>> entries_;
  const std::vector<config::ServiceSpec>* applying_ = nullptr;  // apply()'s services, while it runs
  std::uint64_t registering_ = 0;  // new registrations whose file is being saved
  runtime::Scope actors_;     // the ServiceActors
  runtime::Scope background_; // starters, stoppers, the snapshot writer
  runtime::Notify changed_;
  std::uint64_t generation_ = 0;
  runtime::Notify snapshot_dirty_;
  bool snapshot_pending_ = false;
  std::vector<TriggerBinding> trigger_bindings_;
  bool ready_ = false;
  std::map<std::string, runtime::Fd> stored_pipes_;
  std::map<std::string, std::vector<runtime::Fd>> stored_sockets_;
};

}  // namespace actors
