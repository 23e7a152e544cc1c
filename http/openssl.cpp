#include "http/openssl.hpp"

#include <atomic>
#include <mutex>
#include <stdexcept>

#ifndef DOCKLESS_STATIC_BUILD
#include <dlfcn.h>
#endif

namespace http::openssl {
namespace {

#ifdef DOCKLESS_TLS_WOLFSSL
// Debian 12's wolfSSL 5.5: the soname's number moves with the ABI, so headers and library
// must agree on it; the table's types come from these headers.
constexpr const char* kLibrary = "wolfSSL";
constexpr const char* kSoname = "libwolfssl.so.35";
static_assert(LIBWOLFSSL_VERSION_HEX >> 24 == 5, "the soname above is wolfSSL 5's");
#else
constexpr const char* kLibrary = "OpenSSL";
constexpr const char* kSoname = "libssl.so.3";
static_assert(OPENSSL_VERSION_MAJOR == 3, "the soname above and the table's types are OpenSSL 3's");
#endif

// Two levels, so that a name the compatibility layer defines as a macro (wolfSSL) is
// looked up as the function it expands to.
#define DOCKLESS_OPENSSL_STR2(name) #name
#define DOCKLESS_OPENSSL_STR(name) DOCKLESS_OPENSSL_STR2(name)

struct Loaded {
  Api api;
  std::string error;  // empty when loaded
};

std::atomic<bool> mapped{false};

Loaded load() {
  Loaded out;
#ifdef DOCKLESS_STATIC_BUILD
#define DOCKLESS_OPENSSL_BIND(name) out.api.name = &::name;
  DOCKLESS_OPENSSL_FUNCTIONS(DOCKLESS_OPENSSL_BIND)
#undef DOCKLESS_OPENSSL_BIND
#else
  // libssl's own dependencies bring libcrypto; dlsym on its handle searches both.
  // RTLD_LOCAL: nothing else in the process resolves against them by accident.
  void* handle = ::dlopen(kSoname, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = ::dlerror();
    out.error = std::string("cannot load ") + kLibrary + " (" + kSoname + "): " + (why ? why : "unknown error");
    return out;
  }
  std::string missing;
#define DOCKLESS_OPENSSL_BIND(name)                                                   \
  out.api.name = reinterpret_cast<decltype(&::name)>(::dlsym(handle, DOCKLESS_OPENSSL_STR(name))); \
  if (!out.api.name) missing += missing.empty() ? DOCKLESS_OPENSSL_STR(name) : ", " DOCKLESS_OPENSSL_STR(name);
  DOCKLESS_OPENSSL_FUNCTIONS(DOCKLESS_OPENSSL_BIND)
#undef DOCKLESS_OPENSSL_BIND
  if (!missing.empty()) {
    out.error = std::string(kSoname) + " lacks " + missing;
    return out;
  }
#ifndef DOCKLESS_TLS_WOLFSSL
  // Same major version as the headers this was compiled against: the ABI promise.
  if ((out.api.OpenSSL_version_num() >> 28) != OPENSSL_VERSION_MAJOR) {
    out.error = std::string(kSoname) + " is not OpenSSL 3";
    return out;
  }
#endif
#endif
  mapped = true;
  return out;
}

const Loaded& instance() {
  static std::once_flag once;
  static Loaded* loaded = nullptr;  // never freed: the library stays for the process's life
  std::call_once(once, [] { loaded = new Loaded(load()); });
  return *loaded;
}

}  // namespace

const Api* api(std::string* error) {
  const Loaded& l = instance();
  if (!l.error.empty()) {
    if (error) *error = l.error;
    return nullptr;
  }
  return &l.api;
}

const Api& require() {
  std::string error;
  const Api* a = api(&error);
  if (!a) throw std::runtime_error(error);
  return *a;
}

bool loaded() noexcept { return mapped; }

}  // namespace http::openssl
