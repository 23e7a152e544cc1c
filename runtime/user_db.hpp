#pragma once
// User and group lookups for `user =`/`group =` and the CLI socket's group.
//
// A fully static glibc (the -Dstatic aarch64 build) still dlopens the NSS modules
// /etc/nsswitch.conf names, and with libnss-systemd installed (Debian, Raspberry Pi OS)
// the mismatched module crashes the process inside getgrnam. So the static build reads
// /etc/passwd and /etc/group itself (fgetpwent_r/fgetgrent_r parse a stream without
// NSS). The dynamic build reads the same files first and asks NSS only for what they
// do not hold (LDAP/sssd users, systemd's dynamic users): loading an NSS module maps it
// for the daemon's life (libnss_systemd: ~0.3 MiB), for lookups the files answer.
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace runtime {

struct UserEntry {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
  std::string home;   // pw_dir
  std::string shell;  // pw_shell
};

std::optional<UserEntry> find_user(const std::string& name);
std::optional<UserEntry> find_user(uid_t uid);
// Every user name the database lists, for "did you mean" in config errors.
std::vector<std::string> user_names();
std::optional<gid_t> find_group(const std::string& name);
// /etc/group only, never NSS: for the unix socket's optional "dockless" group, which
// `groupadd` creates there; a daemon without it must not load NSS to learn that.
std::optional<gid_t> find_local_group(const std::string& name);
// The primary group first, then every group whose member list names the user.
std::vector<gid_t> user_groups(const std::string& name, gid_t primary);

// The files-only lookups the static build uses, on any passwd/group file (tests).
std::optional<UserEntry> find_user_in_file(const std::string& passwd_path, const std::string& name);
std::optional<UserEntry> find_user_in_file(const std::string& passwd_path, uid_t uid);
std::vector<std::string> user_names_in_file(const std::string& passwd_path);
std::optional<gid_t> find_group_in_file(const std::string& group_path, const std::string& name);
std::vector<gid_t> user_groups_in_file(const std::string& group_path, const std::string& name, gid_t primary);

// Whether an nsswitch.conf names, for `database` ("passwd", "group"), a source beyond
// "files" and "systemd" (ldap, sss, nis, ...): then a user's supplementary groups may
// live there, and only NSS can list them. A missing file or line means files only.
bool nss_has_remote_sources(const std::string& nsswitch_path, const std::string& database);

}  // namespace runtime
