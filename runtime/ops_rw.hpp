#pragma once
// Byte-moving operations: read/write (and vectored), splice. Each result is the
// byte count or an errno; 0 from a read is end of file.
#include <sys/uio.h>

#include <cstddef>
#include <span>
#include <vector>

#include "runtime/io_op.hpp"

namespace runtime {

// offset -1 means "the file position" (pipes, sockets, O_APPEND files).
class ReadOp final : public IoOp {
 public:
  ReadOp(int fd, std::span<std::byte> buf, std::int64_t offset = -1)
      : fd_(fd), buf_(buf), offset_(offset) {}
 private:
  void prep(io_uring_sqe* s) override {
    io_uring_prep_read(s, fd_, buf_.data(), static_cast<unsigned>(buf_.size()),
                       static_cast<__u64>(offset_));
  }
  int fd_;
  std::span<std::byte> buf_;
  std::int64_t offset_;
};

class WriteOp final : public IoOp {
 public:
  WriteOp(int fd, std::span<const std::byte> buf, std::int64_t offset = -1)
      : fd_(fd), buf_(buf), offset_(offset) {}
 private:
  void prep(io_uring_sqe* s) override {
    io_uring_prep_write(s, fd_, buf_.data(), static_cast<unsigned>(buf_.size()),
                        static_cast<__u64>(offset_));
  }
  int fd_;
  std::span<const std::byte> buf_;
  std::int64_t offset_;
};

// The iovec array is copied into the op: the kernel may read it when the request
// is retried from a worker, after the caller's array is gone.
class VectoredOp final : public IoOp {
 public:
  enum class Dir { read, write };
  VectoredOp(Dir dir, int fd, std::span<const iovec> iov, std::int64_t offset = -1)
      : dir_(dir), fd_(fd), iov_(iov.begin(), iov.end()), offset_(offset) {}
 private:
  void prep(io_uring_sqe* s) override {
    const auto n = static_cast<unsigned>(iov_.size());
    if (dir_ == Dir::read) io_uring_prep_readv(s, fd_, iov_.data(), n, static_cast<__u64>(offset_));
    else io_uring_prep_writev(s, fd_, iov_.data(), n, static_cast<__u64>(offset_));
  }
  Dir dir_;
  int fd_;
  std::vector<iovec> iov_;
  std::int64_t offset_;
};

// Moves up to `len` bytes between two fds without a copy through user space; one
// side must be a pipe. Offsets of -1 use the file position.
class SpliceOp final : public IoOp {
 public:
  SpliceOp(int fd_in, std::int64_t off_in, int fd_out, std::int64_t off_out, unsigned len,
           unsigned flags = 0)
      : in_(fd_in), out_(fd_out), off_in_(off_in), off_out_(off_out), len_(len), flags_(flags) {}
 private:
  void prep(io_uring_sqe* s) override {
    io_uring_prep_splice(s, in_, off_in_, out_, off_out_, len_, flags_);
  }
  int in_, out_;
  std::int64_t off_in_, off_out_;
  unsigned len_, flags_;
};

[[nodiscard]] inline ReadOp read(int fd, std::span<std::byte> buf, std::int64_t offset = -1) {
  return ReadOp(fd, buf, offset);
}
[[nodiscard]] inline WriteOp write(int fd, std::span<const std::byte> buf, std::int64_t offset = -1) {
  return WriteOp(fd, buf, offset);
}
[[nodiscard]] inline VectoredOp readv(int fd, std::span<const iovec> iov, std::int64_t offset = -1) {
  return VectoredOp(VectoredOp::Dir::read, fd, iov, offset);
}
[[nodiscard]] inline VectoredOp writev(int fd, std::span<const iovec> iov, std::int64_t offset = -1) {
  return VectoredOp(VectoredOp::Dir::write, fd, iov, offset);
}
[[nodiscard]] inline SpliceOp splice(int fd_in, std::int64_t off_in, int fd_out, std::int64_t off_out,
                       unsigned len, unsigned flags = 0) {
  return SpliceOp(fd_in, off_in, fd_out, off_out, len, flags);
}

}  // namespace runtime
