#include "config/substitute.hpp"

namespace config {
namespace {

bool name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

}  // namespace

Substituted substitute(std::string_view input, const Resolver& resolve) {
  Substituted out;
  std::size_t i = 0;
  while (i < input.size()) {
    char c = input[i];
    if (c != '$') {
      out.text.push_back(c);
      ++i;
      continue;
    }
    if (input.substr(i, 3) == "$${") {
      out.text += "${";
      i += 3;
      continue;
    }
    if (input.substr(i, 2) != "${") {
      out.text.push_back(c);
      ++i;
      continue;
    }
    std::size_t close = input.find('}', i + 2);
    if (close == std::string_view::npos) {
      out.errors.push_back("unterminated \"${\" (write \"$${\" for a literal \"${\")");
      out.text.append(input.substr(i));
      break;
    }
    std::string_view name = input.substr(i + 2, close - i - 2);
    bool valid = !name.empty();
    for (char n : name) valid = valid && name_char(n);
    if (!valid) {
      out.errors.push_back("invalid variable reference \"${" + std::string(name) + "}\"");
      out.text.append(input.substr(i, close + 1 - i));
      i = close + 1;
      continue;
    }
    Resolution r = resolve(name);
    switch (r.kind) {
      case Resolution::Kind::value: out.text += r.text; break;
      case Resolution::Kind::keep: out.text.append(input.substr(i, close + 1 - i)); break;
      case Resolution::Kind::error:
        out.errors.push_back(std::move(r.text));
        out.text.append(input.substr(i, close + 1 - i));
        break;
    }
    i = close + 1;
  }
  return out;
}

}  // namespace config
