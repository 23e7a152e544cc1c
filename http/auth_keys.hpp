#pragma once
// Where the API keys come from (every configured source counts):
//   - DOCKLESS_API_KEYS: comma-separated bearer keys;
//   - [http] api_keys_file: one key per line, "KEY" or "NAME KEY", '#' comments;
//   - DOCKLESS_HMAC_SECRET: a secret that only signs (HMAC), never a bearer key;
//   - none of these: DATA_DIR/api-key, created at first boot (32 random bytes,
//     hex, mode 0600) and reused afterwards.
// Bearer keys also sign: a client may prove it holds a key without sending it.
// A secrets file is refused when it is not a regular file, is owned by someone
// other than root or the daemon's user, or grants any permission to others or
// write to the group: its contents are the keys to the whole node.
// Start-up and SIGHUP code: reads small files with plain syscalls.
#include <optional>
#include <string>
#include <vector>

#include "http/auth.hpp"

namespace http::auth {

inline constexpr std::size_t kMinKeyLength = 16;

struct KeySource {
  std::string env_keys;      // DOCKLESS_API_KEYS
  std::string env_hmac;      // DOCKLESS_HMAC_SECRET
  std::string keys_file;     // [http] api_keys_file ("" when not set)
  std::string data_dir;      // for the first-boot key
};

struct LoadedKeys {
  std::vector<Key> keys;
  std::string where;      // "DOCKLESS_API_KEYS", "/etc/dockless/keys", ...; never a key
  bool created = false;   // the first-boot key file was written just now
};

// nullopt with *error set (one clear sentence) when a source is unusable.
std::optional<LoadedKeys> load_keys(const KeySource& src, std::string* error);

// Parses a keys file's text; `file` names it in errors ("keys:3: ...").
std::optional<std::vector<Key>> parse_keys_file(std::string_view text, const std::string& file, std::string* error);

// Refuses a secrets file whose mode or owner would let others read or replace it.
bool check_secret_file(const std::string& path, std::string* error);

}  // namespace http::auth
