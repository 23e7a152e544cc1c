// A request body → ServiceSpec. A JSON body becomes a TOML table, printed as a
// [services.NAME] document and parsed by config::parse_service_string: registration
// runs exactly the config file's validation with its messages, and the text that is
// persisted is the text that was validated.
#include <cctype>
#include <regex>
#include <sstream>

#include "http/api/handlers.hpp"
#include "http/json_limits.hpp"

namespace http::api {

using nlohmann::json;

namespace {

constexpr std::string_view kSource = "request";

// JSON → TOML. null means "not set" and is dropped; a JSON document has no other
// value TOML cannot hold (TOML has no null). The recursion is bounded by
// parse_json_body, which refuses a body nested deeper than kMaxJsonDepth.
void put(toml::table& t, const std::string& key, const json& v);

void push(toml::array& a, const json& v) {
  if (v.is_string()) a.push_back(v.get<std::string>());
  else if (v.is_boolean()) a.push_back(v.get<bool>());
  else if (v.is_number_integer()) a.push_back(v.get<std::int64_t>());
  else if (v.is_number()) a.push_back(v.get<double>());
  else if (v.is_array()) {
    toml::array inner;
    for (const auto& x : v) push(inner, x);
    a.push_back(std::move(inner));
  } else if (v.is_object()) {
    toml::table inner;
    for (const auto& [k, x] : v.items()) put(inner, k, x);
    a.push_back(std::move(inner));
  }
}

void put(toml::table& t, const std::string& key, const json& v) {
  if (v.is_string()) t.insert_or_assign(key, v.get<std::string>());
  else if (v.is_boolean()) t.insert_or_assign(key, v.get<bool>());
  // An unsigned too big for int64 falls through to the double branch instead of truncating.
  else if (v.is_number_integer() &&
           !(v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)))
    t.insert_or_assign(key, v.get<std::int64_t>());
  else if (v.is_number()) t.insert_or_assign(key, v.get<double>());
  else if (v.is_array()) {
    toml::array a;
    for (const auto& x : v) push(a, x);
    t.insert_or_assign(key, std::move(a));
  } else if (v.is_object()) {
    toml::table inner;
    for (const auto& [k, x] : v.items()) put(inner, k, x);
    t.insert_or_assign(key, std::move(inner));
  }
}

Response invalid(json detail) { return Response::error(422, "invalid service spec", std::move(detail)); }

json one_problem(const std::string& field, const std::string& message) {
  json d = json::array();
  json e = json::object();
  e["field"] = field;
  e["message"] = message;
  e["text"] = std::string(kSource) + ": " + (field.empty() ? "" : field + ": ") + message;
  d.push_back(std::move(e));
  return d;
}

std::string media_type(const Request& req) {
  std::string ct(req.headers.get("Content-Type").value_or(""));
  ct = ct.substr(0, ct.find(';'));
  std::string out;
  for (char c : ct)
    if (!std::isspace(static_cast<unsigned char>(c))) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string field_of(std::string_view m) {
  // "services.NAME.key.sub: message" (the parser's Reader paths).
  if (m.rfind("services.", 0) == 0) {
    const auto colon = m.find(": ");
    std::string_view path = m.substr(0, colon == std::string_view::npos ? m.size() : colon);
    path.remove_prefix(9);
    const auto dot = path.find('.');
    if (dot == std::string_view::npos) return "";
    return std::string(path.substr(dot + 1));
  }
  // "unknown key \"k\" in [services.NAME(.sub)]".
  if (m.rfind("unknown key \"", 0) == 0) {
    const auto end = m.find('"', 13);
    if (end == std::string_view::npos) return "";
    std::string key(m.substr(13, end - 13));
    const auto in = m.find(" in [services.", end);
    if (in == std::string_view::npos) return key;
    std::string_view table = m.substr(in + 14);
    table = table.substr(0, table.find(']'));
    const auto dot = table.find('.');
    return dot == std::string_view::npos ? key : std::string(table.substr(dot + 1)) + "." + key;
  }
  // "[services.NAME.health]: ...".
  if (m.rfind("[services.", 0) == 0) {
    std::string_view table = m.substr(10, m.find(']') - 10);
    const auto dot = table.find('.');
    return dot == std::string_view::npos ? "" : std::string(table.substr(dot + 1));
  }
  return "";
}

json spec_error_detail(const std::vector<config::Error>& errors) {
  json d = json::array();
  for (const auto& e : errors) {
    json x = json::object();
    x["field"] = field_of(e.message);
    x["message"] = e.message;
    x["text"] = e.to_string();
    d.push_back(std::move(x));
  }
  return d;
}

json spec_error_detail(const std::vector<std::string>& texts) {
  // "file:line:col: message" or "file: message", as config::Error::to_string makes them.
  static const std::regex located(R"(^[^:]*:(\d+:\d+: )?(.*)$)");
  json d = json::array();
  for (const auto& t : texts) {
    std::smatch m;
    std::string message = std::regex_match(t, m, located) ? m[2].str() : t;
    json x = json::object();
    x["field"] = field_of(message);
    x["message"] = message;
    x["text"] = t;
    d.push_back(std::move(x));
  }
  return d;
}

std::optional<Response> parse_json_body(const std::string& text, json* out) {
  if (!json_depth_within(text)) {
    json detail = json::object();
    detail["limit"] = kMaxJsonDepth;
    detail["message"] = "arrays and objects nest deeper than the limit";
    return Response::error(400, "bad JSON", detail);
  }
  try {
    *out = json::parse(text);
    return std::nullopt;
  } catch (const json::parse_error& e) {
    json detail = json::object();
    detail["position"] = e.byte;
    detail["message"] = e.what();
    return Response::error(400, "bad JSON", detail);
  } catch (const json::exception& e) {
    // Well-formed but not representable, e.g. a number that overflows a double
    // (found by fuzzing: it escaped as a 500 before).
    json detail = json::object();
    detail["message"] = e.what();
    return Response::error(400, "bad JSON", detail);
  }
}

ParsedSpec parse_spec_body(const Request& req, const actors::Supervisor& sup, const std::string& url_name) {
  return parse_spec_body(req, sup.service_context(), url_name);
}

ParsedSpec parse_spec_body(const Request& req, config::ServiceContext ctx, const std::string& url_name) {
  ParsedSpec out;
  const std::string type = media_type(req);
  ctx.source_name = std::string(kSource);
  if (type == "application/json") {
    json body;
    if (auto bad = parse_json_body(req.body, &body)) {
      out.error = std::move(*bad);
      return out;
    }
    if (!body.is_object()) {
      out.error = invalid(one_problem("", "expected a JSON object with the service's settings"));
      return out;
    }
    std::string name = url_name;
    if (auto it = body.find("name"); it != body.end() && !it->is_null()) {
      if (!it->is_string()) {
        out.error = invalid(one_problem("name", "expected a string"));
        return out;
      }
      if (!url_name.empty() && it->get<std::string>() != url_name) {
        // Appended piecewise: GCC 12 -O3 sees a false -Wrestrict overlap in a + chain here.
        std::string why = "\"";
        why += it->get<std::string>();
        why += "\" does not match the URL's \"";
        why += url_name;
        why += '"';
        out.error = invalid(one_problem("name", why));
        return out;
      }
      name = it->get<std::string>();
    }
    if (name.empty()) {
      out.error = invalid(one_problem("name", "missing: every service needs a name"));
      return out;
    }
    body.erase("name");
    toml::table service;
    for (const auto& [k, v] : body.items()) put(service, k, v);
    toml::table services;
    services.insert_or_assign(name, std::move(service));
    toml::table root;
    root.insert_or_assign("services", std::move(services));
    std::ostringstream text;
    text << toml::toml_formatter(root) << '\n';
    out.toml_text = text.str();
  } else if (type == "application/toml") {
    out.toml_text = req.body;
    try {
      (void)toml::parse(out.toml_text, std::string(kSource));
    } catch (const toml::parse_error& e) {
      json detail = json::object();
      detail["line"] = e.source().begin.line;
      detail["column"] = e.source().begin.column;
      detail["message"] = std::string(e.description());
      out.error = Response::error(400, "bad TOML", detail);
      return out;
    }
  } else {
    json detail = json::object();
    detail["content_type"] = type;
    detail["accepted"] = json::array({"application/json", "application/toml"});
    out.error = Response::error(415, "unsupported content type", detail);
    return out;
  }
  config::ServiceResult r = config::parse_service_string(out.toml_text, ctx);
  if (!r.ok()) {
    out.error = invalid(spec_error_detail(r.errors));
    return out;
  }
  if (!url_name.empty() && r.service->name != url_name) {
    out.error = invalid(one_problem("name", "\"" + r.service->name + "\" does not match the URL's \"" + url_name + "\""));
    return out;
  }
  out.spec = std::move(r.service);
  return out;
}

}  // namespace http::api
