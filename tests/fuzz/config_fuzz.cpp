// config.toml: TOML syntax, daemon keys, [http], [[triggers]], services, ${...}
// substitution and the dependency graph, all through the one public entry point.
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  config::Inputs in;
  in.env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "HOME") return std::string("/root");
    if (name == "PORT") return std::string("8080");
    return std::nullopt;
  };
  in.read_file = config::map_files({{"/nonexistent/app.env", "A=1\nB=two\n"}});
  config::ParseResult r = config::parse_string(text, "fuzz.toml", "/nonexistent", in);
  // Every refusal carries a message; a success has no errors.
  if (r.ok() == !r.errors.empty()) __builtin_trap();
  for (const auto& e : r.errors)
    if (e.to_string().empty()) __builtin_trap();
  if (r.config)
    for (const auto& s : r.config->services) (void)s.fingerprint();
  return 0;
}
