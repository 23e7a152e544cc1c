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

  // A fixed port belongs to the claim that comes first in the file.
  struct Claim {
    std::uint16_t number;
    const ServiceSpec* service;
    SourcePos pos;
  };
  std::vector<Claim> claims;
  for (const ServiceSpec& s : config.services)
    for (const Port& p : s.ports)
      if (!p.automatic) claims.push_back({p.number, &s, p.pos});
  std::stable_sort(claims.begin(), claims.end(), [](const Claim& a, const Claim& b) {
    return a.pos.line != b.pos.line ? a.pos.line < b.pos.line : a.pos.col < b.pos.col;
  });
  std::map<std::uint16_t, const ServiceSpec*> owner;
  for (const Claim& c : claims) {
    std::string prefix = "services." + c.service->name + ": port " + std::to_string(c.number);
    if (c.number == config.listen_port) {
      sink.add(c.pos, prefix + " is the daemon's listen_port");
      continue;
    }
    auto [it, fresh] = owner.emplace(c.number, c.service);
    if (!fresh) sink.add(c.pos, prefix + " is already claimed by service " + quote(it->second->name));
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
