#pragma once
// Small file-system helpers used by the daemon's state files.
#include <string>
#include <string_view>

#include "runtime/fd.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace runtime {

// Replaces `path` with `content` so that after a crash or power cut the file is
// either the old or the new version, never a mix: write a temp file beside it,
// fsync it, rename it over `path`, fsync the directory. Runs on the ring. The file
// ends with exactly `mode` whatever the umask; the temp file is created fresh
// (O_EXCL, O_NOFOLLOW), so a link planted under its name redirects nothing.
Task<Result<void>> atomic_write(std::string path, std::string content, unsigned mode = 0600);

// Opens a file the daemon keeps under its data directory: never through a symlink
// (ELOOP), only a regular file (EINVAL: a planted FIFO or device is not opened for
// real, so it cannot block the daemon), and with no permission beyond `mode`, whatever
// the umask or an older version left (`flags` with O_CREAT creates with it).
Result<Fd> open_data_file(const std::string& path, int flags, unsigned mode = 0600);

// Reads a whole regular file; synchronous, for start-up and reload (config, env files,
// keys). Errors are errno values.
Result<std::string> read_file(const std::string& path);
// Reads all of an open file from offset 0 with pread, leaving the fd's offset alone, so
// the same fd can be read again: cgroupfs files, which serve each read from a fresh
// snapshot and are read again after every POLLPRI wake.
Result<std::string> read_from_start(int fd);

// Creates `path` and its parents (mode 0755) if missing; synchronous (start-up only).
// `path` itself must be a directory and, unless `may_be_symlink` (a data directory an
// operator points elsewhere), not a symlink (ELOOP): a link planted where the daemon
// keeps logs or state would send its writes anywhere.
Result<void> make_dirs(std::string_view path, unsigned mode = 0755, bool may_be_symlink = false);

}  // namespace runtime
