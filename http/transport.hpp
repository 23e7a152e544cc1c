#pragma once
// The byte stream under an HTTP connection: the socket itself (plain) or a TLS
// session over it. The connection's parsing, streaming, keep-alive and limits
// sit above this seam and are the same for both.
#include <memory>
#include <span>
#include <stop_token>
#include <string_view>

#include "http/tls.hpp"
#include "runtime/io_op.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace http::detail {

class Transport {
 public:
  // `tls` null: plain. The fd stays owned by the caller and must outlive this.
  Transport(int fd, std::shared_ptr<const TlsContext> tls);

  // Some bytes into `buf`: > 0, or 0 when the peer closed. Errors as values
  // (ETIME past `timeout`, ECANCELED on stop, EPROTO for a TLS failure).
  runtime::Task<runtime::Result<int>> recv(std::span<std::byte> buf, runtime::Duration timeout,
                                           std::stop_token stop);
  // Sends a prefix of `data` (plain: one send; TLS: all of it) and returns how
  // many bytes it took. MSG_MORE in `flags` holds the bytes back for the next send.
  runtime::Task<runtime::Result<int>> send(std::string_view data, int flags, runtime::Duration timeout,
                                           std::stop_token stop);
  // Ends our direction: TLS close_notify (bounded by `timeout`), then FIN.
  runtime::Task<void> shutdown_write(runtime::Duration timeout, std::stop_token stop);
  // TLS close_notify before an orderly close; nothing for plain.
  runtime::Task<void> close_notify(runtime::Duration timeout, std::stop_token stop);

 private:
  int fd_;
  std::unique_ptr<TlsSession> tls_;
};

}  // namespace http::detail
