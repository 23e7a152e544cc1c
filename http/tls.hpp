#pragma once
// HTTPS over the reactor: OpenSSL does the TLS state machine against memory
// BIOs, and the connection moves the ciphertext through the ring. OpenSSL never
// touches the socket, so nothing here blocks the loop.
//
//   socket --recv (ring)--> BIO_write(rbio) --> SSL_read  --> plaintext
//   plaintext --> SSL_write --> BIO_read(wbio) --send (ring)--> socket
#include <chrono>
#include <memory>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>

#include "runtime/io_op.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

// The library's own types, by their struct tags: a test that includes this header next
// to the real OpenSSL's (tests/http/tls_test.cpp) must see no conflicting typedef.
#ifdef DOCKLESS_TLS_WOLFSSL
struct WOLFSSL_CTX;
struct WOLFSSL;
struct WOLFSSL_BIO;
namespace http::tls_native {
using Ctx = ::WOLFSSL_CTX;
using Ssl = ::WOLFSSL;
using Bio = ::WOLFSSL_BIO;
}  // namespace http::tls_native
#else
struct ssl_ctx_st;
struct ssl_st;
struct bio_st;
namespace http::tls_native {
using Ctx = ::ssl_ctx_st;
using Ssl = ::ssl_st;
using Bio = ::bio_st;
}  // namespace http::tls_native
#endif

namespace http {

// A certificate chain and its private key, loaded and checked against each
// other. Immutable once loaded. Shared: the server holds the current one for new
// connections and each TLS connection holds the one it was accepted with, so a
// reload replaces the server's copy without touching open connections.
class TlsContext {
 public:
  struct Loaded {
    std::shared_ptr<const TlsContext> context;  // null on failure
    std::string error;                          // names the file and OpenSSL's reason
  };
  // Reads both PEM files (a blocking read of two small files: start-up and reload).
  static Loaded load(const std::string& cert_path, const std::string& key_path);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  tls_native::Ctx* native() const noexcept { return ctx_; }
  // "AB:CD:..." SHA-256 of the leaf certificate, and its subject, for logs.
  const std::string& fingerprint() const noexcept { return fingerprint_; }
  const std::string& subject() const noexcept { return subject_; }

 private:
  explicit TlsContext(tls_native::Ctx* ctx) : ctx_(ctx) {}
  tls_native::Ctx* ctx_;
  std::string fingerprint_;
  std::string subject_;
};

namespace detail {

// One server-side TLS connection over memory BIOs. The handshake happens inside
// the first recv(), so whatever deadline that read has (the header timeout)
// bounds the handshake too. Not for concurrent use: the connection actor is
// sequential.
class TlsSession {
 public:
  TlsSession(int fd, std::shared_ptr<const TlsContext> ctx);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Decrypted bytes into `buf`: > 0 bytes, 0 when the peer closed (close_notify
  // or EOF); EPROTO for a TLS failure (a plain HTTP request, a bad handshake),
  // ETIME past `timeout`, ECANCELED when stopped.
  runtime::Task<runtime::Result<int>> recv(std::span<std::byte> buf, runtime::Duration timeout,
                                           std::stop_token stop);
  // Encrypts all of `data` and sends it, each send bounded by `write_timeout`.
  // With `more`, the records stay buffered and leave with the next send (the
  // TLS counterpart of MSG_MORE).
  runtime::Task<runtime::Result<void>> send(std::string_view data, bool more, runtime::Duration write_timeout,
                                            std::stop_token stop);
  // Sends close_notify (best effort, bounded by `timeout`).
  runtime::Task<void> close_notify(runtime::Duration timeout, std::stop_token stop);

 private:
  runtime::Task<runtime::Result<void>> flush(runtime::Duration timeout, std::stop_token stop);

  int fd_;
  std::shared_ptr<const TlsContext> ctx_;  // the SSL references it; kept alive across reloads
  tls_native::Ssl* ssl_ = nullptr;
  tls_native::Bio* rbio_ = nullptr;  // owned by ssl_
  tls_native::Bio* wbio_ = nullptr;  // owned by ssl_
  std::string cipher_in_;   // one recv of ciphertext
  std::string cipher_out_;  // ciphertext on its way to the socket
  bool failed_ = false;
  bool first_bytes_ = true;  // nothing received yet: a plaintext request is told apart
};

}  // namespace detail
}  // namespace http
