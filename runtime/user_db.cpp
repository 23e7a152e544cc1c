#include "runtime/user_db.hpp"

#include <grp.h>
#include <pwd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string_view>

namespace runtime {
namespace {

constexpr std::size_t kEntryBuffer = 16384;

struct FileCloser {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

File open_db(const std::string& path) { return File(std::fopen(path.c_str(), "re")); }

// Calls visit(group) for each entry until it returns true.
template <typename Visit>
void each_group(const std::string& path, Visit&& visit) {
  File f = open_db(path);
  if (!f) return;
  std::vector<char> buf(kEntryBuffer);
  ::group gr{};
  ::group* out = nullptr;
  // ERANGE: one line longer than the buffer; such an entry is skipped, not the rest.
  for (int rc = 0; (rc = ::fgetgrent_r(f.get(), &gr, buf.data(), buf.size(), &out)) != ENOENT;) {
    if (rc == 0 && out && visit(*out)) return;
    if (rc != 0 && rc != ERANGE) return;
  }
}

// Calls visit(user) for each entry until it returns true.
template <typename Visit>
void each_user(const std::string& path, Visit&& visit) {
  File f = open_db(path);
  if (!f) return;
  std::vector<char> buf(kEntryBuffer);
  ::passwd pw{};
  ::passwd* out = nullptr;
  for (int rc = 0; (rc = ::fgetpwent_r(f.get(), &pw, buf.data(), buf.size(), &out)) != ENOENT;) {
    if (rc == 0 && out && visit(*out)) return;
    if (rc != 0 && rc != ERANGE) return;
  }
}

UserEntry entry_of(const ::passwd& pw) {
  return UserEntry{pw.pw_uid, pw.pw_gid, pw.pw_name ? pw.pw_name : "", pw.pw_dir ? pw.pw_dir : "",
                   pw.pw_shell ? pw.pw_shell : ""};
}

}  // namespace

std::optional<UserEntry> find_user_in_file(const std::string& passwd_path, const std::string& name) {
  std::optional<UserEntry> found;
  each_user(passwd_path, [&](const ::passwd& pw) {
    if (name != pw.pw_name) return false;
    found = entry_of(pw);
    return true;
  });
  return found;
}

std::optional<UserEntry> find_user_in_file(const std::string& passwd_path, uid_t uid) {
  std::optional<UserEntry> found;
  each_user(passwd_path, [&](const ::passwd& pw) {
    if (pw.pw_uid != uid) return false;
    found = entry_of(pw);
    return true;
  });
  return found;
}

std::vector<std::string> user_names_in_file(const std::string& passwd_path) {
  std::vector<std::string> names;
  each_user(passwd_path, [&](const ::passwd& pw) {
    names.emplace_back(pw.pw_name);
    return false;
  });
  return names;
}

std::optional<gid_t> find_group_in_file(const std::string& group_path, const std::string& name) {
  std::optional<gid_t> found;
  each_group(group_path, [&](const ::group& g) {
    if (name != g.gr_name) return false;
    found = g.gr_gid;
    return true;
  });
  return found;
}

std::vector<gid_t> user_groups_in_file(const std::string& group_path, const std::string& name, gid_t primary) {
  std::vector<gid_t> groups{primary};
  each_group(group_path, [&](const ::group& g) {
    for (char** m = g.gr_mem; m && *m; ++m)
      if (name == *m && g.gr_gid != primary) {
        groups.push_back(g.gr_gid);
        break;
      }
    return false;
  });
  return groups;
}

std::optional<gid_t> find_local_group(const std::string& name) { return find_group_in_file("/etc/group", name); }

bool nss_has_remote_sources(const std::string& nsswitch_path, const std::string& database) {
  File f = open_db(nsswitch_path);
  if (!f) return false;
  char line[1024];
  while (std::fgets(line, sizeof line, f.get())) {
    std::string_view l(line);
    const std::size_t colon = l.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = l.substr(0, colon);
    key.remove_prefix(std::min(key.find_first_not_of(" \t"), key.size()));
    key = key.substr(0, key.find_last_not_of(" \t") + 1);
    if (key != database) continue;
    l.remove_prefix(colon + 1);
    // Sources are words; "[NOTFOUND=return]" actions and comments are not.
    for (std::size_t at = 0; at < l.size();) {
      at = l.find_first_not_of(" \t\n", at);
      if (at == std::string_view::npos || l[at] == '#') break;
      const std::size_t end = std::min(l.find_first_of(" \t\n", at), l.size());
      const std::string_view word = l.substr(at, end - at);
      if (word.front() == '[') {
        at = l.find(']', at);
        if (at == std::string_view::npos) break;
        ++at;
        continue;
      }
      if (word != "files" && word != "systemd") return true;
      at = end;
    }
    return false;
  }
  return false;
}

#ifdef DOCKLESS_STATIC_BUILD

std::optional<UserEntry> find_user(const std::string& name) { return find_user_in_file("/etc/passwd", name); }
std::optional<UserEntry> find_user(uid_t uid) { return find_user_in_file("/etc/passwd", uid); }
std::vector<std::string> user_names() { return user_names_in_file("/etc/passwd"); }
std::optional<gid_t> find_group(const std::string& name) { return find_group_in_file("/etc/group", name); }
std::vector<gid_t> user_groups(const std::string& name, gid_t primary) {
  return user_groups_in_file("/etc/group", name, primary);
}

#else

std::optional<UserEntry> find_user(const std::string& name) {
  if (auto local = find_user_in_file("/etc/passwd", name)) return local;
  std::vector<char> buf(kEntryBuffer);
  ::passwd pw{};
  ::passwd* found = nullptr;
  if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found) return std::nullopt;
  return entry_of(pw);
}

std::optional<UserEntry> find_user(uid_t uid) {
  if (auto local = find_user_in_file("/etc/passwd", uid)) return local;
  std::vector<char> buf(kEntryBuffer);
  ::passwd pw{};
  ::passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || !found) return std::nullopt;
  return entry_of(pw);
}

// Only the local files: enumerating NSS (LDAP, sssd) can be slow or unbounded, and
// the list only feeds a suggestion.
std::vector<std::string> user_names() { return user_names_in_file("/etc/passwd"); }

std::optional<gid_t> find_group(const std::string& name) {
  if (auto local = find_local_group(name)) return local;
  std::vector<char> buf(kEntryBuffer);
  ::group gr{};
  ::group* found = nullptr;
  if (::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found) != 0 || !found) return std::nullopt;
  return gr.gr_gid;
}

std::vector<gid_t> user_groups(const std::string& name, gid_t primary) {
  // A user of the files whose groups can only come from the files (and systemd's,
  // which holds none for them): /etc/group says it all.
  if (find_user_in_file("/etc/passwd", name) && !nss_has_remote_sources("/etc/nsswitch.conf", "group"))
    return user_groups_in_file("/etc/group", name, primary);
  int n = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  if (::getgrouplist(name.c_str(), primary, groups.data(), &n) < 0) {
    // Too many for the first guess: n now holds the count needed.
    groups.resize(static_cast<std::size_t>(n));
    if (::getgrouplist(name.c_str(), primary, groups.data(), &n) < 0) return {primary};
  }
  groups.resize(static_cast<std::size_t>(n));
  return groups;
}

#endif

}  // namespace runtime
