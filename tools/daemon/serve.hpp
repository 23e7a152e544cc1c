#pragma once
#include <string>
#include <vector>

namespace tools {

struct ServeOptions {
  std::string config_path;
  bool config_explicit = false;  // named by flag or DOCKLESS_CONFIG: must exist
  std::string data_dir;          // overrides the config's
  std::string listen;            // "ADDR:PORT" or ":PORT", overrides the config's
  std::string socket_path;       // the CLI's unix socket; "" disables it
  std::string cert;              // PEM certificate chain (--cert, DOCKLESS_CERT), overrides [http] cert
  std::string key;               // PEM private key (--key, DOCKLESS_KEY), overrides [http] key
};

// `dockless serve`: runs the daemon until SIGTERM/SIGINT. Returns the exit code.
int serve(const ServeOptions& opts);

}  // namespace tools
