// ${VAR} substitution in config strings.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace config {

struct Resolution {
  enum class Kind { value, keep, error };
  Kind kind = Kind::error;
  std::string text;  // the value, or the error message

  static Resolution of(std::string v) { return {Kind::value, std::move(v)}; }
  static Resolution kept() { return {Kind::keep, {}}; }
  static Resolution failed(std::string why) { return {Kind::error, std::move(why)}; }
};

// Given the name between ${ and }, says what replaces it.
using Resolver = std::function<Resolution(std::string_view name)>;

struct Substituted {
  std::string text;
  std::vector<std::string> errors;
};

// Replaces each ${NAME} through resolve; "$${" is a literal "${"; a '$' not followed by '{' is
// kept. Names are made of letters, digits, '_' and '.'.
Substituted substitute(std::string_view input, const Resolver& resolve);

}  // namespace config
