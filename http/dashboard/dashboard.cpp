#include "http/dashboard/dashboard.hpp"

namespace http {

void register_dashboard(Router& router) {
  router.get("/", [](Request&) -> runtime::Task<Response> {
    co_return Response::text(200, "<!doctype html><title>Dockless</title><h1>Dockless</h1>\n",
                             "text/html; charset=utf-8");
  });
}

}  // namespace http
