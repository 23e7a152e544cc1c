#pragma once
// Webhook triggers ([[triggers]]): a verified HTTP delivery turned into an action on the node.
//
// The set of triggers is an immutable snapshot (shared_ptr<const TriggerSet>) swapped whole on
// reload. The router pins the current snapshot into a request as soon as its head is read
// (Router::Delegate), so a delivery whose body is still arriving when SIGHUP swaps the set is
// judged by the version it started under (old secret, old action).
//
// What outlives a reload is kept per trigger id (TriggerState): the delivery ids already run
// (the last kRememberedIds, persisted in data_dir/triggers/<id>/deliveries so a daemon restart
// does not re-run a redelivered hook), whether a job runs, the last delivery, and the job's
// LogStore (data_dir/triggers/<id>/logs). At most one job per trigger runs at a time; a
// delivery meanwhile is refused with 409 and not remembered, so the sender's retry can run it.
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
#include "actors/log_store.hpp"
#include "actors/supervisor.hpp"
#include "config/config.hpp"
#include "http/router.hpp"
#include "http/webhook.hpp"
#include "runtime/scope.hpp"

namespace http {

struct TriggerDef {
  config::Trigger spec;
  webhook::Provider provider = webhook::Provider::github;
};

struct TriggerSet {
  std::uint64_t version = 0;
  std::vector<TriggerDef> triggers;
  std::map<std::string, std::size_t, std::less<>> by_path;  // path -> index in triggers
  const TriggerDef* find_path(std::string_view path) const;
  const TriggerDef* find_id(std::string_view id) const;
};

class TriggerDispatcher {
 public:
  static constexpr std::size_t kRememberedIds = 1000;

  struct Options {
    std::string data_dir;
    std::vector<std::string> base_env;  // jobs' environment ("KEY=VALUE"), before DOCKLESS_*
  };
  TriggerDispatcher(Options opts, actors::Supervisor& supervisor, actors::EventLog& events);
  ~TriggerDispatcher();
  TriggerDispatcher(const TriggerDispatcher&) = delete;
  TriggerDispatcher& operator=(const TriggerDispatcher&) = delete;

  // Errors (nothing changed) when a path is also one of `router`'s routes; otherwise swaps
  // in the new set. Loads the remembered delivery ids of triggers seen for the first time.
  std::vector<std::string> install(const std::vector<config::Trigger>& triggers, const Router& router);

  // Is this request a webhook delivery (any method: a wrong one is answered 405 here)? For
  // the API's auth gate, which leaves trigger paths to the triggers' own signatures.
  bool claims(std::string_view method, std::string_view path) const;

  std::shared_ptr<const TriggerSet> snapshot() const { return current_; }

  // The delegate for trigger paths, GET /v1/triggers and GET /v1/triggers/{id}/logs.
  void attach(Router& router);

  // Kills running jobs (their process groups), waits for them and pending writes.
  runtime::Task<void> shutdown();

 private:
  struct TriggerState {
    std::deque<std::string> ids;  // oldest first
    std::set<std::string, std::less<>> id_set;
    bool job_running = false;
    nlohmann::json last_delivery;  // null until the first one
    nlohmann::json last_job;
    std::unique_ptr<actors::LogStore> logs;
    bool persisting = false;
    bool dirty = false;
  };

  runtime::Task<Response> handle(Request& req);
  Response finish(const TriggerDef& t, const std::string& delivery, const std::string& event,
                  const std::string& outcome, int status, const std::string& reason);
  TriggerState& state(const std::string& id);
  std::string dir_of(const std::string& id) const;
  void remember(const std::string& id, TriggerState& st, const std::string& delivery);
  runtime::Task<void> persist(std::string id);
  runtime::Task<void> run_job(const TriggerDef* def, std::shared_ptr<const TriggerSet> pin, std::string delivery,
                              std::string event);
  actors::LogStore* logs_of(const std::string& id, std::string* error);
  nlohmann::json list() const;
  Response logs(const std::string& id, const Request& req);

  Options opts_;
  actors::Supervisor& supervisor_;
  actors::EventLog& events_;
  std::shared_ptr<const TriggerSet> current_;
  std::map<std::string, std::unique_ptr<TriggerState>, std::less<>> states_;
  runtime::Scope jobs_;
};

}  // namespace http
