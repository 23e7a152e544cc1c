#pragma once
// The one shape an environment has from a service's spec to execve: name -> value,
// later assignments win. Only Process::spawn turns it into "K=V" strings, so no layer
// in between converts (and re-parses) it.
#include <map>
#include <string>
#include <vector>

namespace runtime {

using Environment = std::map<std::string, std::string>;

// "K=V" entries as execve takes them; an entry without '=' or with an empty name is
// dropped, a repeated name keeps its last value (getenv's answer differs by libc).
Environment environment_of(const char* const* envp);

// The daemon's own environment, as it is now.
Environment process_environment();

// For execve: "K=V", in name order.
std::vector<std::string> environment_entries(const Environment& env);

}  // namespace runtime
