#pragma once
// Kernel outcomes are values: an operation yields either its value or an errno.
// Exceptions are kept for programming errors and start-up (see docs/architecture.md).
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

namespace runtime {

// The one place a raw io_uring/syscall result (>= 0 or -errno) is interpreted.
inline constexpr bool is_error_res(int res) noexcept { return res < 0; }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  static Result failure(int err) { return Result(Error{err}); }

  bool ok() const noexcept { return value_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  // errno (positive) when !ok(), 0 otherwise.
  int error() const noexcept { return error_; }
  std::string message() const { return ok() ? "ok" : std::strerror(error_); }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  T value_or(T fallback) const { return ok() ? *value_ : fallback; }

 private:
  struct Error { int err; };
  explicit Result(Error e) : error_(e.err) {}
  std::optional<T> value_;
  int error_ = 0;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  static Result failure(int err) { Result r; r.error_ = err; return r; }
  bool ok() const noexcept { return error_ == 0; }
  explicit operator bool() const noexcept { return ok(); }
  int error() const noexcept { return error_; }
  std::string message() const { return ok() ? "ok" : std::strerror(error_); }

 private:
  int error_ = 0;
};

// Turns a raw `res` (value or -errno) into a Result<int>. Every io_uring CQE and
// every direct syscall wrapper goes through here, so errno handling lives in one spot.
inline Result<int> from_res(int res) {
  if (is_error_res(res)) return Result<int>::failure(-res);
  return Result<int>(res);
}

// For direct syscalls that return -1 and set errno.
inline Result<int> from_syscall(long rc) {
  if (rc < 0) return Result<int>::failure(errno);
  return Result<int>(static_cast<int>(rc));
}

}  // namespace runtime
