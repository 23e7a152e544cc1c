#pragma once
// What each caller may see of the node's configuration (issue #15: `public_read` shows
// state, never configuration secrets). The auth gate says who is asking
// (Request::principal); the handlers ask here what that caller sees:
//
//   - a public reader (no credentials, `[http] public_read`): state only. Command
//     lines (`command`, a health check's `exec`, `docker_args`, a trigger's `run`) are
//     null, `env` keeps its names with null values, trigger job output and the
//     deliveries' request data are refused or left out, and of the events only the
//     kinds that carry no request data are shown, without their `command`;
//   - a key holder or the unix socket: the configuration, `env` still with null values;
//   - a key holder or the unix socket asking `?secrets=1` on GET /v1/services/{name}:
//     the `env` values too, recorded as a `secrets_read` event naming the key.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "actors/event_log.hpp"
#include "actors/event_type.hpp"
#include "http/message.hpp"

namespace http::api {

enum class Disclosure : std::uint8_t {
  state,    // public readers
  config,   // key holders and the unix socket, by default
  secrets,  // the same with ?secrets=1: env values included
};

// state for a public reader, config for anyone else.
Disclosure disclosure_for(const Principal& who) noexcept;

// nullopt for a trusted caller; for a public reader, the 401 saying that `what`
// needs an API key even with public_read.
std::optional<Response> require_key(const Request& req, std::string_view what);

// May a public reader see events of this kind? No for those that carry request data
// (webhook deliveries: client-chosen ids, events, refusal reasons; what a trigger job
// did with them) or name who did what with a key (secrets_read).
bool public_event_kind(actors::EventType type) noexcept;

// One events.log line as a public reader gets it: nullopt when its kind is not shown
// (an unknown kind included), else the line without any `command` field.
std::optional<std::string> public_event_line(const actors::EventRecord& record);

// `env` with its names kept and its values null, for everyone but Disclosure::secrets.
nlohmann::json redacted_env(const nlohmann::json& env);

}  // namespace http::api
