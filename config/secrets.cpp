#include "config/secrets.hpp"

#include <cerrno>
#include <cstring>
#include <tuple>

namespace config {
namespace {

bool segment_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

// A file's text without the newline editors and `echo` leave at its end.
std::string without_trailing_newline(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

}  // namespace

bool secret_ref_valid(std::string_view ref) {
  if (ref.empty() || ref.size() > 255) return false;
  std::size_t start = 0;
  while (start <= ref.size()) {
    std::size_t end = ref.find('/', start);
    if (end == std::string_view::npos) end = ref.size();
    std::string_view seg = ref.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    for (char c : seg)
      if (!segment_char(c)) return false;
    start = end + 1;
  }
  return true;
}

std::string secret_env_name(std::string_view ref) {
  std::string out = "DOCKLESS_SECRET_";
  for (char c : ref) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    out += ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) ? c : '_';
  }
  return out;
}

SecretChain::SecretChain(const Inputs& in, std::string secrets_dir) : in_(in), secrets_dir_(std::move(secrets_dir)) {
  if (in_.env)
    if (auto dir = in_.env("CREDENTIALS_DIRECTORY")) credentials_dir_ = *dir;
}

std::vector<std::string> SecretChain::describe() const {
  return {
      credentials_dir_.empty() ? "systemd credentials: $CREDENTIALS_DIRECTORY not set"
                               : "systemd credentials: " + credentials_dir_ + "/NAME",
      secrets_dir_.empty() ? "files: secrets_dir not set" : "files: " + secrets_dir_ + "/NAME (mode-checked)",
      "environment: DOCKLESS_SECRET_NAME",
  };
}

SecretChain::Look SecretChain::from_file(const std::string& dir, std::string_view ref, const char* what, Found* out,
                                         std::string* note) const {
  const std::string path = dir + "/" + std::string(ref);
  const FileReader& read = in_.read_secret_file ? in_.read_secret_file : in_.read_file;
  std::string error = "no file reader given";
  std::optional<std::string> text = read ? read(path, &error) : std::nullopt;
  if (!text) {
    *note = std::string(what) + " (" + path + ": " + error + ")";
    // Only a file that is not there is a miss; one that cannot be used stops the lookup.
    return error == std::strerror(ENOENT) || error == "Not a directory" ? Look::absent : Look::refused;
  }
  out->value = without_trailing_newline(std::move(*text));
  out->source = std::string(what) + " " + path;
  if (out->value.empty()) {
    *note = path + " is empty";
    return Look::refused;
  }
  return Look::found;
}

std::optional<SecretChain::Found> SecretChain::resolve(std::string_view ref, std::string* error) const {
  std::string quoted = "\"";  // built in place: GCC 12 misreports "\"" + string as overlapping (-Wrestrict)
  quoted.append(ref).push_back('"');
  if (!secret_ref_valid(ref)) {
    *error = "secret reference " + quoted + " must be segments of [A-Za-z0-9._-] separated by '/'";
    return std::nullopt;
  }
  std::vector<std::string> tried;
  Found found;
  std::string note;
  for (const auto& [dir, what, unset] :
       {std::tuple{credentials_dir_, "systemd credential", "systemd credentials ($CREDENTIALS_DIRECTORY not set)"},
        std::tuple{secrets_dir_, "file", "files (secrets_dir not set)"}}) {
    if (dir.empty()) {
      tried.emplace_back(unset);
      continue;
    }
    switch (from_file(dir, ref, what, &found, &note)) {
      case Look::found: return found;
      case Look::refused: *error = "secret " + quoted + ": " + note; return std::nullopt;
      case Look::absent: tried.push_back(note); break;
    }
  }
  const std::string var = secret_env_name(ref);
  if (in_.env)
    if (auto v = in_.env(var); v && !v->empty()) return Found{*v, "environment " + var};
  tried.push_back("environment (" + var + " not set)");
  std::string chain;
  for (const std::string& t : tried) {
    if (!chain.empty()) chain += ", ";
    chain += t;
  }
  *error = "secret " + quoted + " not found; tried " + chain;
  return std::nullopt;
}

}  // namespace config
