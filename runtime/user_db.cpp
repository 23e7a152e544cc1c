#include "runtime/user_db.hpp"

#include <grp.h>
#include <pwd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

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
  std::vector<char> buf(kEntryBuffer);
  ::passwd pw{};
  ::passwd* found = nullptr;
  if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found) return std::nullopt;
  return entry_of(pw);
}

std::optional<UserEntry> find_user(uid_t uid) {
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
  std::vector<char> buf(kEntryBuffer);
  ::group gr{};
  ::group* found = nullptr;
  if (::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found) != 0 || !found) return std::nullopt;
  return gr.gr_gid;
}

std::vector<gid_t> user_groups(const std::string& name, gid_t primary) {
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
