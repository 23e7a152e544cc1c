#include "tools/daemon/load.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "actors/config_inputs.hpp"
#include "runtime/fs.hpp"
#include "tools/daemon/daemon_log.hpp"

namespace tools {

namespace {

// A "--listen ADDR:PORT" or ":PORT" over the config's; false (and an error) when malformed.
bool apply_listen(const std::string& listen, config::Config& cfg, std::vector<config::Error>& errors) {
  auto colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? "" : listen.substr(0, colon);
  std::string port = colon == std::string::npos ? listen : listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || p < 0 || p > 65535) {
    errors.push_back({"--listen", 0, 0, "expected ADDR:PORT or :PORT, got \"" + listen + "\""});
    return false;
  }
  cfg.listen_port = static_cast<std::uint16_t>(p);
  if (!host.empty()) cfg.listen_address = host;
  return true;
}

std::optional<runtime::Fd> lock_data_dir(const std::string& dir, std::string* error) {
  runtime::Result<runtime::Fd> opened = runtime::open_data_file(dir + "/.lock", O_RDWR | O_CREAT, 0600);
  if (!opened) {
    *error = "open " + dir + "/.lock: " + std::strerror(opened.error());
    return std::nullopt;
  }
  runtime::Fd fd = std::move(opened).value();
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    *error = errno == EWOULDBLOCK ? "another dockless daemon is using " + dir
                                  : std::string("flock: ") + std::strerror(errno);
    return std::nullopt;
  }
  return fd;
}

}  // namespace

LoadedConfig load_config(const ServeOptions& opts) {
  LoadedConfig out;
  struct stat st{};
  if (::stat(opts.config_path.c_str(), &st) != 0 && errno == ENOENT && !opts.config_explicit) {
    out.config = config::embedded_defaults();
  } else {
    config::ParseResult r = config::parse_file(opts.config_path, actors::host_config_inputs());
    if (!r.ok()) {
      out.errors = std::move(r.errors);
      return out;
    }
    out.config = std::move(r.config);
    out.from_file = true;
  }
  if (!opts.data_dir.empty()) out.config->data_dir = opts.data_dir;
  if (!opts.cert.empty()) out.config->http.cert = opts.cert;
  if (!opts.key.empty()) out.config->http.key = opts.key;
  if (!opts.listen.empty() && !apply_listen(opts.listen, *out.config, out.errors)) out.config.reset();
  return out;
}

void log_errors(const std::vector<config::Error>& errors) {
  for (const auto& e : errors) log(Level::error, e.to_string());
}

std::optional<runtime::Fd> open_data_dir(const std::string& dir) {
  for (const char* sub : {"", "/logs", "/services"}) {
    if (auto r = runtime::make_dirs(dir + sub, 0755, /*may_be_symlink=*/*sub == '\0'); !r) {
      log(Level::error, "cannot create " + dir + sub + ": " + r.message());
      return std::nullopt;
    }
  }
  std::string error;
  auto lock = lock_data_dir(dir, &error);
  if (!lock) log(Level::error, error);
  return lock;
}

http::TlsContext::Loaded load_tls(const config::HttpConfig& http) {
  if (http.cert.empty() && http.key.empty()) return {};
  if (http.cert.empty() || http.key.empty()) {
    http::TlsContext::Loaded out;
    out.error = http.cert.empty() ? "a TLS key (" + http.key + ") needs a certificate: --cert, DOCKLESS_CERT or [http] cert"
                                  : "a TLS certificate (" + http.cert + ") needs a key: --key, DOCKLESS_KEY or [http] key";
    return out;
  }
  return http::TlsContext::load(http.cert, http.key);
}

void log_tls(const http::TlsContext& tls, const std::string& what) {
  log(Level::info, what + " " + tls.subject() + " sha256 " + tls.fingerprint());
}

std::optional<http::auth::LoadedKeys> load_api_keys(const ServeOptions& opts, const config::Config& cfg,
                                                    std::string* error) {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  http::auth::KeySource src;
  src.env_keys = env("DOCKLESS_API_KEYS");
  src.env_hmac = env("DOCKLESS_HMAC_SECRET");
  src.keys_file = cfg.http.api_keys_file;
  if (!src.keys_file.empty() && src.keys_file.front() != '/')
    src.keys_file = (std::filesystem::path(opts.config_path).parent_path() / src.keys_file).string();
  src.data_dir = cfg.data_dir;
  return http::auth::load_keys(src, error);
}

http::auth::Policy auth_policy(const config::Config& cfg) {
  http::auth::Policy p;
  p.public_read = cfg.http.public_read;
  p.allowed_origins = cfg.http.allowed_origins;
  return p;
}

void log_keys(const http::auth::LoadedKeys& keys) {
  if (keys.created)
    log(Level::info, "no API key configured: created an admin key in " + keys.where +
                         " (mode 0600; send it as \"Authorization: Bearer <key>\")");
  else
    log(Level::info, "API keys: " + std::to_string(keys.keys.size()) + " from " + keys.where);
}

actors::EventLogLimits event_log_limits(const config::Config& cfg) {
  actors::EventLogLimits limits;
  limits.max_size = cfg.events.max_size;
  limits.keep = cfg.events.keep;
  limits.max_age_ms = cfg.events.max_age.count();
  return limits;
}

}  // namespace tools
