#pragma once
// config::Inputs for the tests: the environment from a map, files from the disk (the tests
// write their env files into temp directories, as a user would next to config.toml).
#include <map>
#include <string>

#include "config/config.hpp"
#include "runtime/fs.hpp"

inline config::Inputs test_inputs(std::map<std::string, std::string> env = {}) {
  config::Inputs in;
  in.env = config::map_environment(std::move(env));
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
