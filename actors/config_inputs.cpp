#include "actors/config_inputs.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "runtime/fs.hpp"
#include "runtime/secret_file.hpp"

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
  // Secrets by reference (config/secrets.hpp): a missing file says exactly strerror(ENOENT),
  // so the chain moves on; one others could read is refused like the API keys file.
  in.read_secret_file = [read = in.read_file](const std::string& path,
                                              std::string* error) -> std::optional<std::string> {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
      *error = std::strerror(errno);
      return std::nullopt;
    }
    if (!runtime::check_secret_file(path, error)) return std::nullopt;
    return read(path, error);
  };
  return in;
}

}  // namespace actors
