#pragma once
// The host's side of config::Inputs: config/ opens nothing itself, so the daemon and the CLI
// hand it the daemon's environment (for ${VAR}) and a reader for the config and env files.
#include "config/config.hpp"

namespace actors {

config::Inputs host_config_inputs();

}  // namespace actors
