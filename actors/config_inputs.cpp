#include "actors/config_inputs.hpp"

#include <cstdlib>

#include "runtime/fs.hpp"

namespace actors {

config::Inputs host_config_inputs() {
  config::Inputs in;
  in.env = [](std::string_view name) -> std::optional<std::string> {
    // getenv needs a terminated string; the copy is cheap next to parsing TOML.
    const char* v = std::getenv(std::string(name).c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
  in.read_file = [](const std::string& path, std::string* error) -> std::optional<std::string> {
    runtime::Result<std::string> text = runtime::read_file(path);
    if (!text) {
      *error = text.message();
      return std::nullopt;
    }
    return std::move(text).value();
  };
  return in;
}

}  // namespace actors
