#pragma once
// Small file-system helpers used by the daemon's state files.
#include <string>
#include <string_view>

#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace runtime {

// Replaces `path` with `content` so that after a crash or power cut the file is
// either the old or the new version, never a mix: write a temp file beside it,
// fsync it, rename it over `path`, fsync the directory. Runs on the ring.
Task<Result<void>> atomic_write(std::string path, std::string content, unsigned mode = 0644);

// Reads a whole regular file; synchronous, for start-up and reload (config, env files,
// keys). Errors are errno values.
Result<std::string> read_file(const std::string& path);

// Creates `path` and its parents (mode 0755) if missing; synchronous (start-up only).
Result<void> make_dirs(std::string_view path, unsigned mode = 0755);

}  // namespace runtime
