// Service specs sent to POST/PUT /v1/services, as JSON or TOML bodies: the JSON is
// turned into TOML and validated by the config parser, so both paths meet here.
#include <cstdint>
#include <string>

#include "http/api/handlers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  http::Request req;
  req.method = "POST";
  req.headers.add("Content-Type", data[0] & 1 ? "application/toml" : "application/json");
  req.body.assign(reinterpret_cast<const char*>(data + 1), size - 1);
  config::ServiceContext ctx;
  ctx.base_dir = "/nonexistent";
  ctx.inputs.env = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  ctx.inputs.read_file = config::map_files({});
  config::Port db;
  db.number = 5432;
  ctx.ports["db"] = db;
  ctx.ports["web"] = std::nullopt;
  const http::api::ParsedSpec out = http::api::parse_spec_body(req, ctx, data[0] & 2 ? "web" : "");
  // Exactly one of: a spec, or an error answer.
  if (out.spec.has_value() == out.error.has_value()) __builtin_trap();
  if (out.error && (out.error->status < 400 || out.error->status > 499)) __builtin_trap();
  if (out.spec) (void)http::api::spec_json(*out.spec).dump();
  return 0;
}
