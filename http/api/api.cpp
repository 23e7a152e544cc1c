#include "http/api/api.hpp"

namespace http {

void register_api(Router& router, ApiContext& ctx) {
  (void)ctx;
  router.get("/health", [](Request&) -> runtime::Task<Response> {
    co_return Response::text(200, "ok\n", "text/plain");
  });
}

}  // namespace http
