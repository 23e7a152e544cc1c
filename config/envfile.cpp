#include "config/envfile.hpp"

namespace config {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

bool valid_env_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

EnvFileContents parse_env_file_text(std::string_view text) {
  EnvFileContents out;
  int line_no = 0;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#') continue;
    if (line.substr(0, 7) == "export " || line.substr(0, 7) == "export\t") line = trim(line.substr(7));
    int col = static_cast<int>(line.data() - raw.data()) + 1;
    std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      out.errors.push_back({line_no, col, "expected KEY=VALUE"});
      continue;
    }
    std::string_view name = trim(line.substr(0, eq));
    if (!valid_env_name(name)) {
      out.errors.push_back({line_no, col, "invalid variable name \"" + std::string(name) + "\""});
      continue;
    }
    std::string_view value = trim(line.substr(eq + 1));
    std::string parsed;
    if (!value.empty() && (value.front() == '"' || value.front() == '\'')) {
      char quote = value.front();
      bool closed = false;
      std::size_t i = 1;
      for (; i < value.size(); ++i) {
        char c = value[i];
        if (c == quote) {
          closed = true;
          ++i;
          break;
        }
        if (quote == '"' && c == '\\' && i + 1 < value.size()) {
          char e = value[++i];
          switch (e) {
            case 'n': parsed.push_back('\n'); break;
            case 't': parsed.push_back('\t'); break;
            case '"': case '\\': case '$': parsed.push_back(e); break;
            default: parsed.push_back('\\'); parsed.push_back(e); break;
          }
          continue;
        }
        parsed.push_back(c);
      }
      std::string_view rest = trim(value.substr(i));
      if (!closed) {
        out.errors.push_back({line_no, col, "unterminated quote in value of " + std::string(name)});
        continue;
      }
      if (!rest.empty() && rest.front() != '#') {
        out.errors.push_back({line_no, col, "unexpected text after the quoted value of " + std::string(name)});
        continue;
      }
    } else {
      parsed = std::string(value);
    }
    out.vars.emplace_back(std::string(name), std::move(parsed));
  }
  return out;
}

}  // namespace config
