#pragma once
// The web dashboard: static assets compiled into the binary, served at "/" and
// "/assets/...". No CDN: a Pi may be offline.
#include "http/router.hpp"

namespace http {

void register_dashboard(Router& router);

}  // namespace http
