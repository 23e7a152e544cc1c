#include "actors/service_env.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "runtime/fd.hpp"
#include "runtime/user_db.hpp"

namespace actors {

runtime::Environment forwarded_environment(const runtime::Environment& daemon) {
  runtime::Environment env;
  for (const char* name : {"LANG", "LC_ALL", "TZ"})
    if (auto it = daemon.find(name); it != daemon.end()) env.insert(*it);
  return env;
}

runtime::Environment base_environment(const runtime::Environment& forwarded, uid_t uid) {
  runtime::Environment env = forwarded;
  env["PATH"] = kDefaultPath;
  std::optional<runtime::UserEntry> pw = runtime::find_user(uid);
  std::string home = pw ? std::move(pw->home) : std::string();
  if (home.empty()) home.push_back('/');
  env.insert_or_assign("HOME", std::move(home));
  if (pw) {
    env.insert_or_assign("USER", pw->name);
    env.insert_or_assign("LOGNAME", std::move(pw->name));
    if (!pw->shell.empty()) env.insert_or_assign("SHELL", std::move(pw->shell));
  }
  return env;
}

std::string default_job_user() {
  if (::geteuid() != 0) return {};
  return runtime::find_user("nobody") ? "nobody" : "";
}

std::string substitute_service_refs(
    std::string text, std::uint16_t port,
    const std::function<std::optional<std::uint16_t>(const std::string&)>& port_of) {
  auto replace_all = [&](const std::string& from, const std::string& to) {
    for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
      text.replace(at, from.size(), to);
  };
  if (port != 0) {
    replace_all("${PORT}", std::to_string(port));
    // Bare $PORT only where a name cannot continue ($PORTS stays as written).
    for (std::size_t at = text.find("$PORT"); at != std::string::npos; at = text.find("$PORT", at + 1)) {
      const std::size_t end = at + 5;
      if (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_')) continue;
      text.replace(at, 5, std::to_string(port));
    }
  }
  const std::string prefix = "${services.";
  for (std::size_t at = text.find(prefix); at != std::string::npos;) {
    const std::size_t close = text.find('}', at);
    if (close == std::string::npos) break;
    std::string inner = text.substr(at + prefix.size(), close - at - prefix.size());
    const std::string suffix = ".port";
    if (inner.size() > suffix.size() && inner.compare(inner.size() - suffix.size(), suffix.size(), suffix) == 0 && port_of) {
      if (auto p = port_of(inner.substr(0, inner.size() - suffix.size()))) {
        const std::string value = std::to_string(*p);
        text.replace(at, close + 1 - at, value);
        at = text.find(prefix, at + value.size());
        continue;
      }
    }
    at = text.find(prefix, close);
  }
  return text;
}

namespace {
// Binding tells whether the port is free right now, on every address (what a
// service listening on 0.0.0.0 needs). SO_REUSEADDR: a port in TIME_WAIT after the
// service's own previous run is free for it.
int probe_bind(std::uint16_t port) {
  runtime::Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return errno;
  int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return errno;
  return 0;
}

std::optional<std::uint16_t> pick_free_port() {
  runtime::Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return std::nullopt;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return std::nullopt;
  socklen_t len = sizeof a;
  if (::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) return std::nullopt;
  return ntohs(a.sin_port);
}
}  // namespace

std::optional<std::vector<std::uint16_t>> resolve_ports(const config::ServiceSpec& spec,
                                                        std::string* error) {
  std::vector<config::Port> wanted;
  if (spec.port) wanted.push_back(*spec.port);
  for (const auto& p : spec.ports)
    if (!spec.port || p.automatic != spec.port->automatic || p.number != spec.port->number) wanted.push_back(p);
  std::vector<std::uint16_t> out;
  for (const auto& p : wanted) {
    if (p.automatic) {
      auto picked = pick_free_port();
      if (!picked) {
        *error = std::string("no free port for \"auto\": ") + std::strerror(errno);
        return std::nullopt;
      }
      out.push_back(*picked);
      continue;
    }
    if (int err = probe_bind(p.number); err != 0) {
      *error = "port " + std::to_string(p.number) + " is not available: " + std::strerror(err) +
               (err == EADDRINUSE ? " (another process is listening on it)" : "");
      return std::nullopt;
    }
    out.push_back(p.number);
  }
  return out;
}

bool apply_identity(const std::string& user, const std::string& group, runtime::SpawnOptions& o,
                    std::string* error) {
  if (user.empty() && group.empty()) return true;
  auto numeric = [](const std::string& s) {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos && s.size() <= 9;
  };
  if (!user.empty()) {
    if (auto pw = runtime::find_user(user)) {
      o.uid = pw->uid;
      o.gid = pw->gid;
      o.groups = runtime::user_groups(user, pw->gid);
    } else if (numeric(user)) {
      o.uid = static_cast<uid_t>(std::stoul(user));
      o.gid = o.gid.value_or(static_cast<gid_t>(*o.uid));
    } else {
      *error = "user \"" + user + "\" not found";
      return false;
    }
  }
  if (!group.empty()) {
    if (auto gid = runtime::find_group(group)) o.gid = *gid;
    else if (numeric(group)) o.gid = static_cast<gid_t>(std::stoul(group));
    else {
      *error = "group \"" + group + "\" not found";
      return false;
    }
    if (user.empty()) o.groups = {*o.gid};
  }
  return true;
}

}  // namespace actors
