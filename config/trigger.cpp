// [[triggers]]: webhook triggers, checked here so that `dockless check-config`, start-up and
// reload report a bad trigger like any other config error (file:line:col) and a reload with
// one keeps the running config.
#include <algorithm>
#include <map>

#include "config/detail.hpp"
#include "config/substitute.hpp"
#include "runtime/user_db.hpp"

namespace config::detail {
namespace {

// The daemon's own routes (http/api, the dashboard): a trigger path there would shadow them.
bool reserved_path(std::string_view path) {
  for (std::string_view exact : {"/", "/health", "/healthz", "/readyz", "/metrics", "/v1", "/assets"})
    if (path == exact) return true;
  for (std::string_view prefix : {"/v1/", "/assets/"})
    if (path.substr(0, prefix.size()) == prefix) return true;
  return false;
}

// Literal segments only: the path is compared byte for byte with the request's raw path, so
// characters that could be spelt two ways (percent-encoding) or carry meaning are refused.
bool path_chars_valid(std::string_view path) {
  if (path.size() < 2 || path.front() != '/' || path.back() == '/') return false;
  char prev = 0;
  for (char c : path) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.' || c == '~' || c == '/';
    if (!ok || (c == '/' && prev == '/')) return false;
    prev = c;
  }
  return path.find("/./") == std::string_view::npos && path.find("/../") == std::string_view::npos;
}

class TriggerReader {
 public:
  // `table` is the one in the parsed document: copies of toml++ nodes lose their positions.
  TriggerReader(Trigger& t, const toml::table& table, const Config& config, const VariableLookup& env, Sink& sink)
      : t_(t), config_(config), env_(env), r_(table, "triggers." + t.id, sink) {}

  void read() {
    r_.reject_unknown({"id", "kind", "provider", "path", "match", "secret", "action", "user"});
    if (!service_name_valid(t_.id))
      r_.error(*r_.find("id"), "id", "must match [a-z0-9][a-z0-9_.-]{0,62} (it becomes a file name)");
    if (const toml::node* k = r_.find("kind")) {
      r_.one_of_node(*k, "kind", {"webhook"});
    } else {
      r_.sink().add(t_.pos, r_.key_path("kind") + ": missing; set kind = \"webhook\"");
    }
    if (r_.find("provider")) {
      // "webhook" (the orchestrator design's name for standard-webhooks) is an alias, so the
      // list a typo is answered with stays the canonical names.
      if (const toml::node* p = r_.find("provider"); p->is_string() && p->as_string()->get() == "webhook")
        t_.provider = "webhook";
      else if (auto v = r_.one_of("provider", {"github", "standard-webhooks", "hmac"}))
        t_.provider = *v;
    } else {
      r_.sink().add(t_.pos, r_.key_path("provider") +
                                ": missing; one of \"github\", \"standard-webhooks\", \"hmac\"");
    }
    path();
    match();
    secret();
    action();
    user();
  }

 private:
  void path() {
    t_.path = "/triggers/" + t_.id;
    const toml::node* n = r_.find("path");
    if (!n) return;
    auto p = r_.string("path", true);
    if (!p) return;
    if (!path_chars_valid(*p)) {
      r_.error(*n, "path", "must start with '/' and be made of segments of [A-Za-z0-9._~-], got " + quote(*p));
      return;
    }
    if (reserved_path(*p)) {
      r_.error(*n, "path", quote(*p) + " collides with the daemon's own routes (/, /health, /healthz, "
                                       "/readyz, /metrics, /v1/..., /assets/...)");
      return;
    }
    t_.path = *p;
  }

  void match() {
    const toml::node* n = r_.find("match");
    if (!n) return;
    if (!n->is_table()) {
      r_.type_error(*n, "match", "an inline table such as { events = [\"push\"], branch = \"main\" }");
      return;
    }
    Reader m(*n->as_table(), r_.key_path("match"), r_.sink());
    m.reject_unknown({"events", "branch"});
    if (auto v = m.string_list("events", true)) {
      for (const std::string& e : *v)
        if (e.empty()) m.error(*m.find("events"), "events", "must not contain an empty name");
      t_.events = std::move(*v);
    }
    if (auto v = m.string("branch", true)) t_.branch = *v;
  }

  void secret() {
    const toml::node* n = r_.find("secret");
    if (!n) {
      r_.sink().add(t_.pos, r_.key_path("secret") +
                                ": missing; every trigger needs a secret, e.g. secret = \"${WEBHOOK_SECRET}\"");
      return;
    }
    auto raw = r_.string("secret");
    if (!raw) return;
    Substituted s = substitute(*raw, [&](std::string_view name) {
      if (env_)
        if (auto v = env_(name)) return Resolution::of(*v);
      return Resolution::failed("undefined variable ${" + std::string(name) + "}; set it in the daemon's environment");
    });
    for (const std::string& e : s.errors) r_.error(*n, "secret", e);
    if (!s.errors.empty()) return;
    if (s.text.empty()) {
      r_.error(*n, "secret", "must not be empty (after substitution)");
      return;
    }
    // standard-webhooks secrets are "whsec_" + base64; anything else is used as raw bytes.
    const bool standard = t_.provider == "standard-webhooks" || t_.provider == "webhook";
    if (standard && s.text.rfind("whsec_", 0) == 0 && !base64_valid(s.text.substr(6)))
      r_.error(*n, "secret", "a \"whsec_\" secret must be followed by standard base64");
    t_.secret = std::move(s.text);
  }

