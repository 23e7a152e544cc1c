#include "runtime/environment.hpp"

#include <cstring>

// POSIX: the program declares environ itself (unistd.h does only under _GNU_SOURCE).
extern char** environ;  // NOLINT(readability-redundant-declaration)

namespace runtime {

Environment environment_of(const char* const* envp) {
  Environment env;
  for (const char* const* e = envp; e && *e; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (!eq || eq == *e) continue;
    env.insert_or_assign(std::string(*e, eq), std::string(eq + 1));
  }
  return env;
}

Environment process_environment() { return environment_of(environ); }

std::vector<std::string> environment_entries(const Environment& env) {
  std::vector<std::string> entries;
  entries.reserve(env.size());
  for (const auto& [name, value] : env) {
    std::string kv;
    kv.reserve(name.size() + 1 + value.size());
    kv += name;
    kv += '=';
    kv += value;
    entries.push_back(std::move(kv));
  }
  return entries;
}

}  // namespace runtime
