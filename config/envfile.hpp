// Env files: KEY=VALUE lines, '#' comments, an optional "export " prefix, optional quotes.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace config {

struct EnvFileLineError {
  int line = 0;
  int col = 0;
  std::string message;
};

struct EnvFileContents {
  std::vector<std::pair<std::string, std::string>> vars;  // in file order; later wins
  std::vector<EnvFileLineError> errors;
};

// Values are taken literally (no ${VAR} expansion). Unquoted values are trimmed and end at the
// line's end ('#' inside them is kept); '...' is literal; "..." understands \n \t \" \\ \$.
EnvFileContents parse_env_file_text(std::string_view text);

}  // namespace config
