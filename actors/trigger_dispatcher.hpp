#pragma once
// TriggerDispatcher: what the node does with a webhook delivery once the front end (http/api,
// which checks the method, the signature and `match`) has verified it.
//
// A delivery that is not a duplicate becomes a TriggerEvent in the durable queue
// (actors/trigger_queue.hpp, data_dir/triggers/queue.log) before the sender gets its 202; a
// worker per trigger (trigger_worker.cpp) then dispatches its events one at a time, oldest
// first, to the trigger's handler: restart/start/stop (posted to the supervisor), run/exec (a
// job), or an HTTP POST of the event. A failed dispatch is retried after `backoff`, doubling,
// while later events of the trigger go on; after `max_attempts` it is dead-lettered. A full
// queue answers 503 (the sender retries). An event is dispatched by the trigger's definition
// current at dispatch time (its binding version is in the event's records and events).
//
// The set of triggers is an immutable snapshot (shared_ptr<const TriggerSet>) swapped whole on
// install; a running handler keeps the set it started with alive.
//
// What outlives a snapshot is kept per trigger id: the delivery ids and signatures already
// acknowledged (the last kRememberedIds entries, persisted in data_dir/triggers/<id>/deliveries,
// and the queue's own events, so a daemon restart does not queue a redelivered hook twice),
// whether a handler runs, the last delivery and action, and the job's LogStore
// (data_dir/triggers/<id>/logs). A delivery id is not signed (GitHub, hmac): the same signed
// content under a new id is a duplicate too, so a captured delivery is queued at most once while
// remembered.
//
// Every delivery's answer is recorded once (the trigger's last delivery, a trigger_delivery
// event): by dispatch() for the deliveries it decides, by refused() for the ones the front end
// turned away before.
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/event_log.hpp"
#include "actors/refusal_limiter.hpp"
#include "actors/log_store.hpp"
#include "actors/supervisor.hpp"
#include "actors/trigger_queue.hpp"
#include "config/config.hpp"
#include "runtime/result.hpp"
#include "runtime/scope.hpp"
#include "runtime/task.hpp"

namespace actors {

struct TriggerSet {
  std::uint64_t version = 0;
  std::vector<config::Trigger> triggers;
  std::vector<std::uint64_t> binding_versions;  // per trigger, as in state.json
  std::map<std::string, std::size_t, std::less<>> by_path;  // path -> index in triggers
  const config::Trigger* find_path(std::string_view path) const;
  const config::Trigger* find_id(std::string_view id) const;
};

// A delivery whose signature and match have been checked: everything the action needs.
struct TriggerDelivery {
  std::shared_ptr<const TriggerSet> set;   // the version that judged it; owns *trigger
  const config::Trigger* trigger = nullptr;
  std::string id;     // the sender's delivery id; "" when it sent none (then never deduplicated)
  std::string event;  // the provider's event name ("" when it has none)
  std::string signature;  // hex of the verified signature ("" when none: then only the id counts)
  std::string source;  // the sender's address (Request::peer); refusal events are limited per source
  nlohmann::json headers = nlohmann::json::object();  // the ones that say what was sent, never a signature
  std::string body = {};
  bool body_json = false;  // the front end parsed it as JSON within its depth limit
};

enum class DeliveryOutcome {
  accepted,   // queued durably; its handler runs from the queue
  duplicate,  // this delivery id (or this signed content) was accepted already
  full,       // the queue is full (503; not remembered, the sender's retry may get in)
  failed,     // it could not be queued: the disk write failed (not remembered)
  rejected,   // refused by the front end: method, signature, malformed body
  ignored,    // verified, but `match` does not apply
  ping,       // GitHub's ping: acknowledged, no action
};
std::string_view outcome_name(DeliveryOutcome o);

struct DeliveryAnswer {
  DeliveryOutcome outcome = DeliveryOutcome::accepted;
  int status = 0;      // the HTTP status the sender is answered with
  std::string reason;  // why, for the sender and the event log ("" when nothing to say)
  std::string queued = {};  // accepted: the queued event's id
};

// What GET /v1/triggers shows of a trigger besides its spec.
// (The implicit noexcept constructor builds two null json values, which cannot throw;
// clang-tidy 14 cannot see that through nlohmann's invariant checks.)
struct TriggerActivity {  // NOLINT(bugprone-exception-escape)
  bool running = false;
  nlohmann::json last_delivery;  // null until the first one
  nlohmann::json last_action;    // null until the first action or job
};

class TriggerDispatcher {
 public:
  // Entries, two per delivery (its id and its signature): the last 1000 deliveries.
  static constexpr std::size_t kRememberedIds = 2000;

  struct Options {
    std::string data_dir;
    runtime::Environment base_env;  // forwarded_environment() of the daemon's (service_env.hpp)
    // The user of jobs whose trigger names none (default_job_user() in the daemon); empty:
    // the daemon's own.
    std::string default_user = {};
  };
  TriggerDispatcher(Options opts, Supervisor& supervisor, EventLog& events);
  ~TriggerDispatcher();
  TriggerDispatcher(const TriggerDispatcher&) = delete;
  TriggerDispatcher& operator=(const TriggerDispatcher&) = delete;

