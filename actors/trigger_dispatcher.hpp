#pragma once
// TriggerDispatcher: what the node does with a webhook delivery once the front end (http/api,
// which checks the method, the signature and `match`) has verified it.
//
// The set of triggers is an immutable snapshot (shared_ptr<const TriggerSet>) swapped whole on
// install. A delivery carries the snapshot that judged it, so a delivery verified under the old
// set during a reload runs the old action, and the set stays alive for its job's whole run.
//
// What outlives a snapshot is kept per trigger id: the delivery ids and signatures already run
// (the last kRememberedIds entries, persisted in data_dir/triggers/<id>/deliveries so a daemon restart does not
// re-run a redelivered hook), whether a job runs, the last delivery and action, and the job's
// LogStore (data_dir/triggers/<id>/logs). At most one job per trigger runs at a time; a delivery
// meanwhile is refused as busy and not remembered, so the sender's retry can run it.
// A delivery id is not signed (GitHub, hmac): the same signed content under a new id is a
// duplicate too, so a captured delivery runs its action at most once while remembered.
//
// Every delivery's answer is recorded once (the trigger's last delivery, a trigger_delivery
// event): by dispatch() for the deliveries it decides, by refused() for the ones the front end
// turned away before. The answer's status is the HTTP status the sender gets; it is part of the
// recorded delivery, which is why the dispatcher's own outcomes come with theirs.
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/event_log.hpp"
#include "actors/refusal_limiter.hpp"
#include "actors/log_store.hpp"
#include "actors/supervisor.hpp"
#include "config/config.hpp"
#include "runtime/result.hpp"
#include "runtime/scope.hpp"
#include "runtime/task.hpp"

namespace actors {

struct TriggerSet {
  std::uint64_t version = 0;
  std::vector<config::Trigger> triggers;
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
  // exec handlers: the event (trigger, provider, event, delivery, received time, the headers
  // that matter, the body) as one JSON document, written to the job's stdin.
  std::string payload = {};
};

enum class DeliveryOutcome {
  accepted,   // the action was posted or the job started
  duplicate,  // this delivery id (or this signed content) ran already
  busy,       // a job of this trigger still runs
  failed,     // the action could not be done (not remembered: a redelivery may succeed)
  rejected,   // refused by the front end: method, signature, malformed body
  ignored,    // verified, but `match` does not apply
  ping,       // GitHub's ping: acknowledged, no action
};
std::string_view outcome_name(DeliveryOutcome o);

struct DeliveryAnswer {
  DeliveryOutcome outcome = DeliveryOutcome::accepted;
  int status = 0;      // the HTTP status the sender is answered with
  std::string reason;  // why, for the sender and the event log ("" when nothing to say)
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

  // Decides duplicate / busy / run, acts (posts to the supervisor or starts the job) and
  // records the answer. Never suspends: the job runs as an actor of this dispatcher.
  DeliveryAnswer dispatch(const TriggerDelivery& delivery);
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

  // Kills running jobs (their process groups), waits for them and pending writes.
  runtime::Task<void> shutdown();

 private:
  struct TriggerState {
    std::deque<std::string> ids;  // oldest first
    std::set<std::string, std::less<>> id_set;
    TriggerActivity activity;
    std::shared_ptr<LogStore> logs;
    bool persisting = false;
    bool dirty = false;
  };

  void record(const config::Trigger& t, const std::string& delivery, const std::string& event,
              const DeliveryAnswer& answer, std::string_view source);
  DeliveryAnswer answer(const TriggerDelivery& d, DeliveryOutcome outcome, int status, std::string reason);
  DeliveryAnswer act(const TriggerDelivery& d, TriggerState& st);
  TriggerState& state(const std::string& id);
  std::string dir_of(const std::string& id) const;
  void remember(const std::string& id, TriggerState& st, const TriggerDelivery& d);
  void remember_key(TriggerState& st, const std::string& key);
  runtime::Task<void> persist(std::string id);
  runtime::Task<void> run(TriggerDelivery delivery, std::shared_ptr<LogStore> logs);

  Options opts_;
  Supervisor& supervisor_;
  EventLog& events_;
  std::shared_ptr<const TriggerSet> current_;
  std::map<std::string, std::unique_ptr<TriggerState>, std::less<>> states_;
  runtime::Scope jobs_;
  RefusalLimiter refusals_;
};

}  // namespace actors