  static bool base64_valid(std::string_view b) {
    if (b.empty() || b.size() % 4 != 0) return false;
    std::size_t pad = 0;
    for (std::size_t i = 0; i < b.size(); ++i) {
      char c = b[i];
      if (c == '=') {
        ++pad;
        continue;
      }
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
      if (!ok || pad) return false;
    }
    return pad <= 2;
  }

  void action() {
    const toml::node* n = r_.find("action");
    if (!n) {
      r_.sink().add(t_.pos, r_.key_path("action") +
                                ": missing; e.g. action = { restart = \"web\" } or { run = [\"/path/job\"] }");
      return;
    }
    if (!n->is_table()) {
      r_.type_error(*n, "action", "an inline table such as { restart = \"web\" }");
      return;
    }
    Reader a(*n->as_table(), r_.key_path("action"), r_.sink());
    a.reject_unknown({"restart", "start", "stop", "run", "timeout"});
    int verbs = 0;
    for (auto [key, kind] : {std::pair{"restart", Trigger::Action::restart}, std::pair{"start", Trigger::Action::start},
                             std::pair{"stop", Trigger::Action::stop}, std::pair{"run", Trigger::Action::run}})
      if (a.find(key)) {
        ++verbs;
        t_.action = kind;
      }
    if (verbs != 1) {
      a.sink().add(*n, a.path() + ": needs exactly one of restart, start, stop, run; got " + std::to_string(verbs));
      return;
    }
    if (t_.action == Trigger::Action::run) {
      const toml::node* run = a.find("run");
      std::vector<std::string> argv;
      if (run->is_string()) {
        std::string why;
        auto words = split_command(run->as_string()->get(), &why);
        if (!words) {
          a.error(*run, "run", why);
          return;
        }
        argv = std::move(*words);
      } else if (auto list = a.string_list("run", false)) {
        argv = std::move(*list);
      } else {
        return;
      }
      if (argv.empty() || argv[0].empty()) {
        a.error(*run, "run", "must not be empty");
        return;
      }
      t_.run = std::move(argv);
      if (auto d = a.duration("timeout")) {
        if (d->count() <= 0) a.error(*a.find("timeout"), "timeout", "must be positive");
        else t_.timeout = *d;
      }
      return;
    }
    if (const toml::node* t = a.find("timeout")) a.error(*t, "timeout", "applies to run actions only");
    const char* verb = t_.action == Trigger::Action::restart ? "restart"
                       : t_.action == Trigger::Action::start ? "start" : "stop";
    auto name = a.string(verb, true);
    if (!name) return;
    if (!config_.find(*name)) {
      std::vector<std::string_view> names;
      for (const ServiceSpec& s : config_.services) names.push_back(s.name);
      std::string message = "unknown service " + quote(*name);
      if (auto hint = did_you_mean(*name, names)) message += "; did you mean " + quote(*hint) + "?";
      a.error(*a.find(verb), verb, message + " (a trigger acts on services of this config file)");
      return;
    }
    t_.service = *name;
  }

  // Checked here, not at the first delivery: a deploy job must not fail silently later.
  void user() {
    const toml::node* n = r_.find("user");
    if (!n) return;
    auto name = r_.string("user", true);
    if (!name) return;
    if (t_.action != Trigger::Action::run) {
      r_.error(*n, "user", "applies to run actions only");
      return;
    }
    const bool numeric = name->size() <= 9 && name->find_first_not_of("0123456789") == std::string::npos;
    if (!numeric && !runtime::find_user(*name)) {
      const std::vector<std::string> users = runtime::user_names();
      std::vector<std::string_view> names(users.begin(), users.end());
      std::string message = "unknown user " + quote(*name);
      if (auto hint = did_you_mean(*name, names)) message += "; did you mean " + quote(*hint) + "?";
      r_.error(*n, "user", message);
      return;
    }
    t_.user = std::move(*name);
  }

  Trigger& t_;
  const Config& config_;
  const VariableLookup& env_;
  Reader r_;
};

}  // namespace

void interpret_triggers(Config& config, const toml::table& root, const VariableLookup& env, Sink& sink) {
  std::map<std::string, const toml::table*, std::less<>> tables;  // id -> table in `root`
  if (const toml::array* items = root.get_as<toml::array>("triggers"))
    for (const toml::node& item : *items)
      if (const toml::table* t = item.as_table())
        if (const toml::node* id = t->get("id"); id && id->is_string())
          tables.emplace(id->as_string()->get(), t);
  std::map<std::string, std::string> paths;  // path -> trigger id
  for (Trigger& t : config.triggers) {
    const toml::table& table = *tables.at(t.id);
    TriggerReader(t, table, config, env, sink).read();
    auto [it, fresh] = paths.emplace(t.path, t.id);
    if (!fresh) {
      const toml::node* p = table.get("path");
      sink.add(p ? pos_of(*p) : t.pos, "triggers." + t.id + ".path: " + quote(t.path) +
                                           " is already the path of trigger " + quote(it->second));
    }
  }
}

}  // namespace config::detail
