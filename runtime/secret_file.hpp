#pragma once
// The one rule for files that hold secrets (the API keys file, secrets by reference): a regular
// file (no symlink), owned by root or the daemon's user, neither readable nor writable by
// others nor writable by its group.
#include <string>

namespace runtime {

// false and the reason in *error (naming the path and the chmod that fixes it).
bool check_secret_file(const std::string& path, std::string* error);

}  // namespace runtime
