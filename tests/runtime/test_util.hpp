#pragma once
// Small fixtures shared by the runtime tests: pipes, a temp dir under /tmp that
// removes itself, an fd count from /proc, loopback sockets.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "runtime/fd.hpp"

namespace testutil {

struct Pipe {
  runtime::Fd r, w;
  explicit Pipe(int flags = O_CLOEXEC) {
    int fds[2];
    if (::pipe2(fds, flags) != 0) std::abort();
    r.reset(fds[0]);
    w.reset(fds[1]);
  }
};

inline std::span<const std::byte> bytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// Open fds of this process, excluding the one opendir itself uses.
inline int count_fds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return -1;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n - 1;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/dockless-rt-XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// A listening TCP socket on 127.0.0.1 with a kernel-chosen port.
inline runtime::Fd listen_loopback(sockaddr_in& addr, int backlog = 128) {
  runtime::Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) std::abort();
  if (::listen(fd.get(), backlog) != 0) std::abort();
  socklen_t len = sizeof addr;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  return fd;
}

inline runtime::Fd tcp_socket() { return runtime::Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)); }

}  // namespace testutil

// GoogleTest's ASSERT_* end with `return`, which a coroutine may not use. These
// record the failure and `co_return` (Task<void> bodies only); `<< msg` works.
#define CO_FAIL_IF_NOT_(ar)                                      \
  if (const ::testing::AssertionResult co_ar_ = (ar)) {          \
  } else                                                         \
    for (bool co_once_ = true;; co_once_ = false)                \
      if (!co_once_) co_return;                                  \
      else ADD_FAILURE() << co_ar_.failure_message() << " "
#define CO_ASSERT_TRUE(c) \
  CO_FAIL_IF_NOT_(static_cast<bool>(c) ? ::testing::AssertionSuccess() : ::testing::AssertionFailure() << "false: " #c)
#define CO_ASSERT_FALSE(c) CO_ASSERT_TRUE(!(c))
#define CO_ASSERT_EQ(a, b) CO_FAIL_IF_NOT_(::testing::internal::EqHelper::Compare(#a, #b, a, b))
#define CO_ASSERT_GT(a, b) CO_FAIL_IF_NOT_(::testing::internal::CmpHelperGT(#a, #b, a, b))
