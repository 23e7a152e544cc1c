// Cross-service checks: dependencies, port claims, cycles.
#include "config/validate.hpp"

#include <algorithm>

#include "config/graph.hpp"

namespace config::detail {

void validate_into(const Config& config, const std::set<std::string>& failed, Sink& sink) {
  std::set<std::string_view> known;
  for (const ServiceSpec& s : config.services) known.insert(s.name);
  std::vector<std::string_view> names(known.begin(), known.end());
  for (const ServiceSpec& s : config.services) {
    std::string key = "services." + s.name + ".depends_on";
    for (const Dependency& d : s.depends_on) {
      if (!known.count(d.name)) {
        std::string message = key + ": unknown service " + quote(d.name);
        if (auto hint = did_you_mean(d.name, names)) message += "; did you mean " + quote(*hint) + "?";
        sink.add(d.pos, std::move(message));
        continue;
      }
      const ServiceSpec* target = config.find(d.name);
      if (d.condition == DependencyCondition::healthy && target && !target->health &&
          !failed.count(target->name))
        sink.add(d.pos, key + ": " + quote(d.name) +
                            " has no health check; condition \"healthy\" needs a [services." + d.name +
                            ".health] table");
    }
  }

  // A fixed port (or a socket's port, or unix path) belongs to the claim that comes first in
  // the file. `ports` and TCP sockets share one space; UDP sockets have their own.
  struct Claim {
    std::string key;  // "tcp:8080", "udp:53", "unix:/run/a.sock"
    std::string what;  // "port 8080", "udp port 53", "unix socket /run/a.sock"
    const ServiceSpec* service;
    SourcePos pos;
    std::string where;  // "" or ".sockets[1]"
    bool is_listen_port;
  };
  std::vector<Claim> claims;
  for (const ServiceSpec& s : config.services) {
    for (const Port& p : s.ports)
      if (!p.automatic)
        claims.push_back({"tcp:" + std::to_string(p.number), "port " + std::to_string(p.number), &s, p.pos, "",
                          p.number == config.listen_port});
    for (std::size_t i = 0; i < s.sockets.size(); ++i) {
      const Socket& k = s.sockets[i];
      std::string where = ".sockets[" + std::to_string(i) + "]";
      if (k.family == Socket::Family::unix_path)
        claims.push_back({"unix:" + k.path, "unix socket " + k.path, &s, k.pos, where, false});
      else if (k.tcp())
        claims.push_back({"tcp:" + std::to_string(k.port), "port " + std::to_string(k.port), &s, k.pos, where,
                          k.port == config.listen_port});
      else
        claims.push_back({"udp:" + std::to_string(k.port), "udp port " + std::to_string(k.port), &s, k.pos, where,
                          false});
    }
  }
  std::stable_sort(claims.begin(), claims.end(), [](const Claim& a, const Claim& b) {
    return a.pos.line != b.pos.line ? a.pos.line < b.pos.line : a.pos.col < b.pos.col;
  });
  std::map<std::string, const ServiceSpec*> owner;
  for (const Claim& c : claims) {
    std::string prefix = "services." + c.service->name + c.where + ": " + c.what;
    if (c.is_listen_port) {
      sink.add(c.pos, prefix + " is the daemon's listen_port");
      continue;
    }
    auto [it, fresh] = owner.emplace(c.key, c.service);
    // One service may bind one port on several addresses (its own sockets).
    if (!fresh && it->second != c.service)
      sink.add(c.pos, prefix + " is already claimed by service " + quote(it->second->name));
  }

  DependencyGraph graph(config.services);
  if (const auto& cycle = graph.cycle_error()) {
    Error e = *cycle;
    e.file = sink.file;
    sink.errors.push_back(std::move(e));
  }
}

}  // namespace config::detail

namespace config {

std::vector<Error> validate_services(const Config& config) {
  detail::Sink sink{config.source_file, {}};
  detail::validate_into(config, {}, sink);
  detail::sort_errors(sink.errors, sink.file);
  return std::move(sink.errors);
}

}  // namespace config
