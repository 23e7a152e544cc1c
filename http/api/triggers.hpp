#pragma once
// Webhook triggers ([[triggers]]) on the HTTP side: a delivery is verified here (method,
// signature through http/webhook, `match` on headers and body) and handed to the
// actors::TriggerDispatcher, which decides and acts; its answer becomes the HTTP response.
//
// The router pins the dispatcher's current TriggerSet into a request as soon as its head is
// read (Router::Delegate), so a delivery whose body is still arriving when SIGHUP swaps the set
// is judged by the version it started under (old secret, old action).
//
// Also here: the route-conflict check of install(), the auth gate's claims(), and
// GET /v1/triggers and GET /v1/triggers/{id}/logs, which read the dispatcher's data.
#include <string>
#include <string_view>
#include <vector>

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

  // Errors (nothing changed) when a path is also one of `router`'s routes or a provider is
  // unknown; otherwise the dispatcher installs the set.
  std::vector<std::string> install(const std::vector<config::Trigger>& triggers, const Router& router);

  // Is this request a webhook delivery (any method: a wrong one is answered 405 here)? For
  // the API's auth gate, which leaves trigger paths to the triggers' own signatures.
  bool claims(std::string_view method, std::string_view path) const;

  // The delegate for trigger paths, GET /v1/triggers and GET /v1/triggers/{id}/logs.
  void attach(Router& router);

 private:
  runtime::Task<Response> handle(Request& req);
  Response refuse(const config::Trigger& t, const std::string& delivery, const std::string& event,
                  actors::DeliveryOutcome outcome, int status, const std::string& reason);
  Response list() const;
  Response logs(const std::string& id, const Request& req);

  actors::TriggerDispatcher& dispatcher_;
};

}  // namespace http
