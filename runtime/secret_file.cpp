#include "runtime/secret_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace runtime {

bool check_secret_file(const std::string& path, std::string* error) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    *error = "cannot stat " + path + ": " + std::strerror(errno);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    *error = path + " is not a regular file (symlinks are refused too)";
    return false;
  }
  if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
    *error = path + " is owned by uid " + std::to_string(st.st_uid) +
             ": a secrets file must belong to root or the daemon's user";
    return false;
  }
  if (st.st_mode & (S_IRWXO | S_IWGRP)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    *error = path + " has mode " + mode +
             ": a secrets file must not be readable or writable by others, nor writable by its group (chmod 600 " +
             path + ")";
    return false;
  }
  return true;
}

}  // namespace runtime
