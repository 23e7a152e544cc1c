#pragma once
// What the daemon reads at start and again on every reload: the config (the file, or the
// embedded defaults, then the command line's overrides), the TLS certificate and the API
// keys. Also the data directory, made and locked once at start.
#include <optional>
#include <string>
#include <vector>

#include "actors/event_log.hpp"
#include "config/config.hpp"
#include "http/auth.hpp"
#include "http/auth_keys.hpp"
#include "http/tls.hpp"
#include "runtime/fd.hpp"
#include "tools/daemon/serve.hpp"

namespace tools {

struct LoadedConfig {
  std::optional<config::Config> config;  // null when errors
  std::vector<config::Error> errors;
  bool from_file = false;  // false: the embedded defaults (no file at the default path)
};
// Reads the config (or the embedded defaults when no file exists and none was named),
// then applies the command-line overrides.
LoadedConfig load_config(const ServeOptions& opts);
void log_errors(const std::vector<config::Error>& errors);

// Creates data_dir and its subfolders and takes its lock (one daemon per data_dir: a
// second one would fight the first over every service). Logs why and returns null when
// it cannot.
std::optional<runtime::Fd> open_data_dir(const std::string& dir);

// The HTTPS certificate named by the config (after flag and env overrides). Neither
// cert nor key: plain HTTP (a null context, no error).
http::TlsContext::Loaded load_tls(const config::HttpConfig& http);
void log_tls(const http::TlsContext& tls, const std::string& what);

// API keys from the environment, the config's keys file (relative to the config file's
// directory) or the first-boot key in data_dir.
std::optional<http::auth::LoadedKeys> load_api_keys(const ServeOptions& opts, const config::Config& cfg,
                                                    std::string* error);
http::auth::Policy auth_policy(const config::Config& cfg);

// [events] as the event log's rotation limits.
actors::EventLogLimits event_log_limits(const config::Config& cfg);
void log_keys(const http::auth::LoadedKeys& keys);

}  // namespace tools
