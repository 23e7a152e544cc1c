#include "http/auth_keys.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "http/crypto.hpp"
#include "runtime/fd.hpp"
#include "runtime/secret_file.hpp"

namespace http::auth {

namespace {

bool fail(std::string* error, std::string text) {
  *error = std::move(text);
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::strchr(" \t\r", s.front())) s.remove_prefix(1);
  while (!s.empty() && std::strchr(" \t\r", s.back())) s.remove_suffix(1);
  return s;
}

std::optional<std::string> read_small_file(const std::string& path, std::string* error) {
  runtime::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    fail(error, "cannot open " + path + ": " + std::strerror(errno));
    return std::nullopt;
  }
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      fail(error, "cannot read " + path + ": " + std::strerror(errno));
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > (1u << 20)) {
      fail(error, path + " is larger than 1 MiB; not a keys file");
      return std::nullopt;
    }
  }
  return out;
}

bool key_usable(std::string_view key, const std::string& where, std::string* error) {
  if (key.size() < kMinKeyLength)
    return fail(error, where + ": a key must be at least " + std::to_string(kMinKeyLength) +
                           " characters (generate one with: openssl rand -hex 32)");
  for (char c : key)
    if (static_cast<unsigned char>(c) <= ' ' || c == ',' || c == 0x7f)
      return fail(error, where + ": a key must be printable ASCII without spaces or commas");
  return true;
}

std::optional<std::vector<Key>> parse_env_keys(std::string_view text, std::string* error) {
  std::vector<Key> out;
  std::size_t n = 0;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view key = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    ++n;
    if (key.empty()) continue;
    const std::string name = "DOCKLESS_API_KEYS[" + std::to_string(n) + "]";
    if (!key_usable(key, name, error)) return std::nullopt;
    out.push_back({name, std::string(key), true});
  }
  return out;
}

// The first-boot key: created with O_EXCL, so two racing starts cannot both write it.
std::optional<Key> first_boot_key(const std::string& data_dir, bool* created, std::string* error) {
  const std::string path = data_dir + "/api-key";
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      fail(error, "cannot stat " + path + ": " + std::strerror(errno));
      return std::nullopt;
    }
    const std::string key = crypto::hex(crypto::random_bytes(32));
    runtime::Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) {
      fail(error, "cannot create " + path + ": " + std::strerror(errno));
      return std::nullopt;
    }
    ::fchmod(fd.get(), 0600);  // whatever the umask
    const std::string line = key + "\n";
    if (::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()) || ::fsync(fd.get()) != 0) {
      const int err = errno;
      ::unlink(path.c_str());
      fail(error, "cannot write " + path + ": " + std::strerror(err));
      return std::nullopt;
    }
    *created = true;
    return Key{"admin", key, true};
  }
  if (!check_secret_file(path, error)) return std::nullopt;
  auto text = read_small_file(path, error);
  if (!text) return std::nullopt;
  const std::string key(trim(std::string_view(*text).substr(0, text->find('\n'))));
  if (!key_usable(key, path, error)) return std::nullopt;
  return Key{"admin", key, true};
}

}  // namespace

bool check_secret_file(const std::string& path, std::string* error) {
  return runtime::check_secret_file(path, error);
}

std::optional<std::vector<Key>> parse_keys_file(std::string_view text, const std::string& file,
                                                std::string* error) {
  std::vector<Key> out;
  int line_no = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (const auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) continue;
    const std::string where = file + ":" + std::to_string(line_no);
    std::string_view name, key = line;
    if (const auto sp = line.find_first_of(" \t"); sp != std::string_view::npos) {
      name = line.substr(0, sp);
      key = trim(line.substr(sp));
      if (key.find_first_of(" \t") != std::string_view::npos) {
        fail(error, where + ": expected \"KEY\" or \"NAME KEY\"");
        return std::nullopt;
      }
    }
    if (!key_usable(key, where, error)) return std::nullopt;
    out.push_back({name.empty() ? where : std::string(name), std::string(key), true});
  }
  return out;
}

std::optional<LoadedKeys> load_keys(const KeySource& src, std::string* error) {
  LoadedKeys out;
  if (!trim(src.env_keys).empty()) {
    auto keys = parse_env_keys(src.env_keys, error);
    if (!keys) return std::nullopt;
    out.keys = std::move(*keys);
    out.where = "DOCKLESS_API_KEYS";
  }
  if (!src.keys_file.empty()) {
    if (!check_secret_file(src.keys_file, error)) return std::nullopt;
    auto text = read_small_file(src.keys_file, error);
    if (!text) return std::nullopt;
    auto keys = parse_keys_file(*text, src.keys_file, error);
    if (!keys) return std::nullopt;
    if (keys->empty()) {
      fail(error, src.keys_file + " holds no key");
      return std::nullopt;
    }
    for (auto& k : *keys) out.keys.push_back(std::move(k));
    out.where += out.where.empty() ? src.keys_file : " and " + src.keys_file;
  }
  if (!src.env_hmac.empty()) {
    if (!key_usable(src.env_hmac, "DOCKLESS_HMAC_SECRET", error)) return std::nullopt;
    out.keys.push_back({"DOCKLESS_HMAC_SECRET", src.env_hmac, false});
    out.where += out.where.empty() ? "DOCKLESS_HMAC_SECRET" : " and DOCKLESS_HMAC_SECRET";
  }
  if (!out.keys.empty()) return out;
  auto key = first_boot_key(src.data_dir, &out.created, error);
  if (!key) return std::nullopt;
  out.keys.push_back(std::move(*key));
  out.where = src.data_dir + "/api-key";
  return out;
}

}  // namespace http::auth
