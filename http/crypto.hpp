#pragma once
// The few cryptographic primitives the API's authentication and the webhook
// triggers share. Digests and HMAC are thin wrappers over OpenSSL's libcrypto (or
// wolfSSL's, -Dtls=wolfssl), loaded on first use (http/openssl.hpp; they throw
// std::runtime_error if it cannot be); hex, base64, the constant-time compare and the
// CSPRNG (getrandom) are not, so bearer keys and the first-boot key never load it.
#include <optional>
#include <string>
#include <string_view>

namespace http::crypto {

// Raw 32-byte digests.
std::string sha256(std::string_view data);
std::string hmac_sha256(std::string_view key, std::string_view data);

std::string hex(std::string_view in);               // lowercase
std::optional<std::string> unhex(std::string_view text);  // either case; nullopt on bad input
std::string base64(std::string_view in);            // standard alphabet, padded
// Standard alphabet, padding required; nullopt on any malformed input.
std::optional<std::string> unbase64(std::string_view text);

// Compares in time that depends only on the lengths, never on where the first
// difference is (CRYPTO_memcmp): secrets and signatures go through this.
bool equal_constant_time(std::string_view a, std::string_view b) noexcept;

// `n` bytes from the system CSPRNG (RAND_bytes); throws std::runtime_error if it fails.
std::string random_bytes(std::size_t n);

}  // namespace http::crypto
