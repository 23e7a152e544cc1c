#pragma once
// File-system operations through the ring, so a slow disk (an SD card) never
// blocks the loop: openat, close, fsync, rename, unlink.
#include <fcntl.h>

#include <string>

#include "runtime/io_op.hpp"

namespace runtime {

// The path is copied: the kernel reads it during the (possibly async) open.
class OpenatOp final : public IoOp {
 public:
  OpenatOp(int dirfd, std::string path, int flags, mode_t mode)
      : dirfd_(dirfd), path_(std::move(path)), flags_(flags | O_CLOEXEC), mode_(mode) {}
 private:
  void prep(io_uring_sqe* s) override { io_uring_prep_openat(s, dirfd_, path_.c_str(), flags_, mode_); }
  int dirfd_;
  std::string path_;
  int flags_;
  mode_t mode_;
};

class CloseOp final : public IoOp {
 public:
  explicit CloseOp(int fd) : fd_(fd) {}
 private:
  void prep(io_uring_sqe* s) override { io_uring_prep_close(s, fd_); }
  int fd_;
};

class FsyncOp final : public IoOp {
 public:
  FsyncOp(int fd, bool data_only) : fd_(fd), flags_(data_only ? IORING_FSYNC_DATASYNC : 0) {}
 private:
  void prep(io_uring_sqe* s) override { io_uring_prep_fsync(s, fd_, flags_); }
  int fd_;
  unsigned flags_;
};

class RenameOp final : public IoOp {
 public:
  RenameOp(std::string from, std::string to) : from_(std::move(from)), to_(std::move(to)) {}
 private:
  void prep(io_uring_sqe* s) override {
    io_uring_prep_renameat(s, AT_FDCWD, from_.c_str(), AT_FDCWD, to_.c_str(), 0);
  }
  std::string from_, to_;
};

// Unlinking the last name of a large file frees its page cache inside the call
// (milliseconds for 16 MiB); the kernel always runs IORING_OP_UNLINKAT on an io-wq
// worker, so that time is not the loop's.
class UnlinkOp final : public IoOp {
 public:
  explicit UnlinkOp(std::string path) : path_(std::move(path)) {}
 private:
  void prep(io_uring_sqe* s) override { io_uring_prep_unlinkat(s, AT_FDCWD, path_.c_str(), 0); }
  std::string path_;
};

[[nodiscard]] inline OpenatOp openat(int dirfd, std::string path, int flags, mode_t mode = 0644) {
  return OpenatOp(dirfd, std::move(path), flags, mode);
}
[[nodiscard]] inline CloseOp close(int fd) { return CloseOp(fd); }
[[nodiscard]] inline FsyncOp fsync(int fd, bool data_only = false) { return FsyncOp(fd, data_only); }
[[nodiscard]] inline RenameOp rename(std::string from, std::string to) { return RenameOp(std::move(from), std::move(to)); }
[[nodiscard]] inline UnlinkOp unlink(std::string path) { return UnlinkOp(std::move(path)); }

}  // namespace runtime
