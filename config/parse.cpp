// The whole file: TOML syntax, daemon keys, [http], [[triggers]], then each service.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "config/detail.hpp"
#include "config/service_parse.hpp"
#include "config/validate.hpp"

namespace config {
namespace {

using detail::Reader;
using detail::Sink;

// Pre-scan of every service's primary port (before any service is parsed) so that
// ${services.NAME.port} can be resolved whatever the order of the tables. Malformed values are
// reported later, by that service's own parse.
std::optional<Port> primary_port_of(const toml::node& service) {
  const toml::table* t = service.as_table();
  if (!t) return std::nullopt;
  auto port = [](const toml::node* n) -> std::optional<Port> {
    if (!n) return std::nullopt;
    // as_integer, not value<int64_t>: toml++ 3.3 converts a float such as 5e32 to an
    // integer before checking its range (undefined behaviour, found by fuzzing).
    if (const auto* i = n->as_integer(); i && i->get() >= 1 && i->get() <= 65535)
      return Port{static_cast<std::uint16_t>(i->get()), false, detail::pos_of(*n)};
    if (n->is_string() && n->as_string()->get() == "auto") return Port{0, true, detail::pos_of(*n)};
    return std::nullopt;
  };
  if (const toml::node* p = t->get("port")) return port(p);
  if (const toml::array* ps = t->get_as<toml::array>("ports"); ps && !ps->empty()) return port(ps->get(0));
  return std::nullopt;
}

void parse_daemon(Reader& top, Config& config) {
  if (auto v = top.integer("listen_port", 1, 65535)) config.listen_port = static_cast<std::uint16_t>(*v);
  if (auto v = top.string("listen_address", true)) config.listen_address = *v;
  if (auto v = top.string("data_dir", true)) config.data_dir = *v;
  if (auto v = top.string("secrets_dir", true)) config.secrets_dir = *v;
  if (auto v = top.one_of("log_level", {"debug", "info", "warn", "error"}))
    config.log_level = *v == "debug" ? LogLevel::debug
                       : *v == "warn" ? LogLevel::warn
                       : *v == "error" ? LogLevel::error : LogLevel::info;
}

// The listener's table: [http], or [orchestrator] (the orchestrator design's name for the
// same keys). One of the two per file, so no setting can hide in the other.
void parse_http(Reader& top, Config& config) {
  const toml::node* http = top.find("http");
  const toml::node* orchestrator = top.find("orchestrator");
  if (http && orchestrator) {
    const SourcePos a = detail::pos_of(*http);
    const SourcePos b = detail::pos_of(*orchestrator);
    const bool http_first = a.line < b.line || (a.line == b.line && a.col <= b.col);
    auto at = [&](SourcePos p) {
      return config.source_file + ":" + std::to_string(p.line) + ":" + std::to_string(p.col);
    };
    top.sink().add(http_first ? b : a, "[http] (" + at(a) + ") and [orchestrator] (" + at(b) +
                                           ") both set the listener; keep one of the two");
    return;
  }
  const char* section = orchestrator ? "orchestrator" : "http";
  const toml::node* n = orchestrator ? orchestrator : http;
  if (!n) return;
  if (!n->is_table()) {
    top.type_error(*n, section, "a table");
    return;
  }
  Reader r(*n->as_table(), section, top.sink());
  r.reject_unknown({"allowed_origins", "max_body_bytes", "api_keys_file", "cert", "key", "public_read",
                    "max_connections_per_client", "max_registered_services", "max_follow_streams",
                    "max_public_follow_streams", "drain_timeout"});
  HttpConfig& h = config.http;
  h.section = section;
  if (auto v = r.duration("drain_timeout")) h.drain_timeout = *v;
  if (auto v = r.string_list("allowed_origins", false)) h.allowed_origins = std::move(*v);
  if (auto v = r.size("max_body_bytes", 1)) h.max_body_bytes = *v;
  if (auto v = r.string("api_keys_file")) h.api_keys_file = *v;
  if (auto v = r.string("cert")) h.cert = *v;
  if (auto v = r.string("key")) h.key = *v;
  if (auto v = r.boolean("public_read")) h.public_read = *v;
  if (auto v = r.integer("max_connections_per_client", 0, 1'000'000))
    h.max_connections_per_client = static_cast<std::uint64_t>(*v);
  if (auto v = r.integer("max_registered_services", 0, 1'000'000))
    h.max_registered_services = static_cast<std::uint64_t>(*v);
  if (auto v = r.integer("max_follow_streams", 0, 1'000'000)) h.max_follow_streams = static_cast<std::uint64_t>(*v);
  if (auto v = r.integer("max_public_follow_streams", 0, 1'000'000))
    h.max_public_follow_streams = static_cast<std::uint64_t>(*v);
}

void parse_events(Reader& top, Config& config) {
  const toml::node* n = top.find("events");
  if (!n) return;
  if (!n->is_table()) {
    top.type_error(*n, "events", "a table");
    return;
  }
  Reader r(*n->as_table(), "events", top.sink());
  r.reject_unknown({"max_size", "keep", "max_age"});
  EventsConfig& e = config.events;
  if (auto v = r.size("max_size", 4096)) e.max_size = *v;
  if (auto v = r.integer("keep", 1, 100)) e.keep = static_cast<int>(*v);
  if (auto v = r.duration("max_age")) e.max_age = *v;
}

void parse_triggers(Reader& top, Config& config) {
  const toml::node* n = top.find("triggers");
  if (!n) return;
  if (!n->is_array()) {
    top.type_error(*n, "triggers", "an array of tables ([[triggers]])");
    return;
  }
  std::set<std::string> ids;
  for (const toml::node& item : *n->as_array()) {
    if (!item.is_table()) {
      top.error(item, "triggers", "expected a table ([[triggers]]), got " + std::string(detail::type_name(item)));
      continue;
    }
    const toml::node* id = item.as_table()->get("id");
    if (!id || !id->is_string() || id->as_string()->get().empty()) {
      top.error(id ? *id : item, "triggers", "each [[triggers]] needs a non-empty string \"id\"");
      continue;
    }
    const std::string& text = id->as_string()->get();
    if (!ids.insert(text).second) {
      top.error(*id, "triggers", "duplicate trigger id " + detail::quote(text));
      continue;
    }
    Trigger& t = config.triggers.emplace_back();
    t.id = text;
    t.table = *item.as_table();
    t.pos = detail::pos_of(item);
  }
}

void parse_services(Reader& top, Config& config, const ServiceContext& ctx, std::set<std::string>* failed) {
  const toml::node* n = top.find("services");
  if (!n) return;
  if (!n->is_table()) {
    top.type_error(*n, "services", "a table of [services.NAME] tables");
    return;
  }
  for (auto&& [key, node] : *n->as_table()) {
    std::string name(key.str());
    if (!service_name_valid(name)) {
      SourcePos pos = detail::pos_of(key.source());
      top.sink().add(pos.line ? pos : detail::pos_of(node),
                     "invalid service name " + detail::quote(name) +
                         ": must match [a-z0-9][a-z0-9_.-]{0,62} (it becomes a file name)");
    }
    ServiceSpec spec;
    spec.name = name;
    if (!node.is_table()) {
      top.type_error(node, "services." + name, "a table ([services." + name + "])");
      failed->insert(name);
    } else if (!detail::parse_service_into(name, *node.as_table(), ctx, top.sink(), &spec)) {
      failed->insert(name);
    }
    config.services.push_back(std::move(spec));
  }
}

ParseResult finish(Sink& sink, Config config, const std::set<std::string>& failed) {
  detail::validate_into(config, failed, sink);
  detail::sort_errors(sink.errors, sink.file);
  ParseResult result;
  result.errors = std::move(sink.errors);
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

}  // namespace

ServiceContext ServiceContext::from(const Config& config, const Inputs& in) {
  ServiceContext ctx;
  ctx.source_name = config.source_file;
  ctx.inputs = in;
  for (const ServiceSpec& s : config.services) ctx.ports[s.name] = s.port;
  return ctx;
}

ParseResult parse_string(std::string_view toml_text, const std::string& source_name,
                         const std::string& base_dir, const Inputs& in) {
  Sink sink{source_name, {}};
  toml::table root;
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {  // the parse boundary: the only exception we catch
    SourcePos pos = detail::pos_of(e.source());
    return ParseResult{std::nullopt, {{source_name, pos.line, pos.col, std::string(e.description())}}};
  }
  Config config;
  config.source_file = source_name;
  Reader top(root, "", sink);
  top.reject_unknown(
      {"listen_port", "listen_address", "data_dir", "secrets_dir", "log_level", "http", "orchestrator", "events",
       "triggers", "services"});
  parse_daemon(top, config);
  parse_http(top, config);
  parse_events(top, config);
  parse_triggers(top, config);

  ServiceContext ctx;
  ctx.source_name = source_name;
  ctx.base_dir = base_dir;
  ctx.inputs = in;
  if (const toml::table* services = root.get_as<toml::table>("services"))
    for (auto&& [key, node] : *services) ctx.ports[std::string(key.str())] = primary_port_of(node);
  std::set<std::string> failed;
  parse_services(top, config, ctx, &failed);
  std::sort(config.services.begin(), config.services.end(),
            [](const ServiceSpec& a, const ServiceSpec& b) { return a.name < b.name; });
  detail::interpret_triggers(config, root, in, sink);
  return finish(sink, std::move(config), failed);
}

ParseResult parse_file(const std::string& path, const Inputs& in) {
  std::string error = "no file reader given";
  std::optional<std::string> text = in.read_file ? in.read_file(path, &error) : std::nullopt;
  if (!text) return ParseResult{std::nullopt, {{path, 0, 0, "cannot read config file: " + error}}};
  std::string base_dir = std::filesystem::path(path).parent_path().string();
  return parse_string(*text, path, base_dir.empty() ? "." : base_dir, in);
}

ServiceResult parse_service(std::string_view name, const toml::table& table, const ServiceContext& ctx) {
  Sink sink{ctx.source_name, {}};
  if (!service_name_valid(name))
    sink.add(detail::pos_of(table), "invalid service name " + detail::quote(name) +
                                        ": must match [a-z0-9][a-z0-9_.-]{0,62} (it becomes a file name)");
  ServiceResult result;
  ServiceSpec spec;
  if (detail::parse_service_into(name, table, ctx, sink, &spec)) result.service = std::move(spec);
  detail::sort_errors(sink.errors, sink.file);
  result.errors = std::move(sink.errors);
  if (!result.errors.empty()) result.service.reset();
  return result;
}

ServiceResult parse_service_string(std::string_view toml_text, const ServiceContext& ctx) {
  toml::table root;
  try {
    root = toml::parse(toml_text, ctx.source_name);
  } catch (const toml::parse_error& e) {
    SourcePos pos = detail::pos_of(e.source());
    return ServiceResult{std::nullopt, {{ctx.source_name, pos.line, pos.col, std::string(e.description())}}};
  }
  const toml::table* services = root.get_as<toml::table>("services");
  if (root.size() != 1 || !services || services->size() != 1 || !services->begin()->second.is_table())
    return ServiceResult{std::nullopt,
                         {{ctx.source_name, 1, 1, "expected exactly one [services.NAME] table and nothing else"}}};
  ServiceContext local = ctx;
  // TRICKY: toml++ iterators hand out a proxy that lives inside the iterator; keep it alive.
  auto first = services->begin();
  auto&& [key, node] = *first;
  if (!local.ports.count(key.str())) local.ports[std::string(key.str())] = primary_port_of(node);
  return parse_service(key.str(), *node.as_table(), local);
}

}  // namespace config
