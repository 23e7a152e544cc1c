#pragma once
// The API's sockets: handed over by the previous image (upgrade), passed by the service
// manager (socket activation), or bound here; then the CLI's unix socket. They come up
// before boot, so a port clash fails the daemon at once, before any service is started
// (and would have to be stopped again).
#include <optional>

#include "config/config.hpp"
#include "http/server.hpp"
#include "tools/daemon/sd_env.hpp"
#include "tools/daemon/serve.hpp"
#include "tools/daemon/upgrade.hpp"

namespace tools {

http::ServerLimits server_limits(const config::Config& cfg);

// False (logged) when the API's TCP port cannot be had; the unix socket is best effort.
bool bind_listeners(http::Server& server, const ServeOptions& opts, const config::Config& cfg,
                    ManagerEnvironment& manager, std::optional<Inheritance>& inherited);

// One line per installed trigger (kind, provider, path, events, handler, where its secret
// came from — never the secret), after the secrets' lookup chain when any uses a reference.
void log_triggers(const config::Config& cfg);

}  // namespace tools
