// A service's `sockets` array → ServiceSpec::sockets, with the checks that need only the
// service itself (cross-service port and path claims are in validate.cpp).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <sstream>

#include "config/detail.hpp"
#include "config/service_parse.hpp"

namespace config {

bool socket_name_valid(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-' || c == '@' || c == '+';
  });
}

std::string Socket::describe() const {
  if (family == Family::unix_path) return (type == Type::stream ? "unix " : "unix-dgram ") + path;
  std::string host = ipv6 ? "[" + address + "]" : address;
  return (type == Type::stream ? "tcp " : "udp ") + host + ":" + std::to_string(port);
}

std::string Socket::fingerprint() const {
  std::ostringstream out;
  out << describe() << '|' << name.size() << ':' << name << '|' << backlog << '|' << reuse_port << '|' << mode << '|'
      << user.size() << ':' << user << '|' << group.size() << ':' << group;
  return out.str();
}

std::uint16_t ServiceSpec::first_tcp_socket_port() const {
  for (const Socket& s : sockets)
    if (s.tcp()) return s.port;
  return 0;
}

}  // namespace config

namespace config::detail {

namespace {

constexpr std::string_view kListenForms =
    "\"HOST:PORT\" (an IP address: \"0.0.0.0:8080\", \"[::1]:8080\") or an absolute unix socket path";

// The name a socket gets without `name`: its kind and port, or its file's name.
std::string derived_name(const Socket& s) {
  if (s.family == Socket::Family::inet) return (s.type == Socket::Type::stream ? "tcp-" : "udp-") + std::to_string(s.port);
  std::string base = s.path.substr(s.path.rfind('/') + 1);
  for (char& c : base)
    if (!socket_name_valid(std::string_view(&c, 1))) c = '_';
  return base.empty() ? "unix" : base.substr(0, 255);
}

// "0.0.0.0:8080", "[::]:8080" → address and port; false with *why on anything else.
bool parse_inet(const std::string& text, Socket& s, std::string* why) {
  std::string host;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      *why = "expected \"[IPV6]:PORT\", got " + quote(text);
      return false;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    s.ipv6 = true;
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string::npos) {
      *why = "expected " + std::string(kListenForms) + ", got " + quote(text);
      return false;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      *why = "an IPv6 address needs brackets: \"[" + host + "]:" + port + "\"";
      return false;
    }
  }
  unsigned char buf[sizeof(in6_addr)];
  if (::inet_pton(s.ipv6 ? AF_INET6 : AF_INET, host.c_str(), buf) != 1) {
    *why = quote(host) + " is not an IP" + (s.ipv6 ? "v6" : "v4") +
           " address (host names are not resolved; use e.g. \"127.0.0.1\" or \"0.0.0.0\")";
    return false;
  }
  const bool digits = !port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos;
  const long number = digits ? std::stol(port) : 0;
  if (number < 1 || number > 65535) {
    *why = "expected a port between 1 and 65535, got " + quote(port);
    return false;
  }
  s.address = host;
  s.port = static_cast<std::uint16_t>(number);
  return true;
}

}  // namespace

std::optional<Socket> ServiceParser::socket_of(const toml::table& t, std::size_t index) {
  const std::string path = r_.path() + ".sockets[" + std::to_string(index) + "]";
  Reader sr(t, path, r_.sink());
  const std::size_t before = r_.sink().errors.size();
  sr.reject_unknown({"listen", "type", "name", "backlog", "reuse_port", "mode", "user", "group"});
  Socket s;
  s.pos = pos_of(t);
  const toml::node* listen = sr.find("listen");
  if (!listen) {
    sr.sink().add(s.pos, path + ": missing required key \"listen\" (" + std::string(kListenForms) + ")");
    return std::nullopt;
  }
  if (auto v = sr.string("listen", true)) {
    if (auto text = subst(*listen, "sockets[" + std::to_string(index) + "].listen", *v)) {
      s.listen = *text;
      std::string why;
      if (!s.listen.empty() && s.listen.front() == '/') {
        s.family = Socket::Family::unix_path;
        s.path = s.listen;
        if (s.path.size() >= sizeof(sockaddr_un::sun_path)) sr.error(*listen, "listen", "a unix socket path is at most 107 bytes");
      } else if (s.listen.find('/') != std::string::npos && s.listen.find(':') == std::string::npos) {
        sr.error(*listen, "listen", "a unix socket path must be absolute, got " + quote(s.listen));
      } else if (!parse_inet(s.listen, s, &why)) {
        sr.error(*listen, "listen", why);
      }
    }
  }
  if (auto v = sr.one_of("type", {"stream", "datagram"})) s.type = *v == "datagram" ? Socket::Type::datagram : Socket::Type::stream;
  const bool unix_path = s.family == Socket::Family::unix_path;
  if (auto v = sr.string("name")) {
    if (socket_name_valid(*v)) s.name = *v;
    else sr.error(*sr.find("name"), "name", quote(*v) + " is not a valid LISTEN_FDNAMES name: 1-255 of A-Z a-z 0-9 . _ - @ +");
  }
  if (const toml::node* n = sr.find("backlog")) {
    if (s.type == Socket::Type::datagram) sr.error(*n, "backlog", "only for stream sockets");
    else if (auto v = sr.integer("backlog", 1, 65535)) s.backlog = static_cast<int>(*v);
  }
  if (const toml::node* n = sr.find("reuse_port")) {
    if (unix_path) sr.error(*n, "reuse_port", "only for TCP and UDP sockets");
    else if (auto v = sr.boolean("reuse_port")) s.reuse_port = *v;
  }
  for (std::string_view key : {"mode", "user", "group"}) {
    const toml::node* n = sr.find(key);
    if (n && !unix_path) sr.error(*n, key, "only for unix socket paths");
  }
  if (unix_path) {
    if (const toml::node* n = sr.find("mode")) {
      const std::string text = n->is_string()    ? n->as_string()->get()
                               : n->is_integer() ? std::string()
                                                 : std::string("?");
      std::int64_t mode = -1;
      if (n->is_integer()) mode = n->as_integer()->get();
      else if (!text.empty() && text.size() <= 4 && text.find_first_not_of("01234567") == std::string::npos)
        mode = std::stol(text, nullptr, 8);
      if (mode < 0 || mode > 0777)
        sr.error(*n, "mode", "expected an octal file mode such as \"0660\" (at most \"0777\")");
      else s.mode = static_cast<std::uint32_t>(mode);
    }
    if (auto v = sr.string("user", true)) s.user = *v;
    if (auto v = sr.string("group", true)) s.group = *v;
  }
  if (r_.sink().errors.size() != before) return std::nullopt;
  if (s.name.empty()) s.name = derived_name(s);
  return s;
}

