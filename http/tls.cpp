#include "http/tls.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "http/openssl.hpp"
#include "runtime/ops_net.hpp"

namespace http {

using runtime::Duration;
using runtime::Result;
using runtime::Task;

namespace {

// Loaded by TlsContext::load before any other use: a session exists only with a context.
const openssl::Api& ossl() { return openssl::require(); }

// The deepest reason OpenSSL queued ("no start line", "key values mismatch"),
// then an empty queue: a stale entry would be blamed on the next call.
std::string openssl_reason() {
  const unsigned long e = ossl().ERR_peek_last_error();
  const char* reason = e ? ossl().ERR_reason_error_string(e) : nullptr;
  ossl().ERR_clear_error();
  return reason ? reason : "unknown OpenSSL error";
}

// A missing or unreadable file is an errno, clearer than OpenSSL's "system lib".
std::string unreadable(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return std::strerror(errno);
  std::fclose(f);
  return {};
}

constexpr const char* kTls12Ciphers =
#ifdef DOCKLESS_TLS_WOLFSSL
    // wolfSSL's list replaces the TLS 1.3 suites too (OpenSSL keeps them apart), and they
    // must come first: with a 1.2 suite preferred it picks that for a 1.3 handshake and fails.
    // (In OpenSSL's default order.)
    "TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:"
#endif
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// A TLS connection starts with a handshake record (0x16; an SSLv2-style hello has
// the top bit set); a letter is a plaintext request line: answered in plaintext,
// since the client cannot read anything else.
bool looks_like_plain_http(unsigned char first) { return first >= 'A' && first <= 'Z'; }

const std::string& plain_refusal() {
  static const std::string answer = [] {
    const std::string body = R"({"error":"this port speaks HTTPS: plain HTTP was sent, use https://","detail":null})" "\n";
    return "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  }();
  return answer;
}

// Only HTTP/1.1 is spoken: a client offering h2 alone gets no match and falls back.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  static constexpr unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (ossl().SSL_select_next_proto(&selected, outlen, kHttp11, sizeof kHttp11, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

std::string sha256_fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!cert || ossl().X509_digest(cert, ossl().EVP_sha256(), md, &len) != 1) return {};
  std::string out;
  char hex[4];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(hex, sizeof hex, i ? ":%02X" : "%02X", md[i]);
    out += hex;
  }
  return out;
}

std::string subject_of(X509* cert) {
  if (!cert) return {};
  char buf[256] = {};
  ossl().X509_NAME_oneline(ossl().X509_get_subject_name(cert), buf, sizeof buf);
  return buf;
}

#ifdef DOCKLESS_TLS_WOLFSSL
// wolfSSL 5.5's SSL_CTX_check_private_key passes an EC key that is not the certificate's
// (Debian 12's build). A handshake with ourselves in memory proves the pair: the server
// signs the handshake with the key, the client checks that with the certificate's key.
bool pair_signs(SSL_CTX* server) {
  const openssl::Api& o = ossl();
  SSL_CTX* client_ctx = o.SSL_CTX_new(o.TLS_client_method());
  if (!client_ctx) return false;
  o.SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, nullptr);  // the signature, not the chain
  SSL* client = o.SSL_new(client_ctx);
  SSL* srv = o.SSL_new(server);
  BIO* bios[4] = {o.BIO_new(o.BIO_s_mem()), o.BIO_new(o.BIO_s_mem()), o.BIO_new(o.BIO_s_mem()),
                  o.BIO_new(o.BIO_s_mem())};
  bool ok = false;
  if (client && srv && bios[0] && bios[1] && bios[2] && bios[3]) {
    o.SSL_set_bio(client, bios[0], bios[1]);  // the SSLs own the BIOs from here
    o.SSL_set_bio(srv, bios[2], bios[3]);
    o.SSL_set_accept_state(srv);
    // Each side's output is the other's input; a handful of flights completes a handshake.
    auto move = [&](BIO* from, BIO* to) {
      char buf[4096];
      for (int n; (n = o.BIO_read(from, buf, sizeof buf)) > 0;) o.BIO_write(to, buf, n);
    };
    for (int round = 0; round < 8 && !ok; ++round) {
      const int r = o.SSL_connect(client);
      if (r == 1) ok = true;
      else if (o.SSL_get_error(client, r) != SSL_ERROR_WANT_READ) break;
      move(bios[1], bios[2]);
      char none[1];
      (void)o.SSL_read(srv, none, 0);
      move(bios[3], bios[0]);
    }
  } else {
    for (BIO* b : bios) o.BIO_free(b);
  }
  o.SSL_free(client);
  o.SSL_free(srv);
  o.SSL_CTX_free(client_ctx);
  o.ERR_clear_error();
  // The check's signature and verification filled the ECC point caches (~1.5 MiB of heap,
  // measured); the handshakes that follow cache only what they use.
  o.wc_ecc_fp_free();
  return ok;
}
#endif

}  // namespace