  // A set of triggers ready to swap in, or why it cannot be.
  struct Prepared {
    std::vector<std::string> errors;
    std::shared_ptr<TriggerSet> set;  // null when errors
  };
  // Phase one of installing a set the front end has checked (providers, paths free): builds it
  // and creates every trigger's directory, the one step that can fail, without swapping
  // anything in. A reload (actors/reload.hpp) prepares before it decides.
  Prepared prepare(const std::vector<config::Trigger>& triggers) const;
  // Phase two: swaps in a set prepare() accepted (never fails). Loads the remembered delivery
  // ids of triggers seen for the first time.
  void install(Prepared prepared);
  // Both phases at once (start-up): errors, and nothing swapped, when prepare() refuses.
  std::vector<std::string> install(const std::vector<config::Trigger>& triggers);
  std::shared_ptr<const TriggerSet> snapshot() const { return current_; }
  // Whom a `run` trigger's job runs as: its own `user`, else the default chosen at start-up;
  // empty: the daemon's own user.
  const std::string& job_user(const config::Trigger& t) const { return t.user.empty() ? opts_.default_user : t.user; }

  // Start-up, before the first install: opens the queue (dead-lettering events a crash
  // interrupted mid-dispatch) and reads the binding versions state.json kept. "" or the error;
  // without a queue every delivery is answered 503.
  std::string open_queue();
  // Until this is called (after the supervisor's boot) events are queued, not dispatched:
  // a restart:NAME taken from the queue at start-up must find NAME.
  void start_dispatching();
  // Decides duplicate / full / queued, writes the event durably and records the answer; the
  // trigger's worker dispatches it.
  runtime::Task<DeliveryAnswer> dispatch(TriggerDelivery delivery);
  // An operator sends a done or dead event back to the queue (attempts from zero).
  struct ReplayAnswer {
    int status = 202;
    std::string message;
  };
  runtime::Task<ReplayAnswer> replay(std::string event_id);
  const TriggerQueue* queue() const { return queue_.get(); }
  // The worker's next attempt of a pending event (unset: due now or being dispatched).
  std::optional<std::chrono::milliseconds> retry_in(const TriggerEvent& e) const;
  // Records the answer to a delivery the front end refused (`delivery` is the id the sender
  // claims, for tracing only).
  // Refusals (rejected, duplicate, busy) are recorded within RefusalLimiter's budget
  // per `source` address; what they carry from the sender is capped (capped_client_text).
  void refused(const config::Trigger& trigger, const std::string& delivery, const std::string& event,
               const DeliveryAnswer& answer, std::string_view source = {});

  // Null for an id never installed.
  const TriggerActivity* activity(std::string_view id) const;
  // The job's output, opened on first use; shared, so a reader may keep it across suspensions.
  runtime::Result<std::shared_ptr<LogStore>> job_logs(const std::string& id);

  // Kills running jobs (their process groups; their events stay pending for the next start),
  // waits for them and pending writes.
  runtime::Task<void> shutdown();

 private:
  struct TriggerState {
    std::deque<std::string> ids;  // oldest first
    std::set<std::string, std::less<>> id_set;
    std::set<std::string, std::less<>> queuing;  // ids and signatures being written to the queue
    TriggerActivity activity;
    std::shared_ptr<LogStore> logs;
    bool persisting = false;
    bool dirty = false;
    bool working = false;  // a worker runs for this trigger
    std::shared_ptr<std::stop_source> nap;  // wakes the worker from a backoff wait
  };
  // What a handler's run came to.
  struct HandlerResult {
    bool ok = false;
    bool interrupted = false;  // stopped by the daemon's shutdown: not an attempt
    std::string error;
  };

  void record(const config::Trigger& t, const std::string& delivery, const std::string& event,
              const DeliveryAnswer& answer, std::string_view source);
  DeliveryAnswer answer(const TriggerDelivery& d, DeliveryOutcome outcome, int status, std::string reason);
  TriggerState& state(const std::string& id);
  bool seen(const TriggerState& st, const std::string& key) const;
  std::vector<TriggerBinding> bindings_for(TriggerSet& set);
  // trigger_worker.cpp
  void wake_worker(const std::string& trigger);
  runtime::Task<void> work(std::string trigger);
  runtime::Task<HandlerResult> handle(std::shared_ptr<const TriggerSet> set, const config::Trigger& t,
                                      TriggerEvent event);
  HandlerResult act(const config::Trigger& t, const TriggerEvent& e);
  runtime::Task<HandlerResult> post(const config::Trigger& t, const TriggerEvent& e);
  runtime::Task<void> settle(std::string event_id, const config::Trigger* t, HandlerResult r, int attempt);
  std::string dir_of(const std::string& id) const;
  void remember(const std::string& id, TriggerState& st, const TriggerDelivery& d);
  void remember_key(TriggerState& st, const std::string& key);
  runtime::Task<void> persist(std::string id);
  runtime::Task<HandlerResult> run(const config::Trigger& t, const TriggerEvent& e, std::shared_ptr<LogStore> logs);

  Options opts_;
  Supervisor& supervisor_;
  EventLog& events_;
  std::shared_ptr<const TriggerSet> current_;
  std::map<std::string, std::unique_ptr<TriggerState>, std::less<>> states_;
  std::unique_ptr<TriggerQueue> queue_;
  std::string queue_error_;  // why there is no queue
  bool dispatching_ = false;
  std::map<std::string, TriggerBinding, std::less<>> bindings_;  // by trigger id, as last written
  runtime::Scope jobs_;
  RefusalLimiter refusals_;
};

}  // namespace actors
