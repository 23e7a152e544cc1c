#pragma once
// What a service's process is started with: its environment, identity and ports.
// Kept apart from the actor so each piece is testable without spawning.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "runtime/process.hpp"

namespace actors {

// What a service keeps of the daemon's environment: LANG, LC_ALL and TZ, when set (the
// locale and time zone chosen for the machine). Nothing else: the daemon's environment
// holds its API keys, HMAC secret and whatever ${VAR} its config referenced, none of
// which a service (maybe running as another user) may read. Taken once, at start.
runtime::Environment forwarded_environment(const runtime::Environment& daemon);

inline constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// The fixed base every process started for a service, a health check or a trigger job
// begins with (docs/config.md, "Environment"): PATH, HOME, USER, LOGNAME and SHELL of
// `uid`'s passwd entry (HOME=/ alone for a uid without one), then `forwarded`.
runtime::Environment base_environment(const runtime::Environment& forwarded, uid_t uid);

// The user trigger jobs run as when theirs names none: "nobody" when the daemon is root
// (and it exists), else the daemon's own user (empty: no change of identity).
std::string default_job_user();

// Replaces $PORT / ${PORT} with `port` (when non-zero) and ${services.NAME.port} with
// what `port_of` says; unknown references stay as written.
std::string substitute_service_refs(
    std::string text, std::uint16_t port,
    const std::function<std::optional<std::uint16_t>(const std::string&)>& port_of);

// The ports a start will use: fixed ones checked free (a port someone else holds
// is an error naming it, reported before the process is started), "auto" ones
// picked by the kernel. The primary port comes first.
std::optional<std::vector<std::uint16_t>> resolve_ports(const config::ServiceSpec& spec,
                                                        std::string* error);

// user/group names (or numbers) to ids on `o`; the user's primary group and its
// supplementary groups unless `group` says otherwise.
bool apply_identity(const std::string& user, const std::string& group, runtime::SpawnOptions& o,
                    std::string* error);

}  // namespace actors
