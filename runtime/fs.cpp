#include "runtime/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <span>

#include "runtime/fd.hpp"
#include "runtime/ops_fs.hpp"
#include "runtime/ops_rw.hpp"

namespace runtime {

namespace {
std::string parent_dir(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}
}  // namespace

Result<std::string> read_file(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Result<std::string>::failure(errno);
  std::string text;
  char buf[16 * 1024];
  while (true) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Result<std::string>::failure(errno);
    if (n == 0) return text;
    text.append(buf, static_cast<std::size_t>(n));
  }
}

Result<std::string> read_from_start(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(out.size()));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Result<std::string>::failure(errno);
    }
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

Task<Result<void>> atomic_write(std::string path, std::string content, unsigned mode) {
  // The pid in the name keeps two daemons (an upgrade in progress) from sharing a temp file.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  constexpr int kFresh = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;
  Result<int> opened = co_await openat(AT_FDCWD, tmp, kFresh, mode);
  if (!opened && opened.error() == EEXIST) {
    // Left by a crash of an earlier daemon with this pid, or planted: either way not ours
    // to write through. unlink removes a symlink itself, never its target.
    ::unlink(tmp.c_str());
    opened = co_await openat(AT_FDCWD, tmp, kFresh, mode);
  }
  if (!opened) co_return Result<void>::failure(opened.error());
  Fd file(opened.value());
  // The umask may only have taken bits away; this makes the mode exact.
  if (::fchmod(file.get(), mode) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    co_return Result<void>::failure(err);
  }

  auto bytes = std::as_bytes(std::span(content.data(), content.size()));
  while (!bytes.empty()) {
    Result<int> w = co_await write(file.get(), bytes);
    if (!w || w.value() == 0) {
      ::unlink(tmp.c_str());
      co_return Result<void>::failure(w ? EIO : w.error());
    }
    bytes = bytes.subspan(static_cast<std::size_t>(w.value()));
  }
  // Data must be on disk before the rename makes it visible under the real name.
  if (Result<int> s = co_await fsync(file.get()); !s) {
    ::unlink(tmp.c_str());
    co_return Result<void>::failure(s.error());
  }
  file.reset();
  if (Result<int> r = co_await rename(tmp, path); !r) {
    ::unlink(tmp.c_str());
    co_return Result<void>::failure(r.error());
  }
  // The rename itself lives in the directory; without this a power cut can
  // bring back the old name.
  Result<int> dir = co_await openat(AT_FDCWD, parent_dir(path), O_RDONLY | O_DIRECTORY);
  if (!dir) co_return Result<void>::failure(dir.error());
  Fd dir_fd(dir.value());
  if (Result<int> s = co_await fsync(dir_fd.get()); !s) co_return Result<void>::failure(s.error());
  co_return Result<void>();
}

Result<Fd> open_data_file(const std::string& path, int flags, unsigned mode) {
  // O_NONBLOCK only for the open itself: a FIFO would otherwise block it.
  Fd fd(::open(path.c_str(), flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, mode));
  if (!fd) return Result<Fd>::failure(errno);
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return Result<Fd>::failure(errno);
  if (!S_ISREG(st.st_mode)) return Result<Fd>::failure(EINVAL);
  if ((flags & O_NONBLOCK) == 0 && ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK) != 0)
    return Result<Fd>::failure(errno);
  if ((st.st_mode & 07777 & ~mode) != 0 && ::fchmod(fd.get(), st.st_mode & mode & 07777) != 0)
    return Result<Fd>::failure(errno);
  return fd;
}

Result<void> make_dirs(std::string_view path, unsigned mode, bool may_be_symlink) {
  std::string p(path);
  for (std::size_t i = 1; i <= p.size(); ++i) {
    if (i != p.size() && p[i] != '/') continue;
    std::string part = p.substr(0, i);
    if (::mkdir(part.c_str(), mode) != 0 && errno != EEXIST) return Result<void>::failure(errno);
  }
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  struct stat st{};
  if (::lstat(p.c_str(), &st) != 0) return Result<void>::failure(errno);
  if (S_ISLNK(st.st_mode)) {
    if (!may_be_symlink) return Result<void>::failure(ELOOP);
    if (::stat(p.c_str(), &st) != 0) return Result<void>::failure(errno);
  }
  if (!S_ISDIR(st.st_mode)) return Result<void>::failure(ENOTDIR);
  return {};
}

}  // namespace runtime
