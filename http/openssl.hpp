#pragma once
// OpenSSL, loaded on first use. The daemon does not link libssl or libcrypto: merely
// mapping them costs ~1.5 MiB of relocated pages per process, and their first use
// (provider set-up) ~3.4 MiB, which most installations — plain HTTP on loopback,
// bearer keys — never need. TLS loads the library when a certificate is configured;
// HMAC-signed requests and webhook triggers load it with the first one that arrives.
//
// Every function is called through `api()`, whose members have the exact types of
// the OpenSSL headers' declarations (decltype), so the compiler checks each call as
// it would a direct one; OpenSSL's function-like macros (SSL_CTX_set_mode, ...) are
// spelled out as the SSL_CTX_ctrl/SSL_ctrl calls they expand to. A direct reference
// to an OpenSSL function from the daemon fails to link, which keeps this honest.
// The static build (-Dstatic=true) links OpenSSL in and fills the table directly.
//
// -Dtls=wolfssl (DOCKLESS_TLS_WOLFSSL) puts wolfSSL behind the same table through its
// OpenSSL compatibility layer, whose names are macros (SSL_new -> wolfSSL_new): the
// members and the symbols looked up are then the wolfSSL names. docs/develop.md
// "Binary size" says why the choice exists and what differs.
#ifdef DOCKLESS_TLS_WOLFSSL
#include <wolfssl/options.h>  // first: the library's build flags shape every other header
#include <wolfssl/openssl/crypto.h>
#include <wolfssl/openssl/err.h>
#include <wolfssl/openssl/evp.h>
#include <wolfssl/openssl/hmac.h>
#include <wolfssl/openssl/sha.h>
#include <wolfssl/openssl/ssl.h>
#include <wolfssl/openssl/x509.h>
#include <wolfssl/openssl/x509_vfy.h>
#include <wolfssl/version.h>
// Function-like in the compatibility layer, so a member named after them would not be
// renamed as the object-like ones are; made object-like (the same functions).
#undef HMAC
#define HMAC wolfSSL_HMAC
#undef SSL_CTX_new
#define SSL_CTX_new wolfSSL_CTX_new
#undef X509_get_subject_name
#define X509_get_subject_name wolfSSL_X509_get_subject_name
#undef SSL_CTX_load_verify_locations
#define SSL_CTX_load_verify_locations wolfSSL_CTX_load_verify_locations
// OpenSSL options wolfSSL has no flag for: its server refuses renegotiation anyway (built
// without HAVE_SECURE_RENEGOTIATION), and its client reports an EOF without close_notify
// as SOCKET_PEER_CLOSED_E, which tools/cli/connection.cpp takes as the end of the body.
#define SSL_OP_NO_RENEGOTIATION 0
#define SSL_OP_IGNORE_UNEXPECTED_EOF 0
#include <wolfssl/wolfcrypt/ecc.h>
// wolfCrypt's own: frees this thread's fixed-point ECC caches (Debian builds with FP_ECC).
#define DOCKLESS_TLS_EXTRA_FUNCTIONS(X) X(wc_ecc_fp_free)
#else
#define DOCKLESS_TLS_EXTRA_FUNCTIONS(X)
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#endif

#include <string>

namespace http::openssl {

#define DOCKLESS_OPENSSL_FUNCTIONS(X)                                                                         \
  X(OpenSSL_version_num) X(ERR_clear_error) X(ERR_peek_last_error) X(ERR_reason_error_string)                \
  X(SHA256) X(HMAC) X(EVP_sha256)                                     \
  X(TLS_server_method) X(TLS_client_method) X(SSL_CTX_new) X(SSL_CTX_free) X(SSL_CTX_ctrl)                    \
  X(SSL_CTX_set_options) X(SSL_CTX_set_cipher_list) X(SSL_CTX_set_alpn_select_cb)                              \
  X(SSL_CTX_use_certificate_chain_file) X(SSL_CTX_use_PrivateKey_file) X(SSL_CTX_check_private_key)         \
  X(SSL_CTX_get0_certificate) X(SSL_CTX_set_default_verify_paths) X(SSL_CTX_load_verify_locations)          \
  X(SSL_CTX_set_verify) X(SSL_select_next_proto) X(X509_digest) X(X509_NAME_oneline) X(X509_get_subject_name) \
  X(X509_verify_cert_error_string) X(X509_VERIFY_PARAM_set1_ip_asc) X(X509_VERIFY_PARAM_set1_host)           \
  X(SSL_new) X(SSL_free) X(SSL_set_bio) X(SSL_set_accept_state) X(SSL_set_fd) X(SSL_ctrl) X(SSL_get0_param)   \
  X(SSL_set_alpn_protos) X(SSL_connect) X(SSL_read) X(SSL_write) X(SSL_get_error) X(SSL_get_verify_result)    \
  X(SSL_shutdown) X(SSL_is_init_finished) X(BIO_new) X(BIO_s_mem) X(BIO_free) X(BIO_read) X(BIO_write)          \
  X(BIO_ctrl_pending) DOCKLESS_TLS_EXTRA_FUNCTIONS(X)

struct Api {
// NOLINTNEXTLINE(bugprone-macro-parentheses): `name` is a declarator here, not an expression
#define DOCKLESS_OPENSSL_MEMBER(name) decltype(&::name) name = nullptr;
  DOCKLESS_OPENSSL_FUNCTIONS(DOCKLESS_OPENSSL_MEMBER)
#undef DOCKLESS_OPENSSL_MEMBER
};

// The library's functions; the first call loads it (thread-safe, once; never unloaded).
// Null if it cannot be loaded, with `*error` saying why (the soname and dlerror).
const Api* api(std::string* error = nullptr);

// api(), for callers with no way to report a missing library but an exception
// (std::runtime_error naming the library).
const Api& require();

// Whether the library is mapped into this process yet (the footprint tests ask).
bool loaded() noexcept;

}  // namespace http::openssl