TlsContext::Loaded TlsContext::load(const std::string& cert_path, const std::string& key_path) {
  Loaded out;
  if (std::string why; !openssl::api(&why)) {
    out.error = "HTTPS needs OpenSSL: " + why;
    return out;
  }
  ossl().ERR_clear_error();
  if (std::string e = unreadable(cert_path); !e.empty()) {
    out.error = "cannot read certificate " + cert_path + ": " + e;
    return out;
  }
  if (std::string e = unreadable(key_path); !e.empty()) {
    out.error = "cannot read key " + key_path + ": " + e;
    return out;
  }
  SSL_CTX* raw = ossl().SSL_CTX_new(ossl().TLS_server_method());
  if (!raw) {
    out.error = "SSL_CTX_new: " + openssl_reason();
    return out;
  }
  std::shared_ptr<TlsContext> ctx(new TlsContext(raw));
  // TLS 1.2 is the oldest version without known protocol-level breaks. In 1.2 only
  // forward-secret key exchange with AEAD ciphers: no static RSA (no forward
  // secrecy), no CBC (LUCKY13 and its kin). TLS 1.3's suites are all AEAD and stay.
  ossl().SSL_CTX_ctrl(raw, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, nullptr);
  if (ossl().SSL_CTX_set_cipher_list(raw, kTls12Ciphers) != 1) {
    out.error = "SSL_CTX_set_cipher_list: " + openssl_reason();
    return out;
  }
  ossl().SSL_CTX_set_options(raw, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  // Idle keep-alive connections then hold no 34 KiB record buffers.
  ossl().SSL_CTX_ctrl(raw, SSL_CTRL_MODE, SSL_MODE_RELEASE_BUFFERS, nullptr);
  ossl().SSL_CTX_set_alpn_select_cb(raw, select_alpn, nullptr);
  if (ossl().SSL_CTX_use_certificate_chain_file(raw, cert_path.c_str()) != 1) {
    out.error = "invalid certificate " + cert_path + ": " + openssl_reason();
    return out;
  }
  if (ossl().SSL_CTX_use_PrivateKey_file(raw, key_path.c_str(), SSL_FILETYPE_PEM) != 1) {
    // OpenSSL checks the pair here already; say it in the user's terms. (wolfSSL checks
    // it only in SSL_CTX_check_private_key below.)
#ifdef DOCKLESS_TLS_WOLFSSL
    const bool mismatch = false;
#else
    const bool mismatch = ERR_GET_REASON(ossl().ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
#endif
    out.error = (mismatch ? "key " + key_path + " does not match certificate " + cert_path
                          : "invalid key " + key_path) + ": " + openssl_reason();
    return out;
  }
  bool pair = ossl().SSL_CTX_check_private_key(raw) == 1;
#ifdef DOCKLESS_TLS_WOLFSSL
  pair = pair && pair_signs(raw);
#endif
  if (!pair) {
    out.error = "key " + key_path + " does not match certificate " + cert_path + ": " + openssl_reason();
    return out;
  }
  X509* leaf = ossl().SSL_CTX_get0_certificate(raw);
  ctx->fingerprint_ = sha256_fingerprint(leaf);
  ctx->subject_ = subject_of(leaf);
  out.context = std::move(ctx);
  return out;
}

TlsContext::~TlsContext() { ossl().SSL_CTX_free(ctx_); }

namespace detail {

namespace {
constexpr std::size_t kCipherChunk = 17 * 1024;  // one full TLS record and its overhead
constexpr std::size_t kPlainChunk = 16 * 1024;   // one record's worth of plaintext per SSL_write
}  // namespace

TlsSession::TlsSession(int fd, std::shared_ptr<const TlsContext> ctx) : fd_(fd), ctx_(std::move(ctx)) {
  ssl_ = ossl().SSL_new(ctx_->native());
  rbio_ = ossl().BIO_new(ossl().BIO_s_mem());
  wbio_ = ossl().BIO_new(ossl().BIO_s_mem());
  if (!ssl_ || !rbio_ || !wbio_) {
    // Out of memory: the session fails its first operation instead of throwing.
    ossl().BIO_free(rbio_);
    ossl().BIO_free(wbio_);
    ossl().SSL_free(ssl_);
    ssl_ = nullptr;
    failed_ = true;
    ossl().ERR_clear_error();
    return;
  }
  ossl().SSL_set_bio(ssl_, rbio_, wbio_);  // ssl_ owns both now
  ossl().SSL_set_accept_state(ssl_);
}

TlsSession::~TlsSession() { ossl().SSL_free(ssl_); }

Task<Result<void>> TlsSession::flush(Duration timeout, std::stop_token stop) {
  for (;;) {
    if (cipher_out_.empty()) {
      const std::size_t pending = ossl().BIO_ctrl_pending(wbio_);
      if (pending == 0) co_return Result<void>{};
      cipher_out_.resize(pending);
      const int n = ossl().BIO_read(wbio_, cipher_out_.data(), static_cast<int>(pending));
      cipher_out_.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
      continue;
    }
    std::span<const std::byte> buf(reinterpret_cast<const std::byte*>(cipher_out_.data()), cipher_out_.size());
    Result<int> r = co_await runtime::send(fd_, buf).deadline(timeout).stop_on(stop);
    if (!r) co_return Result<void>::failure(r.error());
    if (*r == 0) co_return Result<void>::failure(EPIPE);
    cipher_out_.erase(0, static_cast<std::size_t>(*r));
  }
}

Task<Result<int>> TlsSession::recv(std::span<std::byte> buf, Duration timeout, std::stop_token stop) {
  if (failed_) co_return Result<int>::failure(EPROTO);
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    ossl().ERR_clear_error();
    const int n = ossl().SSL_read(ssl_, buf.data(), static_cast<int>(std::min<std::size_t>(buf.size(), INT32_MAX)));
    const int err = n > 0 ? SSL_ERROR_NONE : ossl().SSL_get_error(ssl_, n);
    // Whatever the read produced (handshake messages, session tickets, an alert)
    // must reach the peer before we wait on it.
    const auto left = std::chrono::duration_cast<Duration>(until - std::chrono::steady_clock::now());
    if (ossl().BIO_ctrl_pending(wbio_) > 0 || !cipher_out_.empty()) {
      Result<void> sent = co_await flush(std::max(left, Duration::zero()), stop);
      if (!sent && err == SSL_ERROR_NONE) co_return Result<int>::failure(sent.error());
    }
    if (err == SSL_ERROR_NONE) co_return n;
    if (err == SSL_ERROR_ZERO_RETURN) co_return 0;  // close_notify
    if (err != SSL_ERROR_WANT_READ) {
      failed_ = true;
      ossl().ERR_clear_error();
      co_return Result<int>::failure(EPROTO);
    }
    if (left <= Duration::zero()) co_return Result<int>::failure(ETIME);
    cipher_in_.resize(kCipherChunk);
    std::span<std::byte> raw(reinterpret_cast<std::byte*>(cipher_in_.data()), cipher_in_.size());
    Result<int> got = co_await runtime::recv(fd_, raw).deadline(left).stop_on(stop);
    if (!got) co_return Result<int>::failure(got.error());
    if (*got == 0) co_return 0;  // EOF without close_notify: the framing tells truncation
    if (first_bytes_) {
      first_bytes_ = false;
      if (looks_like_plain_http(static_cast<unsigned char>(cipher_in_[0]))) {
        failed_ = true;
        const std::string& refusal = plain_refusal();
        std::span<const std::byte> answer(reinterpret_cast<const std::byte*>(refusal.data()), refusal.size());
        (void)co_await runtime::send(fd_, answer).deadline(left).stop_on(stop);
        co_return Result<int>::failure(EPROTO);
      }
    }
    if (ossl().BIO_write(rbio_, cipher_in_.data(), *got) != *got) {
      failed_ = true;
      co_return Result<int>::failure(ENOMEM);
    }
  }
}

Task<Result<void>> TlsSession::send(std::string_view data, bool more, Duration write_timeout,
                                    std::stop_token stop) {
  if (failed_) co_return Result<void>::failure(EPROTO);
  // A record at a time, flushed as it goes: a large body never sits encrypted
  // whole in memory, and a slow reader is felt by the writer (back-pressure).
  while (!data.empty()) {
    const std::size_t n = std::min(data.size(), kPlainChunk);
    ossl().ERR_clear_error();
    const int w = ossl().SSL_write(ssl_, data.data(), static_cast<int>(n));
    if (w <= 0) {
      failed_ = true;
      ossl().ERR_clear_error();
      co_return Result<void>::failure(EPROTO);
    }
    data.remove_prefix(static_cast<std::size_t>(w));
    if (more && data.empty()) break;
    if (ossl().BIO_ctrl_pending(wbio_) >= kPlainChunk || data.empty()) {
      Result<void> sent = co_await flush(write_timeout, stop);
      if (!sent) co_return sent;
    }
  }
  co_return Result<void>{};
}

Task<void> TlsSession::close_notify(Duration timeout, std::stop_token stop) {
  if (failed_ || !ossl().SSL_is_init_finished(ssl_)) co_return;
  ossl().ERR_clear_error();
  (void)ossl().SSL_shutdown(ssl_);
  ossl().ERR_clear_error();
  (void)co_await flush(timeout, std::move(stop));
}

}  // namespace detail
}  // namespace http
