#include "tools/cli/cli_plan.hpp"

namespace tools::cli {

using nlohmann::json;

namespace {

std::string value_text(const json& v) {
  if (v.is_null()) return "(unset)";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

const json& list(const json& j, const char* key) {
  static const json empty = json::array();
  auto it = j.find(key);
  return it != j.end() && it->is_array() ? *it : empty;
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void changes(std::string& out, const json& list_of) {
  for (const json& c : list_of) {
    out += "    " + str(c, "key") + ": " + value_text(c.value("from", json())) + " -> " +
           value_text(c.value("to", json()));
    if (c.value("masked", false)) out += " (secret, masked)";
    out += "\n";
  }
}

void names(std::string& out, const json& section, const char* key, const char* mark, const char* what) {
  for (const json& n : list(section, key)) out += std::string("  ") + mark + " " + value_text(n) + ": " + what + "\n";
}

void planned(std::string& out, const json& section, const char* key, const char* name_key, const char* what) {
  for (const json& p : list(section, key)) {
    out += "  ~ " + str(p, name_key) + ": " + what;
    const std::string reason = str(p, "reason");
    if (!reason.empty()) out += " (" + reason + ")";
    out += "\n";
    changes(out, list(p, "changes"));
  }
}

}  // namespace

std::string render_plan(const json& plan) {
  if (!plan.is_object() || plan.value("empty", false)) return "no changes\n";
  std::string out;
  const json services = plan.value("services", json::object());
  std::string s;
  names(s, services, "added", "+", "add");
  names(s, services, "removed", "-", "remove (stop)");
  planned(s, services, "restarted", "name", "restart");
  planned(s, services, "in_place", "name", "change in place, no restart");
  if (!s.empty()) out += "services:\n" + s;
  const json triggers = plan.value("triggers", json::object());
  std::string t;
  names(t, triggers, "added", "+", "add");
  names(t, triggers, "removed", "-", "remove");
  planned(t, triggers, "changed", "id", "new version");
  if (!t.empty()) out += "triggers:\n" + t;
  if (!list(plan, "settings").empty()) {
    out += "settings (applied by the reload):\n";
    changes(out, list(plan, "settings"));
  }
  if (!list(plan, "daemon_restart").empty()) {
    out += "needs a daemon restart (the running values stay until then):\n";
    changes(out, list(plan, "daemon_restart"));
  }
  return out.empty() ? "no changes\n" : out;
}

}  // namespace tools::cli
