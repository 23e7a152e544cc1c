#include "http/api/disclosure.hpp"

#include "http/auth.hpp"

namespace http::api {

using actors::EventType;

Disclosure disclosure_for(const Principal& who) noexcept {
  return who.trusted() ? Disclosure::config : Disclosure::state;
}

std::optional<Response> require_key(const Request& req, std::string_view what) {
  if (req.principal.trusted()) return std::nullopt;
  return auth::unauthorized("missing_key", std::string(what) + " needs an API key, even with public_read");
}

bool public_event_kind(EventType type) noexcept {
  // No default: a new kind does not compile until someone decides whether public
  // readers may see it.
  switch (type) {
    case EventType::trigger_delivery:
    case EventType::trigger_action:
    case EventType::trigger_job_finished:
    case EventType::secrets_read:
    case EventType::refusals_suppressed:  // senders' addresses
    case EventType::trigger_retry:        // handler errors: URLs, exit codes of deploy jobs
    case EventType::trigger_dead_lettered:
    case EventType::trigger_replayed:
    case EventType::trigger_queue_error:
      return false;
    case EventType::daemon_started:
    case EventType::daemon_stopping:
    case EventType::daemon_stopped:
    case EventType::upgraded:
    case EventType::upgrade_exec:
    case EventType::upgrade_failed:
    case EventType::reload_succeeded:
    case EventType::reload_failed:
    case EventType::tls_reloaded:
    case EventType::start_requested:
    case EventType::stop_requested:
    case EventType::restart_requested:
    case EventType::attach_requested:
    case EventType::signal:
    case EventType::service_registered:
    case EventType::service_updated:
    case EventType::service_removed:
    case EventType::service_store_error:
    case EventType::waiting:
    case EventType::started:
    case EventType::attached:
    case EventType::adopt_failed:
    case EventType::detached:
    case EventType::spawn_failed:
    case EventType::awaiting_ready:
    case EventType::ready:
    case EventType::stopping:
    case EventType::killed:
    case EventType::exited:
    case EventType::stopped:
    case EventType::backoff:
    case EventType::failed:
    case EventType::health:
    case EventType::restart_unhealthy:
    case EventType::listening:
    case EventType::activated:
    case EventType::overlap_started:
    case EventType::replaced:
    case EventType::overlap_failed:
    case EventType::limits_applied:
    case EventType::oom_killed:
    case EventType::recovery_plan:
    case EventType::orphan_stopped:
    case EventType::stdin_dropped:
    case EventType::log_dropped:
    case EventType::log_resumed:
    case EventType::log_capture_failed:
    case EventType::log_unavailable:
    case EventType::trigger_deliveries_not_saved:
      return true;
  }
  return false;
}

std::optional<std::string> public_event_line(const actors::EventRecord& record) {
  // Ordered, so a line that loses its command keeps the journal's field order.
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(record.line, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  const auto kind = j.find("kind");
  if (kind == j.end() || !kind->is_string()) return std::nullopt;
  const std::string& name = kind->get_ref<const std::string&>();
  bool shown = false;
  for (EventType t : actors::kAllEventTypes)
    if (actors::to_string(t) == name) {
      shown = public_event_kind(t);
      break;
    }
  if (!shown) return std::nullopt;
  // started, attached and detached name the command line, which carries tokens; a reload's
  // plan (reload_succeeded) names the old and new ones.
  if (j.erase("command") + j.erase("plan") == 0) return record.line;
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

nlohmann::json redacted_env(const nlohmann::json& env) {
  nlohmann::json out = nlohmann::json::object();
  if (env.is_object())
    for (auto it = env.begin(); it != env.end(); ++it) out[it.key()] = nullptr;
  return out;
}

}  // namespace http::api
