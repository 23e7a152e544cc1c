#include "tools/daemon/sd_env.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string_view>

#include "http/server.hpp"
#include "tools/daemon/daemon_log.hpp"

namespace tools {

namespace {

std::string take(const char* name) {
  const char* v = ::getenv(name);
  std::string out = v ? v : "";
  ::unsetenv(name);
  return out;
}

// A decimal number and nothing else; nullopt otherwise.
std::optional<unsigned long long> number(const std::string& text) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || text.size() > 19)
    return std::nullopt;
  return std::strtoull(text.c_str(), nullptr, 10);
}

bool names_us(const std::string& pid_text) {
  auto pid = number(pid_text);
  return pid && *pid == static_cast<unsigned long long>(::getpid());
}

std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t colon = text.find(':', start);
    if (colon == std::string::npos) colon = text.size();
    out.push_back(text.substr(start, colon - start));
    start = colon + 1;
  }
  return out;
}

}  // namespace

ManagerEnvironment take_manager_environment() {
  ManagerEnvironment env;
  env.notify_socket = take("NOTIFY_SOCKET");

  const std::string watchdog_usec = take("WATCHDOG_USEC");
  const std::string watchdog_pid = take("WATCHDOG_PID");
  if (!watchdog_usec.empty()) {
    auto usec = number(watchdog_usec);
    if (!usec || *usec == 0)
      env.warnings.push_back("ignoring WATCHDOG_USEC=\"" + watchdog_usec + "\": not a positive number");
    else if (watchdog_pid.empty() || names_us(watchdog_pid))
      env.watchdog = std::chrono::microseconds(*usec);
  }

  const std::string listen_fds = take("LISTEN_FDS");
  const std::string listen_pid = take("LISTEN_PID");
  const std::string listen_names = take("LISTEN_FDNAMES");
  if (listen_fds.empty() || !names_us(listen_pid)) return env;
  auto count = number(listen_fds);
  if (!count || *count > 64) {
    env.warnings.push_back("ignoring LISTEN_FDS=\"" + listen_fds + "\"");
    return env;
  }
  std::vector<std::string> names = split_names(listen_names);
  constexpr int kFirst = 3;  // SD_LISTEN_FDS_START
  for (int i = 0; i < static_cast<int>(*count); ++i) {
    const int fd = kFirst + i;
    // Handed over without close-on-exec by design; ours must not reach the services.
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0 || ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC) != 0) {
      env.warnings.push_back("LISTEN_FDS names fd " + std::to_string(fd) + ", which is not open");
      continue;
    }
    const std::size_t n = static_cast<std::size_t>(i);
    env.listen_fds.push_back({runtime::Fd(fd), n < names.size() && !names[n].empty() ? names[n] : "unknown"});
  }
  return env;
}

}  // namespace tools

namespace tools {

std::string stored_pipe_name(const std::string& service, const char* stream) {
  return "svc." + service + "." + stream;
}

std::string stored_socket_name(const std::string& service, std::size_t index) {
  return "sock." + service + "." + std::to_string(index);
}

std::map<std::string, std::vector<runtime::Fd>> take_stored_sockets(std::vector<ListenFd>& fds,
                                                                    std::vector<std::string>* names) {
  std::map<std::string, std::vector<runtime::Fd>> out;
  for (auto it = fds.begin(); it != fds.end();) {
    const std::string& n = it->name;
    const std::size_t dot = n.rfind('.');
    if (n.rfind("sock.", 0) != 0 || dot <= 5 || dot + 1 >= n.size() ||
        n.find_first_not_of("0123456789", dot + 1) != std::string::npos || n.size() - dot > 3) {
      ++it;
      continue;
    }
    const std::size_t index = std::stoul(n.substr(dot + 1));
    std::vector<runtime::Fd>& set = out[n.substr(5, dot - 5)];
    if (set.size() <= index) set.resize(index + 1);
    set[index] = std::move(it->fd);
    names->push_back(n);
    it = fds.erase(it);
  }
  return out;
}

std::map<std::string, runtime::Fd> take_stored_pipes(std::vector<ListenFd>& fds) {
  std::map<std::string, runtime::Fd> out;
  for (auto it = fds.begin(); it != fds.end();) {
    if (it->name.rfind("svc.", 0) == 0) {
      out[it->name] = std::move(it->fd);
      it = fds.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

AdoptedListeners adopt_listeners(http::Server& server, std::vector<ListenFd>& fds) {
  AdoptedListeners out;
  for (ListenFd& l : fds) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int number = l.fd.get();
    const bool is_unix = ::getsockname(number, reinterpret_cast<sockaddr*>(&ss), &len) == 0 && ss.ss_family == AF_UNIX;
    const std::string what = "fd " + std::to_string(number) + " (" + l.name + ")";
    if (auto r = server.adopt_listener(l.fd.release()); !r) {
      log(Level::warn, "socket activation: ignoring " + what + ": " + r.message());
      continue;
    }
    log(Level::info, "API on " + what + ", from the service manager");
    (is_unix ? out.unix_socket : out.tcp) = true;
  }
  fds.clear();
  return out;
}

}  // namespace tools
