#pragma once
// Secrets by reference: `secrets = { signing_secret = "github/webhook-secret" }` names a secret
// that is looked up, in order, in
//   1. systemd credentials     $CREDENTIALS_DIRECTORY/<reference>
//   2. the secrets directory   <secrets_dir>/<reference>        (when secrets_dir is set)
//   3. the environment         DOCKLESS_SECRET_<REFERENCE>, the reference upper-cased and every
//                              character other than A-Z and 0-9 made '_'
// The first provider that has it wins. Files are read through Inputs::read_secret_file, which
// the daemon makes refuse a file others may read (like the API keys file); such a file is an
// error, not a miss, so a leaked secret is never used quietly. A file's trailing newline is
// not part of the secret. Nothing here opens a file itself.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace config {

// Segments of [A-Za-z0-9._-] separated by single '/', none "." or "..": a reference becomes
// a path below the credentials and secrets directories and must not leave them.
bool secret_ref_valid(std::string_view ref);
// "github/webhook-secret" -> "DOCKLESS_SECRET_GITHUB_WEBHOOK_SECRET".
std::string secret_env_name(std::string_view ref);

class SecretChain {
 public:
  // `secrets_dir` empty: no directory provider.
  SecretChain(const Inputs& in, std::string secrets_dir);

  // One line per provider, in lookup order, for the start-up log.
  std::vector<std::string> describe() const;

  struct Found {
    std::string value;
    std::string source;  // "environment DOCKLESS_SECRET_X", "file /etc/dockless/secrets/x", ...
  };
  // The secret, or nullopt and in *error why: every provider tried and what it said, or the
  // refusal of a file that exists but may not be used.
  std::optional<Found> resolve(std::string_view ref, std::string* error) const;

 private:
  enum class Look { found, absent, refused };
  Look from_file(const std::string& dir, std::string_view ref, const char* what, Found* out, std::string* note) const;

  Inputs in_;
  std::string credentials_dir_;
  std::string secrets_dir_;
};

}  // namespace config
