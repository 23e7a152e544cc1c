// The rest of a service table: health check, readiness, container settings.
#include "config/service_parse.hpp"

namespace config::detail {
namespace {

// "1234", "$PORT" or "${PORT}" (0: the service's own port at start time).
std::optional<std::uint16_t> port_text(std::string_view text) {
  if (text == "$PORT" || text == "${PORT}") return std::uint16_t{0};
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v < 1 || v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

// "host:port" or "[v6]:port".
bool split_host_port(std::string_view text, std::string* host, std::string_view* port) {
  std::size_t colon;
  if (!text.empty() && text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    *host = std::string(text.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string_view::npos) return false;
    *host = std::string(text.substr(0, colon));
  }
  *port = text.substr(colon + 1);
  return !host->empty();
}

// Returns the reason when the URL is not http://host[:port][/path].
std::optional<std::string> parse_http_url(std::string_view url, HealthCheck* h) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    if (url.find("://") != std::string_view::npos)
      return "only http:// URLs are supported, got " + quote(url);
    return "expected a URL such as \"http://127.0.0.1:8080/healthz\", got " + quote(url);
  }
  std::string_view rest = url.substr(kScheme.size());
  std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  h->path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  std::string_view port = "80";
  bool has_port = authority.find(':') != std::string_view::npos &&
                  (authority.front() != '[' || authority.find("]:") != std::string_view::npos);
  if (has_port) {
    if (!split_host_port(authority, &h->host, &port)) return "invalid host in URL " + quote(url);
  } else {
    h->host = std::string(authority.front() == '[' ? authority.substr(1, authority.size() - 2) : authority);
  }
  if (h->host.empty()) return "missing host in URL " + quote(url);
  auto p = port_text(port);
  if (!p) return "invalid port " + quote(port) + " in URL " + quote(url);
  h->port = *p;
  h->url = std::string(url);
  return std::nullopt;
}

}  // namespace

void ServiceParser::health() {
  const toml::node* n = r_.find("health");
  if (!n) return;
  if (!n->is_table()) {
    r_.type_error(*n, "health", "a table");
    return;
  }
  Reader hr(*n->as_table(), r_.path() + ".health", r_.sink());
  hr.reject_unknown({"exec", "http", "tcp", "interval", "timeout", "retries", "start_period",
                     "restart_on_unhealthy"});
  HealthCheck h;
  std::size_t before = r_.sink().errors.size();
  const toml::node* kind_node = nullptr;
  for (std::string_view kind : {"exec", "http", "tcp"}) {
    const toml::node* k = hr.find(kind);
    if (!k) continue;
    if (kind_node) {
      hr.error(*k, kind, "a health check takes exactly one of \"exec\", \"http\", \"tcp\"");
      continue;
    }
    kind_node = k;
    std::string key = "health." + std::string(kind);
    if (kind == "exec") {
      h.kind = HealthCheck::Kind::exec;
      if (auto argv = command_of(*k, key)) h.exec = std::move(*argv);
    } else if (kind == "http") {
      h.kind = HealthCheck::Kind::http;
      if (!k->is_string()) {
        r_.type_error(*k, key, "a URL string");
      } else if (auto url = subst(*k, key, k->as_string()->get())) {
        if (auto why = parse_http_url(*url, &h)) r_.error(*k, key, *why);
      }
    } else {
      h.kind = HealthCheck::Kind::tcp;
      h.host = "127.0.0.1";
      if (k->is_integer()) {
        std::int64_t v = k->as_integer()->get();
        if (v < 1 || v > 65535) r_.error(*k, key, "expected a port between 1 and 65535, got " + std::to_string(v));
        else h.port = static_cast<std::uint16_t>(v);
      } else if (!k->is_string()) {
        r_.type_error(*k, key, "\"host:port\" or a port number");
      } else if (auto text = subst(*k, key, k->as_string()->get())) {
        std::string_view port;
        std::optional<std::uint16_t> p;
        if (!split_host_port(*text, &h.host, &port) || !(p = port_text(port)))
          r_.error(*k, key, "expected \"host:port\" or a port number, got " + quote(*text));
        else h.port = *p;
      }
    }
  }
  if (!kind_node) hr.sink().add(*n, "[" + hr.path() + "]: expected one of \"exec\", \"http\", \"tcp\"");
  if (auto d = hr.duration("interval")) h.interval = *d;
  if (auto d = hr.duration("timeout")) h.timeout = *d;
  if (auto d = hr.duration("start_period")) h.start_period = *d;
  if (auto v = hr.integer("retries", 1, 1000)) h.retries = static_cast<int>(*v);
  if (auto v = hr.boolean("restart_on_unhealthy")) h.restart_on_unhealthy = *v;
  if (kind_node && h.kind != HealthCheck::Kind::exec && h.port == 0 && r_.sink().errors.size() == before &&
      !spec_.port && spec_.first_tcp_socket_port() == 0)
    r_.error(*kind_node, "health", "uses $PORT but the service declares no port");
  if (r_.sink().errors.size() == before) spec_.health = std::move(h);
}

void ServiceParser::ready() {
  const toml::node* n = r_.find("ready");
  if (!n) return;
  std::string_view expected = "\"exec\", \"notify\" or \"fd:N\" (N >= 3)";
  if (!n->is_string()) {
    r_.type_error(*n, "ready", expected);
    return;
  }
  const std::string& v = n->as_string()->get();
  if (v == "exec") {
    spec_.ready = ReadyMode::exec;
  } else if (v == "notify") {
    spec_.ready = ReadyMode::notify;
  } else if (v.rfind("fd:", 0) == 0 && v.size() > 3 && v.size() <= 7 &&
             v.find_first_not_of("0123456789", 3) == std::string::npos && std::stoi(v.substr(3)) >= 3) {
    spec_.ready = ReadyMode::fd;
    spec_.ready_fd = std::stoi(v.substr(3));
  } else {
    r_.error(*n, "ready", "expected " + std::string(expected) + ", got " + quote(v));
  }
}

void ServiceParser::misc() {
  if (auto v = r_.string("image", true)) spec_.image = std::move(*v);
  if (const toml::node* n = r_.find("docker_args")) {
    if (n->is_string()) {  // one string is split like a command line
      std::string why;
      if (auto words = split_command(n->as_string()->get(), &why)) spec_.docker_args = std::move(*words);
      else r_.error(*n, "docker_args", why);
    } else if (auto list = r_.string_list("docker_args", false)) {
      spec_.docker_args = std::move(*list);
    }
  }
  if (auto list = r_.string_list("volumes", true)) spec_.volumes = std::move(*list);
  if (auto v = r_.string("network")) spec_.network = std::move(*v);
  if (auto v = r_.string("docker_cli")) spec_.docker_cli = std::move(*v);
}

}  // namespace config::detail