void ServiceParser::sockets() {
  const toml::node* n = r_.find("sockets");
  if (!n) return;
  if (!n->is_array()) {
    r_.type_error(*n, "sockets", "an array of tables ({ listen = \"0.0.0.0:8080\" })");
    return;
  }
  if (r_.find("image")) {
    r_.error(*n, "sockets",
             "not for a container service: the daemon passes sockets to native processes only; publish the "
             "container's port with docker_args (e.g. \"-p 8080:8080\")");
    return;
  }
  const toml::array& items = *n->as_array();
  if (items.size() > Socket::kMaxPerService) {
    r_.error(*n, "sockets", "at most " + std::to_string(Socket::kMaxPerService) + " sockets per service");
    return;
  }
  for (std::size_t i = 0; i < items.size(); ++i) {
    const toml::node& item = *items.get(i);
    if (!item.is_table()) {
      r_.error(item, "sockets", "expected a table ({ listen = \"0.0.0.0:8080\" }), got " + std::string(type_name(item)));
      continue;
    }
    std::optional<Socket> s = socket_of(*item.as_table(), i);
    if (!s) continue;
    const std::string key = "sockets[" + std::to_string(i) + "]";
    bool clash = false;
    for (std::size_t j = 0; j < spec_.sockets.size() && !clash; ++j) {
      const Socket& o = spec_.sockets[j];
      if (o.describe() == s->describe()) {
        r_.error(item, key, s->describe() + " is listed twice");
        clash = true;
      } else if (o.name == s->name) {
        r_.error(item, key, "name " + quote(s->name) + " is already used by " + o.describe() +
                                 "; give each socket a distinct `name`");
        clash = true;
      }
    }
    // The daemon binds this port; the service binding it too (`port`/`ports`) could only fail.
    if (!clash && s->tcp() && spec_.port)
      for (const Port& p : spec_.ports)
        if (!p.automatic && p.number == s->port && !clash) {
          r_.error(item, key, "port " + std::to_string(p.number) +
                                   " is also in `port`/`ports`, which the service binds itself; a socket's port is "
                                   "bound by the daemon (and is $PORT when there is no `port`): drop it there");
          clash = true;
        }
    if (!clash) spec_.sockets.push_back(std::move(*s));
  }
}

// After ready(): the sockets take fds 3, 4, ...; a readiness pipe on one of them would
// replace a socket.
void ServiceParser::socket_fds_clash() {
  const int last = 2 + static_cast<int>(spec_.sockets.size());
  if (spec_.ready != ReadyMode::fd || spec_.sockets.empty() || spec_.ready_fd > last) return;
  if (const toml::node* ready = r_.find("ready"))
    r_.error(*ready, "ready", "fd:" + std::to_string(spec_.ready_fd) + " is one of the sockets' fds (3-" +
                                  std::to_string(last) + "); use fd:" + std::to_string(last + 1) + " or above");
}

// Both keys only mean something for a service whose sockets the daemon holds: an overlapping
// instance can share them (a second bind of the same port would fail), and a lazy start needs
// something to wait on.
void ServiceParser::socket_modes() {
  if (auto v = r_.one_of("restart_mode", {"stop-first", "overlap"})) {
    if (*v == "overlap") {
      const toml::node& n = *r_.find("restart_mode");
      if (spec_.sockets.empty())
        r_.error(n, "restart_mode",
                 "\"overlap\" needs `sockets`: the new instance must take over the same listening sockets while "
                 "the old one still runs");
      else if (spec_.ready != ReadyMode::notify)
        r_.error(n, "restart_mode",
                 "\"overlap\" needs ready = \"notify\": the old instance is stopped only once the new one sends "
                 "READY=1");
      spec_.restart_mode = RestartMode::overlap;
    }
  }
  if (auto v = r_.one_of("start_on", {"boot", "connection"})) {
    if (*v == "connection") {
      const toml::node& n = *r_.find("start_on");
      if (spec_.sockets.empty())
        r_.error(n, "start_on",
                 "\"connection\" needs `sockets`: the daemon starts the service when one of them becomes readable");
      spec_.start_on = StartOn::connection;
    }
  }
}

}  // namespace config::detail
