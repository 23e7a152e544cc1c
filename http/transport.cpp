#include "http/transport.hpp"

#include <sys/socket.h>

#include "runtime/ops_net.hpp"

namespace http::detail {

using runtime::Duration;
using runtime::Result;
using runtime::Task;

Transport::Transport(int fd, std::shared_ptr<const TlsContext> tls)
    : fd_(fd), tls_(tls ? std::make_unique<TlsSession>(fd, std::move(tls)) : nullptr) {}

Task<Result<int>> Transport::recv(std::span<std::byte> buf, Duration timeout, std::stop_token stop) {
  if (tls_) co_return co_await tls_->recv(buf, timeout, std::move(stop));
  co_return co_await runtime::recv(fd_, buf).deadline(timeout).stop_on(std::move(stop));
}

Task<Result<int>> Transport::send(std::string_view data, int flags, Duration timeout, std::stop_token stop) {
  if (tls_) {
    Result<void> r = co_await tls_->send(data, (flags & MSG_MORE) != 0, timeout, std::move(stop));
    if (!r) co_return Result<int>::failure(r.error());
    co_return static_cast<int>(data.size());
  }
  std::span<const std::byte> buf(reinterpret_cast<const std::byte*>(data.data()), data.size());
  co_return co_await runtime::send(fd_, buf, flags).deadline(timeout).stop_on(std::move(stop));
}

Task<void> Transport::shutdown_write(Duration timeout, std::stop_token stop) {
  if (tls_) co_await tls_->close_notify(timeout, std::move(stop));
  ::shutdown(fd_, SHUT_WR);
}

Task<void> Transport::close_notify(Duration timeout, std::stop_token stop) {
  if (tls_) co_await tls_->close_notify(timeout, std::move(stop));
}

}  // namespace http::detail
