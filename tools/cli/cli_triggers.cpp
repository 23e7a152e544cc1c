// The trigger commands: `dockless triggers` (the bindings), `queue` and `dlq` (the durable
// queue's pending and dead-lettered events), `inspect ev-…` (one event, with its body) and
// `replay ID`.
#include <unistd.h>

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "tools/cli/cli_context.hpp"
#include "tools/cli/cli_format.hpp"

namespace tools::cli {
namespace {

using nlohmann::json;

void print(const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); }

std::string text_of(const json& j, const char* key, const std::string& fallback = "-") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return it->is_string() ? it->get<std::string>() : it->dump();
}

// GET path, then either the body as is (--json) or `render` of the parsed answer.
template <class Render>
int get_and_show(Context& ctx, const Flags& f, const std::string& path, const std::string& what, Render render) {
  int exit = kOk;
  auto resp = send(ctx, {"GET", path, {}, ""}, &exit);
  if (!resp) return exit;
  if (!success(resp->status)) return report(*resp, what);
  if (f.has("json")) {
    print(resp->body.empty() || resp->body.back() == '\n' ? resp->body : resp->body + "\n");
    return kOk;
  }
  const json j = json::parse(resp->body, nullptr, false);
  if (!j.is_object()) {
    std::fprintf(stderr, "dockless: unexpected answer to GET %s (not a JSON object)\n", path.c_str());
    return kRefused;
  }
  print(render(j));
  return kOk;
}

std::string render_events(const json& j, bool dead) {
  const bool colour = colour_enabled(STDOUT_FILENO);
  std::vector<std::vector<Cell>> rows;
  rows.push_back({{"ID"}, {"TRIGGER"}, {"EVENT"}, {"RECEIVED"}, {"ATTEMPTS"}, {dead ? "ERROR" : "STATE"}});
  const json& events = j.contains("events") ? j["events"] : json::array();
  for (const json& e : events) {
    std::string state = text_of(e, "state");
    if (!dead && e.value("dispatching", false)) state = "dispatching";
    else if (!dead && e.contains("retry_in_ms") && e["retry_in_ms"].is_number())
      state = "retry in " + format_duration(e["retry_in_ms"].get<double>() / 1000.0);
    std::string error = text_of(e, "last_error", "");
    if (error.size() > 60) error = error.substr(0, 57) + "...";
    rows.push_back({{text_of(e, "id")},
                    {text_of(e, "trigger")},
                    {text_of(e, "event", "")},
                    {text_of(e, "received")},
                    {text_of(e, "attempts", "0")},
                    {dead ? error : state, dead ? Colour::red : Colour::none}});
  }
  if (rows.size() == 1) return dead ? "no dead-lettered events\n" : "no pending events\n";
  return render_table(rows, colour);
}

}  // namespace

int cmd_triggers(Context& ctx, const Flags& f) {
  return get_and_show(ctx, f, "/v1/triggers", "triggers", [](const json& j) -> std::string {
    std::vector<std::vector<Cell>> rows;
    rows.push_back({{"ID"}, {"PATH"}, {"PROVIDER"}, {"HANDLER"}, {"VERSION"}, {"PENDING"}, {"DEAD"}, {"LAST"}});
    const json& triggers = j.contains("triggers") ? j["triggers"] : json::array();
    for (const json& t : triggers) {
      const json& action = t.contains("action") ? t["action"] : json::object();
      std::string handler = "-";
      for (const auto& [verb, value] : action.items()) {
        if (verb == "timeout_ms" || verb == "user") continue;
        std::string target = "(hidden)";  // a command line is withheld from readers without a key
        if (value.is_string()) target = value.get<std::string>();
        else if (value.is_array() && !value.empty() && value[0].is_string()) target = value[0].get<std::string>();
        handler = verb == "post" ? target : verb + ":" + target;
      }
      const json& q = t.contains("queue") ? t["queue"] : json::object();
      std::string last = "-";
      if (t.contains("last_delivery") && t["last_delivery"].is_object())
        last = text_of(t["last_delivery"], "outcome");
      rows.push_back({{text_of(t, "id")},
                      {text_of(t, "path")},
                      {text_of(t, "provider")},
                      {handler},
                      {text_of(t, "binding_version")},
                      {text_of(q, "pending", "0")},
                      {text_of(q, "dead", "0"), q.value("dead", 0) > 0 ? Colour::red : Colour::none},
                      {last}});
    }
    if (rows.size() == 1) return "no triggers configured\n";
    return render_table(rows, colour_enabled(STDOUT_FILENO));
  });
}

int cmd_queue(Context& ctx, const Flags& f) {
  std::string query = "?state=" + url_encode(f.get("state", "pending"));
  if (f.has("trigger")) query += "&trigger=" + url_encode(f.get("trigger"));
  return get_and_show(ctx, f, "/v1/trigger-events" + query, "queue",
                      [](const json& j) { return render_events(j, false); });
}

int cmd_dlq(Context& ctx, const Flags& f) {
  std::string query = "?state=dead";
  if (f.has("trigger")) query += "&trigger=" + url_encode(f.get("trigger"));
  return get_and_show(ctx, f, "/v1/trigger-events" + query, "dlq",
                      [](const json& j) { return render_events(j, true); });
}

bool is_event_id(const std::string& id) {
  if (id.size() != 19 || id.rfind("ev-", 0) != 0) return false;
  return id.find_first_not_of("0123456789abcdef", 3) == std::string::npos;
}

int cmd_inspect_event(Context& ctx, const Flags& f) {
  const std::string& id = f.positional[0];
  return get_and_show(ctx, f, "/v1/trigger-events/" + url_encode(id), id,
                      [](const json& j) { return j.dump(2) + "\n"; });
}

int cmd_replay(Context& ctx, const Flags& f) {
  int exit = kOk;
  for (const std::string& id : f.positional) {
    auto resp = send(ctx, {"POST", "/v1/trigger-events/" + url_encode(id) + "/replay", {}, ""}, &exit);
    if (!resp) return exit;
    if (!success(resp->status)) {
      exit = report(*resp, id);
      continue;
    }
    const json j = json::parse(resp->body, nullptr, false);
    print(id + ": " + (j.is_object() ? text_of(j, "message", "queued again") : std::string("queued again")) + "\n");
  }
  return exit;
}

}  // namespace tools::cli
