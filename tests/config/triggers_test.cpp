// [[triggers]] in the orchestrator design's form: provider aliases, match.events forms,
// handler, secrets by reference, a2a-push, [orchestrator].
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "config/secrets.hpp"
#include "test_inputs.hpp"

namespace {

config::ParseResult parse(std::string_view text, std::map<std::string, std::string> env = {}) {
  return config::parse_string(text, "config.toml", "/nonexistent", test_inputs(std::move(env)));
}

std::string errors_of(const config::ParseResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.to_string() + "\n";
  return out;
}

constexpr std::string_view kWeb = "[services.web]\ncommand = \"x\"\n";

}  // namespace

TEST(Triggers, WebhookIsTheStandardWebhooksProvider) {
  auto r = parse(std::string(kWeb) + "[[triggers]]\nid = \"t\"\nkind = \"webhook\"\nprovider = \"webhook\"\n"
                                     "secret = \"whsec_c2VjcmV0\"\naction = { restart = \"web\" }\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->triggers[0].provider, "webhook");
  r = parse(std::string(kWeb) + "[[triggers]]\nid = \"t\"\nkind = \"webhook\"\nprovider = \"webhook\"\n"
                                "secret = \"whsec_%%\"\naction = { restart = \"web\" }\n");
  EXPECT_EQ(errors_of(r),
            "config.toml:7:10: triggers.t.secret: a \"whsec_\" secret must be followed by standard base64\n");
}

TEST(Triggers, GithubEventDotActionIsKept) {
  auto r = parse(std::string(kWeb) + "[[triggers]]\nid = \"t\"\nkind = \"webhook\"\nprovider = \"github\"\n"
                                     "match = { events = [\"issues.opened\", \"push\"] }\n"
                                     "secret = \"s\"\naction = { restart = \"web\" }\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->triggers[0].events, (std::vector<std::string>{"issues.opened", "push"}));
}

namespace {

// The design's example manifest (issue 14), with real handler values.
constexpr std::string_view kDesign = R"([orchestrator]
allowed_origins = ["https://app.example.com"]
max_body_bytes = 10485760

[[triggers]]
id = "github-new-issue"
kind = "webhook"
provider = "github"
path = "/triggers/github-new-issue"
match = { events = ["issues.opened"] }
handler = "exec:/usr/local/bin/on-issue --label new"
secrets = { signing_secret = "github/webhook-secret" }

[[triggers]]
id = "incoming-review-task"
kind = "a2a-push"
provider = "a2a-push"
path = "/a2a/review"
match = { events = ["a2a.task.received"] }
handler = "restart:reviewer"

[services.reviewer]
command = "x"
)";

config::ParseResult parse_with(std::string_view text, std::map<std::string, std::string> env,
                               std::map<std::string, std::string> files = {}) {
  config::Inputs in = test_inputs(std::move(env));
  in.read_secret_file = config::map_files(std::move(files));
  return config::parse_string(text, "config.toml", "/nonexistent", in);
}

}  // namespace

TEST(Triggers, TheDesignsExampleManifestLoads) {
  auto r = parse_with(kDesign, {{"DOCKLESS_SECRET_GITHUB_WEBHOOK_SECRET", "gh"}});
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const config::Config& c = *r.config;
  EXPECT_EQ(c.http.section, "orchestrator");
  EXPECT_EQ(c.http.allowed_origins, std::vector<std::string>{"https://app.example.com"});
  EXPECT_EQ(c.http.max_body_bytes, 10485760u);
  ASSERT_EQ(c.triggers.size(), 2u);
  const config::Trigger& gh = c.triggers[0];
  EXPECT_EQ(gh.action, config::Trigger::Action::exec);
  EXPECT_EQ(gh.run, (std::vector<std::string>{"/usr/local/bin/on-issue", "--label", "new"}));
  EXPECT_EQ(gh.handler, "exec:/usr/local/bin/on-issue --label new");
  EXPECT_EQ(gh.secret, "gh");
  EXPECT_EQ(gh.secret_ref, "github/webhook-secret");
  EXPECT_EQ(gh.secret_source, "environment DOCKLESS_SECRET_GITHUB_WEBHOOK_SECRET");
  const config::Trigger& a2a = c.triggers[1];
  EXPECT_EQ(a2a.kind, "a2a-push");
  EXPECT_EQ(a2a.provider, "a2a-push");
  EXPECT_EQ(a2a.action, config::Trigger::Action::restart);
  EXPECT_EQ(a2a.service, "reviewer");
  EXPECT_TRUE(a2a.secret.empty());
  EXPECT_EQ(c.secret_chain.size(), 3u);
}

TEST(Triggers, HttpAndOrchestratorTogetherIsAnErrorNamingBoth) {
  auto r = parse("[http]\nmax_body_bytes = 1000\n\n[orchestrator]\nmax_body_bytes = 2000\n");
  EXPECT_EQ(errors_of(r), "config.toml:4:1: [http] (config.toml:1:1) and [orchestrator] (config.toml:4:1) both set "
                          "the listener; keep one of the two\n");
  r = parse("[orchestrator]\nmax_body_bytes = 0\nbogus = 1\n");
  EXPECT_NE(errors_of(r).find("config.toml:2:18: orchestrator.max_body_bytes: "), std::string::npos) << errors_of(r);
  EXPECT_NE(errors_of(r).find("unknown key \"bogus\" in [orchestrator]"), std::string::npos) << errors_of(r);
}

TEST(Triggers, DrainTimeoutAndSecretsDir) {
  auto r = parse("secrets_dir = \"/etc/dockless/secrets\"\n[http]\ndrain_timeout = \"3s\"\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->http.drain_timeout, config::Duration(3000));
  EXPECT_EQ(r.config->secrets_dir, "/etc/dockless/secrets");
  EXPECT_EQ(parse("").config->http.drain_timeout, config::Duration(10'000));
  r = parse("[orchestrator]\ndrain_timeout = \"soon\"\n");
  EXPECT_NE(errors_of(r).find("config.toml:2:17: orchestrator.drain_timeout: invalid duration"), std::string::npos)
      << errors_of(r);
}

TEST(Triggers, HandlerForms) {
  const std::string head = std::string(kWeb) + "[[triggers]]\nid = \"t\"\nkind = \"webhook\"\nprovider = \"hmac\"\n"
                                               "secret = \"s\"\n";
  auto r = parse(head + "handler = \"stop:web\"\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->triggers[0].action, config::Trigger::Action::stop);
  r = parse(head + "handler = \"run:/bin/deploy 'a b'\"\ntimeout = \"5s\"\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->triggers[0].action, config::Trigger::Action::run);
  EXPECT_EQ(r.config->triggers[0].run, (std::vector<std::string>{"/bin/deploy", "a b"}));
  EXPECT_EQ(r.config->triggers[0].timeout, config::Duration(5000));
  EXPECT_EQ(errors_of(parse(head + "handler = \"restart:wbe\"\n")),
            "config.toml:8:11: triggers.t.handler: unknown service \"wbe\"; did you mean \"web\"? (a trigger acts on "
            "services of this config file)\n");
  EXPECT_EQ(errors_of(parse(head + "handler = \"https://hooks.example/x\"\n")),
            "config.toml:8:11: triggers.t.handler: https handlers are not supported (the daemon posts over plain "
            "HTTP, to this host or its LAN); use http://, service://NAME/PATH, or exec: with curl for a remote URL\n");
  EXPECT_EQ(errors_of(parse(head + "handler = \"reboot\"\n")),
            "config.toml:8:11: triggers.t.handler: expected restart:SERVICE, start:SERVICE, stop:SERVICE, "
            "run:COMMAND, exec:COMMAND, http://HOST:PORT/PATH or service://NAME/PATH, got \"reboot\"\n");
  EXPECT_EQ(errors_of(parse(head + "handler = \"exec:\"\n")),
            "config.toml:8:11: triggers.t.handler: \"exec:\" names no command\n");
  EXPECT_EQ(errors_of(parse(head + "handler = \"stop:web\"\naction = { stop = \"web\" }\n")),
            "config.toml:9:10: triggers.t.action: set either action or handler, not both\n");
  EXPECT_EQ(errors_of(parse(head + "handler = \"stop:web\"\ntimeout = \"5s\"\n")),
            "config.toml:9:11: triggers.t.timeout: applies to run:, exec: and HTTP handlers only\n");
}

TEST(Triggers, HttpHandlersPostToANumericHostOrAServicePort) {
  const std::string head = std::string(kWeb) + "[[triggers]]\nid = \"t\"\nkind = \"webhook\"\nprovider = \"hmac\"\n"
                                               "secret = \"s\"\n";
  auto r = parse(head + "handler = \"http://127.0.0.1:9000/hooks/issue?x=1\"\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const config::Trigger& t = r.config->triggers[0];
  EXPECT_EQ(t.action, config::Trigger::Action::post);
  EXPECT_EQ(t.post_host, "127.0.0.1");
  EXPECT_EQ(t.post_port, 9000);
  EXPECT_EQ(t.post_path, "/hooks/issue?x=1");
  EXPECT_EQ(t.timeout, config::Duration(30'000));
  r = parse(head + "handler = \"http://localhost\"\ntimeout = \"2s\"\nbackoff = \"250ms\"\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->triggers[0].post_port, 80);
  EXPECT_EQ(r.config->triggers[0].post_path, "/");
  EXPECT_EQ(r.config->triggers[0].timeout, config::Duration(2000));
  EXPECT_EQ(r.config->triggers[0].backoff, config::Duration(250));
  r = parse(head + "handler = \"http://[::1]:8080/x\"\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->triggers[0].post_host, "::1");
  EXPECT_EQ(errors_of(parse(head + "handler = \"service://web/hooks\"\n")),
            "config.toml:8:11: triggers.t.handler: service \"web\" has no port to post to (give it port or a TCP "
            "socket)\n");
  r = parse("[services.api]\ncommand = \"x\"\nport = 8081\n" + head + "handler = \"service://api/hooks\"\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->triggers[0].service, "api");
  EXPECT_EQ(r.config->triggers[0].post_path, "/hooks");
  EXPECT_EQ(errors_of(parse(head + "handler = \"http://hooks.example/x\"\n")),
            "config.toml:8:11: triggers.t.handler: \"http://hooks.example/x\": only numeric IPv4/IPv6 addresses and "
            "localhost are supported as the host (no resolver call may block the daemon)\n");
  EXPECT_EQ(errors_of(parse(head + "handler = \"http://127.0.0.1:0/x\"\n")),
            "config.toml:8:11: triggers.t.handler: \"http://127.0.0.1:0/x\": the port must be 1-65535\n");
  EXPECT_EQ(errors_of(parse(head + "handler = \"service://wbe/x\"\n")),
            "config.toml:8:11: triggers.t.handler: unknown service \"wbe\"; did you mean \"web\"? (a trigger acts on "
            "services of this config file)\n");
  EXPECT_EQ(errors_of(parse(head + "handler = \"http:/x\"\n")),
            "config.toml:8:11: triggers.t.handler: \"http:/x\": expected http://...\n");
  EXPECT_NE(errors_of(parse(head + "handler = \"stop:web\"\nbackoff = \"1ms\"\n")).find("between 10ms and 5m"),
            std::string::npos);
}

TEST(Triggers, A2aPushTakesNoSecretAndNeedsItsKind) {
  const std::string head = std::string(kWeb) + "[[triggers]]\nid = \"t\"\n";
  auto r = parse(head + "kind = \"a2a-push\"\nhandler = \"restart:web\"\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->triggers[0].provider, "a2a-push");
  EXPECT_EQ(errors_of(parse(head + "kind = \"a2a-push\"\nsecret = \"s\"\nhandler = \"restart:web\"\n")),
            "config.toml:6:10: triggers.t.secret: an a2a-push trigger is authenticated by the API's keys (Bearer or "
            "HMAC); remove it\n");
  EXPECT_EQ(errors_of(parse(head + "kind = \"webhook\"\nprovider = \"a2a-push\"\nsecret = \"s\"\n"
                                   "handler = \"restart:web\"\n")),
            "config.toml:6:12: triggers.t.provider: \"a2a-push\" needs kind = \"a2a-push\"\n");
  EXPECT_NE(errors_of(parse(head + "kind = \"a2a-push\"\nprovider = \"github\"\nhandler = \"restart:web\"\n"))
                .find("triggers.t.provider: expected one of \"a2a-push\""),
            std::string::npos);
}

TEST(Triggers, SecretsByReferenceGoThroughTheChain) {
  const std::string head = std::string(kWeb) + "[[triggers]]\nid = \"t\"\nkind = \"webhook\"\nprovider = \"github\"\n"
                                               "handler = \"restart:web\"\n";
  const std::string ref = head + "secrets = { signing_secret = \"github/webhook-secret\" }\n";
  const std::string with_dir = "secrets_dir = \"/s\"\n" + ref;
  // The credentials directory first, then secrets_dir, then the environment.
  auto r = parse_with(with_dir, {{"CREDENTIALS_DIRECTORY", "/c"}, {"DOCKLESS_SECRET_GITHUB_WEBHOOK_SECRET", "env"}},
                      {{"/c/github/webhook-secret", "cred\n"}, {"/s/github/webhook-secret", "file\n"}});
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->triggers[0].secret, "cred");
  EXPECT_EQ(r.config->triggers[0].secret_source, "systemd credential /c/github/webhook-secret");
  r = parse_with(with_dir, {{"CREDENTIALS_DIRECTORY", "/c"}, {"DOCKLESS_SECRET_GITHUB_WEBHOOK_SECRET", "env"}},
                 {{"/s/github/webhook-secret", "file\r\n"}});
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->triggers[0].secret, "file");
  r = parse_with(with_dir, {{"DOCKLESS_SECRET_GITHUB_WEBHOOK_SECRET", "env"}});
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->triggers[0].secret, "env");
  // Missing everywhere: one error naming every place tried.
  EXPECT_EQ(errors_of(parse_with(with_dir, {{"CREDENTIALS_DIRECTORY", "/c"}})),
            "config.toml:9:30: triggers.t.secrets.signing_secret: secret \"github/webhook-secret\" not found; tried "
            "systemd credential (/c/github/webhook-secret: No such file or directory), file "
            "(/s/github/webhook-secret: No such file or directory), environment "
            "(DOCKLESS_SECRET_GITHUB_WEBHOOK_SECRET not set)\n");
  EXPECT_EQ(errors_of(parse_with(ref, {})),
            "config.toml:8:30: triggers.t.secrets.signing_secret: secret \"github/webhook-secret\" not found; tried "
            "systemd credentials ($CREDENTIALS_DIRECTORY not set), files (secrets_dir not set), environment "
            "(DOCKLESS_SECRET_GITHUB_WEBHOOK_SECRET not set)\n");
  EXPECT_EQ(errors_of(parse_with(head + "secrets = { signing_secret = \"../etc/shadow\" }\n", {})),
            "config.toml:8:30: triggers.t.secrets.signing_secret: secret reference \"../etc/shadow\" must be segments "
            "of [A-Za-z0-9._-] separated by '/'\n");
  EXPECT_EQ(errors_of(parse_with(head + "secrets = { signing_secret = \"x\" }\nsecret = \"s\"\n", {})),
            "config.toml:8:11: triggers.t.secrets: set either secret or secrets.signing_secret, not both\n");
  EXPECT_NE(errors_of(parse_with(head + "secrets = { signing = \"x\" }\n", {})).find("unknown key \"signing\""),
            std::string::npos);
}

TEST(Secrets, EnvironmentNamesAndReferences) {
  EXPECT_EQ(config::secret_env_name("github/webhook-secret"), "DOCKLESS_SECRET_GITHUB_WEBHOOK_SECRET");
  EXPECT_EQ(config::secret_env_name("a.b_c9"), "DOCKLESS_SECRET_A_B_C9");
  EXPECT_TRUE(config::secret_ref_valid("github/webhook-secret"));
  for (std::string_view bad : {"", "/abs", "a//b", "a/", "a/../b", "..", "a b", "a\\b"})
    EXPECT_FALSE(config::secret_ref_valid(bad)) << bad;
}

// A file that exists but may not be used stops the lookup: it is never skipped for the next
// provider.
TEST(Secrets, ARefusedFileIsAnErrorNotAMiss) {
  config::Inputs in = test_inputs({{"DOCKLESS_SECRET_X", "env"}});
  in.read_secret_file = [](const std::string& path, std::string* error) -> std::optional<std::string> {
    *error = path + " has mode 0644";
    return std::nullopt;
  };
  config::SecretChain chain(in, "/s");
  std::string why;
  EXPECT_FALSE(chain.resolve("x", &why));
  EXPECT_EQ(why, "secret \"x\": file (/s/x: /s/x has mode 0644)");
  EXPECT_EQ(chain.describe()[1], "files: /s/NAME (mode-checked)");
}

TEST(Triggers, MaxAttemptsDefaultsToFiveAndIsBounded) {
  const std::string head = std::string(kWeb) + "[[triggers]]\nid = \"t\"\nkind = \"webhook\"\nprovider = \"hmac\"\n"
                                               "secret = \"s\"\naction = { restart = \"web\" }\n";
  auto r = parse(head);
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->triggers[0].max_attempts, 5);
  r = parse(head + "max_attempts = 2\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->triggers[0].max_attempts, 2);
  r = parse(head + "max_attempts = 0\n");
  EXPECT_FALSE(r.ok());
  EXPECT_NE(errors_of(r).find("triggers.t.max_attempts"), std::string::npos) << errors_of(r);
}
