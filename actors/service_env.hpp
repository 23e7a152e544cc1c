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

// What a service inherits of the daemon's environment: all of it but the daemon's own
// settings (DOCKLESS_*, NOTIFY_SOCKET, LISTEN_*, WATCHDOG_*), which are not its business.
runtime::Environment inheritable_environment(const runtime::Environment& daemon);

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
