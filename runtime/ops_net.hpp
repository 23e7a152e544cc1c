#pragma once
// Socket operations. Results: accept → the new fd (close-on-exec, non-blocking),
// connect → 0, send/recv → byte counts (recv 0 = peer closed). A reset peer is
// ECONNRESET/EPIPE as a value; send never raises SIGPIPE.
#include <sys/socket.h>

#include <cstring>
#include <span>

#include "runtime/io_op.hpp"

namespace runtime {

class AcceptOp final : public IoOp {
 public:
  explicit AcceptOp(int listen_fd) : fd_(listen_fd) {}
  // The peer's address, valid after a successful co_await.
  const sockaddr_storage& peer() const noexcept { return addr_; }
 private:
  void prep(io_uring_sqe* s) override {
    len_ = sizeof addr_;
    io_uring_prep_accept(s, fd_, reinterpret_cast<sockaddr*>(&addr_), &len_,
                         SOCK_CLOEXEC | SOCK_NONBLOCK);
  }
  int fd_;
  sockaddr_storage addr_{};
  socklen_t len_ = 0;  // the kernel writes the real length here at completion
};

class ConnectOp final : public IoOp {
 public:
  ConnectOp(int fd, const sockaddr* addr, socklen_t len) : fd_(fd), len_(len) {
    std::memcpy(&addr_, addr, len);
  }
 private:
  void prep(io_uring_sqe* s) override {
    io_uring_prep_connect(s, fd_, reinterpret_cast<const sockaddr*>(&addr_), len_);
  }
  int fd_;
  sockaddr_storage addr_{};
  socklen_t len_;
};

class SendOp final : public IoOp {
 public:
  SendOp(int fd, std::span<const std::byte> buf, int flags)
      : fd_(fd), buf_(buf), flags_(flags | MSG_NOSIGNAL) {}
 private:
  void prep(io_uring_sqe* s) override { io_uring_prep_send(s, fd_, buf_.data(), buf_.size(), flags_); }
  int fd_;
  std::span<const std::byte> buf_;
  int flags_;
};

class RecvOp final : public IoOp {
 public:
  RecvOp(int fd, std::span<std::byte> buf, int flags) : fd_(fd), buf_(buf), flags_(flags) {}
 private:
  void prep(io_uring_sqe* s) override { io_uring_prep_recv(s, fd_, buf_.data(), buf_.size(), flags_); }
  int fd_;
  std::span<std::byte> buf_;
  int flags_;
};

[[nodiscard]] inline AcceptOp accept(int listen_fd) { return AcceptOp(listen_fd); }
[[nodiscard]] inline ConnectOp connect(int fd, const sockaddr* addr, socklen_t len) { return ConnectOp(fd, addr, len); }
[[nodiscard]] inline SendOp send(int fd, std::span<const std::byte> buf, int flags = 0) { return SendOp(fd, buf, flags); }
[[nodiscard]] inline RecvOp recv(int fd, std::span<std::byte> buf, int flags = 0) { return RecvOp(fd, buf, flags); }

}  // namespace runtime
