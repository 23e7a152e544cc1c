// Internal: checks that need every service at once.
#pragma once

#include <set>
#include <string>

#include "config/detail.hpp"

namespace config::detail {

// config.services may include services that had errors (as far as they could be read); `failed`
// names them so that what is missing from them is not reported a second time.
void validate_into(const Config& config, const std::set<std::string>& failed, Sink& sink);

}  // namespace config::detail
