#pragma once
// Webhook triggers ([[triggers]]) on the HTTP side: a delivery is verified here (method,
// signature through http/webhook, `match` on headers and body) and handed to the
// actors::TriggerDispatcher, which decides and acts; its answer becomes the HTTP response.
//
// The router pins the dispatcher's current TriggerSet into a request as soon as its head is
// read (Router::Delegate), so a delivery whose body is still arriving when SIGHUP swaps the set
// is judged by the version it started under (old secret, old action).
//
// Also here: the route-conflict check of prepare() and install(), the auth gate's claims(), and
// GET /v1/triggers and GET /v1/triggers/{id}/logs, which read the dispatcher's data; the queue's
// routes (/v1/trigger-events: list, inspect, replay) are in trigger_events.cpp.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/trigger_dispatcher.hpp"
#include "config/config.hpp"
#include "http/router.hpp"

namespace http {

class TriggerRoutes {
 public:
  // The dispatcher must outlive this object, which must outlive the router it is attached to.
  explicit TriggerRoutes(actors::TriggerDispatcher& dispatcher) : dispatcher_(dispatcher) {}
  TriggerRoutes(const TriggerRoutes&) = delete;
  TriggerRoutes& operator=(const TriggerRoutes&) = delete;

  // Phase one of a reload (actors/reload.hpp): every check of install() — no path is one of
  // `router`'s routes, every provider is known, the dispatcher can prepare the set — and
  // nothing installed. commit() installs what prepare() accepted (errors empty).
  actors::TriggerDispatcher::Prepared prepare(const std::vector<config::Trigger>& triggers,
                                              const Router& router) const;
  void commit(actors::TriggerDispatcher::Prepared prepared) { dispatcher_.install(std::move(prepared)); }

  // Both at once (start-up): errors, and nothing changed, when prepare() refuses.
  std::vector<std::string> install(const std::vector<config::Trigger>& triggers, const Router& router);

  // Is this request a webhook delivery (any method: a wrong one is answered 405 here)? For
  // the API's auth gate, which leaves trigger paths to the triggers' own signatures.
  bool claims(std::string_view method, std::string_view path) const;

  // The delegate for trigger paths, GET /v1/triggers and GET /v1/triggers/{id}/logs.
  void attach(Router& router);

 private:
  runtime::Task<Response> handle(Request& req);
  Response refuse(const Request& req, const config::Trigger& t, const std::string& delivery, const std::string& event,
                  actors::DeliveryOutcome outcome, int status, const std::string& reason);
  Response list(const Request& req) const;
  Response logs(const std::string& id, const Request& req);
  // trigger_events.cpp
  void attach_events(Router& router);
  nlohmann::json queue_counts(const std::string& trigger) const;
  Response list_events(const Request& req) const;
  Response inspect_event(const std::string& id, const Request& req) const;
  runtime::Task<Response> replay_event(std::string id, const Request& req);

  actors::TriggerDispatcher& dispatcher_;
};

}  // namespace http
