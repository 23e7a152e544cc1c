// [[triggers]]: webhook triggers, checked here so that `dockless check-config`, start-up and
// reload report a bad trigger like any other config error (file:line:col) and a reload with
// one keeps the running config.
#include <arpa/inet.h>

#include <algorithm>
#include <map>

#include "config/detail.hpp"
#include "config/secrets.hpp"
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
  TriggerReader(Trigger& t, const toml::table& table, const Config& config, const Inputs& in,
                const SecretChain& chain, Sink& sink)
      : t_(t), config_(config), in_(in), chain_(chain), r_(table, "triggers." + t.id, sink) {}

  void read() {
    r_.reject_unknown(
        {"id", "kind", "provider", "path", "match", "secret", "secrets", "action", "handler", "timeout", "user",
                       "max_attempts", "backoff"});
    if (!service_name_valid(t_.id))
      r_.error(*r_.find("id"), "id", "must match [a-z0-9][a-z0-9_.-]{0,62} (it becomes a file name)");
    if (const toml::node* k = r_.find("kind")) {
      if (auto v = r_.one_of_node(*k, "kind", {"webhook", "a2a-push"})) t_.kind = *v;
    } else {
      r_.sink().add(t_.pos, r_.key_path("kind") + ": missing; set kind = \"webhook\"");
    }
    provider();
    path();
    match();
    if (t_.kind == "a2a-push") {
      // The API's own keys authenticate these: a per-trigger secret would be a second door.
      for (const char* key : {"secret", "secrets"})
        if (const toml::node* n = r_.find(key))
          r_.error(*n, key, "an a2a-push trigger is authenticated by the API's keys (Bearer or HMAC); remove it");
    } else {
      secret();
    }
    if (const toml::node* h = r_.find("handler")) {
      if (const toml::node* a = r_.find("action"))
        r_.error(*a, "action", "set either action or handler, not both");
      else
        handler(*h);
    } else {
      action();
    }
    if (t_.action == Trigger::Action::post) t_.timeout = Duration{30'000};
    if (const toml::node* n = r_.find("timeout")) {
      if (t_.handler.empty() || (t_.action != Trigger::Action::run && t_.action != Trigger::Action::exec &&
                                 t_.action != Trigger::Action::post))
        r_.error(*n, "timeout", "applies to run:, exec: and HTTP handlers only");
      else if (auto d = r_.duration("timeout"); d && d->count() <= 0)
        r_.error(*n, "timeout", "must be positive");
      else if (d)
        t_.timeout = *d;
    }
    user();
    if (r_.find("max_attempts"))
      if (auto n = r_.integer("max_attempts", 1, Trigger::kMaxAttemptsLimit)) t_.max_attempts = static_cast<int>(*n);
    if (const toml::node* n = r_.find("backoff")) {
      auto d = r_.duration("backoff");
      if (d && (d->count() < 10 || *d > Trigger::kMaxBackoff))
        r_.error(*n, "backoff", "must be between 10ms and 5m");
      else if (d)
        t_.backoff = *d;
    }
  }

 private:
  void provider() {
    const toml::node* p = r_.find("provider");
    if (t_.kind == "a2a-push") {
      t_.provider = "a2a-push";
      if (p) r_.one_of_node(*p, "provider", {"a2a-push"});
      return;
    }
    if (!p) {
      r_.sink().add(t_.pos, r_.key_path("provider") +
                                ": missing; one of \"github\", \"standard-webhooks\", \"hmac\"");
      return;
    }
    // "webhook" (the orchestrator design's name for standard-webhooks) is an alias, so the
    // list a typo is answered with stays the canonical names.
    if (p->is_string() && p->as_string()->get() == "webhook")
      t_.provider = "webhook";
    else if (p->is_string() && p->as_string()->get() == "a2a-push")
      r_.error(*p, "provider", "\"a2a-push\" needs kind = \"a2a-push\"");
    else if (auto v = r_.one_of("provider", {"github", "standard-webhooks", "hmac"}))
      t_.provider = *v;
  }

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
    const toml::node* refs = r_.find("secrets");
    if (n && refs) {
      r_.error(*refs, "secrets", "set either secret or secrets.signing_secret, not both");
      return;
    }
    if (refs) {
      secret_by_reference(*refs);
      return;
    }
    if (!n) {
      r_.sink().add(t_.pos, r_.key_path("secret") +
                                ": missing; every trigger needs a secret, e.g. secret = \"${WEBHOOK_SECRET}\"");
      return;
    }
    auto raw = r_.string("secret");
    if (!raw) return;
    Substituted s = substitute(*raw, [&](std::string_view name) {
      if (in_.env)
        if (auto v = in_.env(name)) return Resolution::of(*v);
      return Resolution::failed("undefined variable ${" + std::string(name) + "}; set it in the daemon's environment");
    });
    for (const std::string& e : s.errors) r_.error(*n, "secret", e);
    if (!s.errors.empty()) return;
    if (s.text.empty()) {
      r_.error(*n, "secret", "must not be empty (after substitution)");
      return;
    }
    if (check_whsec(s.text, *n, r_, "secret")) t_.secret = std::move(s.text);
    t_.secret_source = "the config's secret key";
  }

  // secrets = { signing_secret = "github/webhook-secret" }: config/secrets.hpp's chain.
  void secret_by_reference(const toml::node& n) {
    if (!n.is_table()) {
      r_.type_error(n, "secrets", "an inline table such as { signing_secret = \"github/webhook-secret\" }");
      return;
    }
    Reader m(*n.as_table(), r_.key_path("secrets"), r_.sink());
    m.reject_unknown({"signing_secret"});
    const toml::node* ref = m.find("signing_secret");
    if (!ref) {
      m.sink().add(n, m.key_path("signing_secret") + ": missing; the name of the trigger's signing secret");
      return;
    }
    auto name = m.string("signing_secret", true);
    if (!name) return;
    std::string why;
    std::optional<SecretChain::Found> found = chain_.resolve(*name, &why);
    if (!found) {
      m.error(*ref, "signing_secret", why);
      return;
    }
    if (!check_whsec(found->value, *ref, m, "signing_secret")) return;
    t_.secret = std::move(found->value);
    t_.secret_ref = *name;
    t_.secret_source = std::move(found->source);
  }

  // standard-webhooks secrets are "whsec_" + base64; anything else is used as raw bytes.
  bool check_whsec(const std::string& text, const toml::node& n, Reader& r, std::string_view key) const {
    const bool standard = t_.provider == "standard-webhooks" || t_.provider == "webhook";
    if (standard && text.rfind("whsec_", 0) == 0 && !base64_valid(text.substr(6))) {
      r.error(n, key, "a \"whsec_\" secret must be followed by standard base64");
      return false;
    }
    return true;
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
    if (name) set_service(*name, *a.find(verb), a, verb);
  }

  void set_service(const std::string& name, const toml::node& at, Reader& r, std::string_view key) {
    if (!config_.find(name)) {
      std::vector<std::string_view> names;
      for (const ServiceSpec& s : config_.services) names.push_back(s.name);
      std::string message = "unknown service " + quote(name);
      if (auto hint = did_you_mean(name, names)) message += "; did you mean " + quote(*hint) + "?";
      r.error(at, key, message + " (a trigger acts on services of this config file)");
      return;
    }
    t_.service = name;
  }

  // The orchestrator design's form: handler = "restart:web", "exec:/usr/local/bin/on-issue --fast".
  void handler(const toml::node& n) {
    auto text = r_.string("handler", true);
    if (!text) return;
    const std::size_t colon = text->find(':');
    const std::string scheme = text->substr(0, colon);
    const std::string rest = colon == std::string::npos ? "" : text->substr(colon + 1);
    static const std::map<std::string, Trigger::Action, std::less<>> kVerbs = {
        {"restart", Trigger::Action::restart}, {"start", Trigger::Action::start}, {"stop", Trigger::Action::stop},
        {"run", Trigger::Action::run}, {"exec", Trigger::Action::exec}};
    auto verb = kVerbs.find(scheme);
    if (colon != std::string::npos && (scheme == "http" || scheme == "https" || scheme == "service")) {
      post_target(n, *text, scheme, rest);
      return;
    }
    if (colon == std::string::npos || verb == kVerbs.end()) {
      r_.error(n, "handler", "expected restart:SERVICE, start:SERVICE, stop:SERVICE, run:COMMAND, exec:COMMAND, "
                             "http://HOST:PORT/PATH or service://NAME/PATH, got " + quote(*text));
      return;
    }
    t_.action = verb->second;
    t_.handler = *text;
    if (t_.action != Trigger::Action::run && t_.action != Trigger::Action::exec) {
      if (rest.empty()) r_.error(n, "handler", quote(*text) + " names no service");
      else set_service(rest, n, r_, "handler");
      return;
    }
    std::string why;
    auto argv = split_command(rest, &why);
    if (!argv) r_.error(n, "handler", why);
    else if (argv->empty() || (*argv)[0].empty()) r_.error(n, "handler", quote(*text) + " names no command");
    else t_.run = std::move(*argv);
  }

  // handler = "http://127.0.0.1:9000/hook" or "service://web/hooks/issue": the event is POSTed
  // as JSON. Numeric hosts only, as for health checks: a resolver call would block the loop.
  void post_target(const toml::node& n, const std::string& text, const std::string& scheme, const std::string& rest) {
    if (scheme == "https") {
      r_.error(n, "handler", "https handlers are not supported (the daemon posts over plain HTTP, to this host or "
                             "its LAN); use http://, service://NAME/PATH, or exec: with curl for a remote URL");
      return;
    }
    if (rest.rfind("//", 0) != 0) {
      r_.error(n, "handler", quote(text) + ": expected " + scheme + "://...");
      return;
    }
    const std::string after = rest.substr(2);
    const std::size_t slash = after.find('/');
    const std::string authority = after.substr(0, slash);
    const std::string path = slash == std::string::npos ? "/" : after.substr(slash);
    if (path.find_first_of(" \t\r\n#") != std::string::npos) {
      r_.error(n, "handler", quote(text) + ": the path must not hold spaces, control characters or a fragment");
      return;
    }
    t_.action = Trigger::Action::post;
    t_.handler = text;
    t_.post_path = path;
    if (scheme == "service") {
      if (authority.empty()) {
        r_.error(n, "handler", quote(text) + " names no service");
        return;
      }
      set_service(authority, n, r_, "handler");
      const ServiceSpec* target = config_.find(authority);
      if (target && !target->port && target->first_tcp_socket_port() == 0)
        r_.error(n, "handler", "service " + quote(authority) + " has no port to post to (give it port or a TCP socket)");
      return;
    }
    std::string host = authority;
    std::string port;
    if (!authority.empty() && authority.front() == '[') {
      const std::size_t close = authority.find(']');
      host = authority.substr(1, close == std::string::npos ? std::string::npos : close - 1);
      if (close != std::string::npos && close + 1 < authority.size() && authority[close + 1] == ':')
        port = authority.substr(close + 2);
    } else if (const std::size_t c = authority.rfind(':'); c != std::string::npos) {
      host = authority.substr(0, c);
      port = authority.substr(c + 1);
    }
    unsigned long number = 80;
    if (!port.empty()) {
      const bool digits = port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos;
      number = digits ? std::stoul(port) : 0;
      if (number == 0 || number > 65535) {
        r_.error(n, "handler", quote(text) + ": the port must be 1-65535");
        return;
      }
    }
    if (!numeric_host(host)) {
      r_.error(n, "handler", quote(text) + ": only numeric IPv4/IPv6 addresses and localhost are supported as the "
                             "host (no resolver call may block the daemon)");
      return;
    }
    t_.post_host = host == "localhost" ? "127.0.0.1" : host;
    t_.post_port = static_cast<std::uint16_t>(number);
  }

  static bool numeric_host(const std::string& h) {
    if (h == "localhost") return true;
    in6_addr v6{};
    in_addr v4{};
    return ::inet_pton(AF_INET, h.c_str(), &v4) == 1 || ::inet_pton(AF_INET6, h.c_str(), &v6) == 1;
  }

  // Checked here, not at the first delivery: a deploy job must not fail silently later.
  void user() {
    const toml::node* n = r_.find("user");
    if (!n) return;
    auto name = r_.string("user", true);
    if (!name) return;
    if (t_.action != Trigger::Action::run && t_.action != Trigger::Action::exec) {
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
  const Inputs& in_;
  const SecretChain& chain_;
  Reader r_;
};

}  // namespace

void interpret_triggers(Config& config, const toml::table& root, const Inputs& in, Sink& sink) {
  const SecretChain chain(in, config.secrets_dir);
  config.secret_chain = chain.describe();
  std::map<std::string, const toml::table*, std::less<>> tables;  // id -> table in `root`
  if (const toml::array* items = root.get_as<toml::array>("triggers"))
    for (const toml::node& item : *items)
      if (const toml::table* t = item.as_table())
        if (const toml::node* id = t->get("id"); id && id->is_string())
          tables.emplace(id->as_string()->get(), t);
  std::map<std::string, std::string> paths;  // path -> trigger id
  for (Trigger& t : config.triggers) {
    const toml::table& table = *tables.at(t.id);
    TriggerReader(t, table, config, in, chain, sink).read();
    auto [it, fresh] = paths.emplace(t.path, t.id);
    if (!fresh) {
      const toml::node* p = table.get("path");
      sink.add(p ? pos_of(*p) : t.pos, "triggers." + t.id + ".path: " + quote(t.path) +
                                           " is already the path of trigger " + quote(it->second));
    }
  }
}

}  // namespace config::detail
