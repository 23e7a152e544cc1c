// Valid configs: every key read back, defaults, forms of depends_on/ports/health, substitution.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "config/config.hpp"
#include "test_inputs.hpp"

using namespace std::chrono_literals;
using config::Duration;

namespace {

std::filesystem::path temp_dir() {
  auto dir = std::filesystem::path(::testing::TempDir()) /
             ("dockless_config_" + std::to_string(::getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::create_directories(dir);
  return dir;
}

void write(const std::filesystem::path& path, std::string_view text) {
  std::ofstream(path) << text;
}

config::ParseResult parse(std::string_view text, std::map<std::string, std::string> env = {},
                          const std::string& base_dir = "/nonexistent") {
  return config::parse_string(text, "config.toml", base_dir, test_inputs(std::move(env)));
}

std::string errors_of(const config::ParseResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.to_string() + "\n";
  return out;
}

}  // namespace

TEST(Parse, EmptyFileGivesDefaults) {
  auto r = parse("");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const config::Config& c = *r.config;
  config::Config d = config::embedded_defaults();
  EXPECT_EQ(c.listen_port, 3080);
  EXPECT_EQ(d.listen_port, 3080);
  EXPECT_EQ(c.listen_address, "0.0.0.0");
  EXPECT_EQ(c.data_dir, "/etc/dockless/data");
  EXPECT_EQ(c.log_level, config::LogLevel::info);
  EXPECT_EQ(c.http.max_body_bytes, 10u << 20);
  EXPECT_FALSE(c.http.public_read);
  EXPECT_TRUE(c.services.empty());
  EXPECT_TRUE(c.triggers.empty());
}

TEST(Parse, ServiceDefaults) {
  auto r = parse("[services.web]\ncommand = \"/bin/web\"\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const config::ServiceSpec& s = r.config->services.at(0);
  EXPECT_EQ(s.name, "web");
  EXPECT_EQ(s.pos.line, 1);
  EXPECT_EQ(s.command, std::vector<std::string>{"/bin/web"});
  EXPECT_EQ(s.restart, config::RestartPolicy::on_failure);
  EXPECT_EQ(s.restart_delay, 100ms);
  EXPECT_EQ(s.restart_delay_max, 30s);
  EXPECT_EQ(s.restart_reset_after, 60s);
  EXPECT_EQ(s.restart_limit, 5);
  EXPECT_EQ(s.restart_window, 10s);
  EXPECT_EQ(s.stop_signal, SIGTERM);
  EXPECT_EQ(s.stop_timeout, 10s);
  EXPECT_EQ(s.log_max_size, 10u << 20);
  EXPECT_EQ(s.log_keep, 5);
  EXPECT_TRUE(s.autostart);
  EXPECT_FALSE(s.stdin);
  EXPECT_EQ(s.ready, config::ReadyMode::exec);
  EXPECT_EQ(s.ready_timeout, 60s);
  EXPECT_FALSE(s.port);
  EXPECT_TRUE(s.ports.empty());
  EXPECT_FALSE(s.health);
  EXPECT_FALSE(s.image);
  EXPECT_TRUE(s.depends_on.empty());
}

TEST(Parse, EveryKeyRoundTrips) {
  auto dir = temp_dir();
  write(dir / "app.env", "FROM_FILE=file\nexport OVERRIDDEN=file\n");
  auto r = parse(R"(
listen_port = 8081
listen_address = "127.0.0.1"
data_dir = "/var/lib/dockless"
log_level = "debug"

[http]
allowed_origins = ["https://a.example", "https://b.example"]
max_body_bytes = "1MiB"
api_keys_file = "/etc/dockless/keys"
cert = "/etc/cert.pem"
key = "/etc/key.pem"
public_read = true

[[triggers]]
id = "deploy"
secret = "s3cret"
kind = "webhook"
provider = "hmac"
action = { restart = "web" }

[services.db]
command = ["/usr/bin/db", "--data", "/srv/db"]
port = 5432
health = { tcp = 5432 }

[services.web]
command = "/bin/web --name 'my web' --db ${services.db.port} --home ${HOME}"
env = { LEVEL = "${FROM_FILE}-x", NUM = 3, FLAG = true, OVERRIDDEN = "table" }
env_file = "app.env"
working_dir = "/srv/${FROM_FILE}"
user = "www"
group = "www-data"
restart = "always"
restart_delay = "250ms"
restart_delay_max = "1m"
restart_reset_after = "2m30s"
restart_limit = 0
restart_window = "30s"
stop_signal = "INT"
stop_timeout = "5s"
depends_on = [{ name = "db", condition = "healthy" }]
port = 8080
ports = [8080, 9090, "auto"]
log_max_size = "512KiB"
log_keep = 3
autostart = false
stdin = true
ready = "fd:3"
ready_timeout = "1m30s"
image = "nginx:alpine"
docker_args = "--rm -e 'A=b c'"
volumes = ["/srv:/srv"]
network = "host"
docker_cli = "podman"

[services.web.health]
http = "http://127.0.0.1:${PORT}/healthz?x=1"
interval = "5s"
timeout = "1s"
retries = 2
start_period = "20s"
restart_on_unhealthy = true
)",
                 {{"HOME", "/home/pi"}}, dir.string());
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const config::Config& c = *r.config;
  EXPECT_EQ(c.listen_port, 8081);
  EXPECT_EQ(c.listen_address, "127.0.0.1");
  EXPECT_EQ(c.data_dir, "/var/lib/dockless");
  EXPECT_EQ(c.log_level, config::LogLevel::debug);
  EXPECT_EQ(c.http.allowed_origins, (std::vector<std::string>{"https://a.example", "https://b.example"}));
  EXPECT_EQ(c.http.max_body_bytes, 1u << 20);
  EXPECT_EQ(c.http.api_keys_file, "/etc/dockless/keys");
  EXPECT_EQ(c.http.cert, "/etc/cert.pem");
  EXPECT_EQ(c.http.key, "/etc/key.pem");
  EXPECT_TRUE(c.http.public_read);
  ASSERT_EQ(c.triggers.size(), 1u);
  EXPECT_EQ(c.triggers[0].id, "deploy");
  EXPECT_EQ(c.triggers[0].table["secret"].value_or(std::string{}), "s3cret");
  EXPECT_EQ(c.triggers[0].pos.line, 15);

  ASSERT_EQ(c.services.size(), 2u);
  const config::ServiceSpec& db = *c.find("db");
  EXPECT_EQ(db.command, (std::vector<std::string>{"/usr/bin/db", "--data", "/srv/db"}));
  ASSERT_TRUE(db.health);
  EXPECT_EQ(db.health->kind, config::HealthCheck::Kind::tcp);
  EXPECT_EQ(db.health->host, "127.0.0.1");
  EXPECT_EQ(db.health->port, 5432);

  const config::ServiceSpec& s = *c.find("web");
  EXPECT_EQ(s.command, (std::vector<std::string>{"/bin/web", "--name", "my web", "--db", "5432", "--home",
                                                 "/home/pi"}));
  std::map<std::string, std::string> env = {
      {"FROM_FILE", "file"}, {"OVERRIDDEN", "table"}, {"LEVEL", "file-x"}, {"NUM", "3"}, {"FLAG", "true"}};
  EXPECT_EQ(s.env, env);
  EXPECT_EQ(s.env_files, std::vector<std::string>{(dir / "app.env").string()});
  EXPECT_EQ(s.working_dir, "/srv/file");
  EXPECT_EQ(s.user, "www");
  EXPECT_EQ(s.group, "www-data");
  EXPECT_EQ(s.restart, config::RestartPolicy::always);
  EXPECT_EQ(s.restart_delay, 250ms);
  EXPECT_EQ(s.restart_delay_max, 1min);
  EXPECT_EQ(s.restart_reset_after, 150s);
  EXPECT_EQ(s.restart_limit, 0);
  EXPECT_EQ(s.restart_window, 30s);
  EXPECT_EQ(s.stop_signal, SIGINT);
  EXPECT_EQ(s.stop_timeout, 5s);
  ASSERT_EQ(s.depends_on.size(), 1u);
  EXPECT_EQ(s.depends_on[0].name, "db");
  EXPECT_EQ(s.depends_on[0].condition, config::DependencyCondition::healthy);
  ASSERT_TRUE(s.port);
  EXPECT_EQ(s.port->number, 8080);
  ASSERT_EQ(s.ports.size(), 3u);
  EXPECT_EQ(s.ports[0].number, 8080);
  EXPECT_EQ(s.ports[1].number, 9090);
  EXPECT_TRUE(s.ports[2].automatic);
  EXPECT_EQ(s.log_max_size, 512u * 1024);
  EXPECT_EQ(s.log_keep, 3);
  EXPECT_FALSE(s.autostart);
  EXPECT_TRUE(s.stdin);
  EXPECT_EQ(s.ready, config::ReadyMode::fd);
  EXPECT_EQ(s.ready_fd, 3);
  EXPECT_EQ(s.ready_timeout, 90s);
  EXPECT_EQ(s.image, "nginx:alpine");
  EXPECT_EQ(s.docker_args, (std::vector<std::string>{"--rm", "-e", "A=b c"}));
  EXPECT_EQ(s.volumes, std::vector<std::string>{"/srv:/srv"});
  EXPECT_EQ(s.network, "host");
  EXPECT_EQ(s.docker_cli, "podman");
  ASSERT_TRUE(s.health);
  EXPECT_EQ(s.health->kind, config::HealthCheck::Kind::http);
  EXPECT_EQ(s.health->host, "127.0.0.1");
  EXPECT_EQ(s.health->port, 0);  // $PORT
  EXPECT_EQ(s.health->path, "/healthz?x=1");
  EXPECT_EQ(s.health->interval, 5s);
  EXPECT_EQ(s.health->timeout, 1s);
  EXPECT_EQ(s.health->retries, 2);
  EXPECT_EQ(s.health->start_period, 20s);
  EXPECT_TRUE(s.health->restart_on_unhealthy);
}

TEST(Parse, DependsOnForms) {
  auto r = parse(R"(
[services.a]
command = "a"
depends_on = ["b", { name = "c" }, { name = "d", condition = "healthy" }]
[services.e]
command = "e"
depends_on = { b = "started", d = "healthy" }
[services.b]
command = "b"
[services.c]
command = "c"
[services.d]
command = "d"
health = { exec = "check --quick" }
)");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto& a = r.config->find("a")->depends_on;
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].name, "b");
  EXPECT_EQ(a[0].condition, config::DependencyCondition::started);
  EXPECT_EQ(a[1].name, "c");
  EXPECT_EQ(a[1].condition, config::DependencyCondition::started);
  EXPECT_EQ(a[2].name, "d");
  EXPECT_EQ(a[2].condition, config::DependencyCondition::healthy);
  const auto& e = r.config->find("e")->depends_on;
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[1].name, "d");
  EXPECT_EQ(e[1].condition, config::DependencyCondition::healthy);
  EXPECT_EQ(r.config->find("d")->health->exec, (std::vector<std::string>{"check", "--quick"}));
}

TEST(Parse, SubstitutionSourcesAndEscapes) {
  auto r = parse(R"(
[services.api]
command = ["api", "${GREETING}", "$${LITERAL}", "--port=$PORT", "${PORT}", "${services.web.port}"]
env = { GREETING = "hi ${USER}", PATH = "/opt/bin:${PATH}" }
[services.web]
command = "web"
port = "auto"
)",
                 {{"USER", "pi"}, {"PATH", "/usr/bin"}, {"GREETING", "ignored: env table wins"}});
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const config::ServiceSpec& api = *r.config->find("api");
  EXPECT_EQ(api.command, (std::vector<std::string>{"api", "hi pi", "${LITERAL}", "--port=$PORT", "${PORT}",
                                                   "${services.web.port}"}));
  EXPECT_EQ(api.env.at("PATH"), "/opt/bin:/usr/bin");
  EXPECT_EQ(api.port_refs, std::vector<std::string>{"web"});
  EXPECT_TRUE(r.config->find("web")->port->automatic);
}

TEST(Parse, PortFormsAndPrimary) {
  auto r = parse(R"(
[services.a]
command = "a"
ports = [7000, 7001]
[services.b]
command = "b"
port = "auto"
ports = ["auto", 7100]
[services.c]
command = "c"
health = { tcp = "localhost:${services.a.port}" }
)");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto& a = *r.config->find("a");
  EXPECT_EQ(a.port->number, 7000);
  EXPECT_EQ(a.ports.size(), 2u);
  const auto& b = *r.config->find("b");
  EXPECT_TRUE(b.port->automatic);
  ASSERT_EQ(b.ports.size(), 2u);
  EXPECT_EQ(b.ports[1].number, 7100);
  EXPECT_EQ(r.config->find("c")->health->host, "localhost");
  EXPECT_EQ(r.config->find("c")->health->port, 7000);
}

TEST(Parse, FingerprintChangesOnlyWithSettings) {
  auto one = parse("[services.web]\ncommand = \"web\"\nrestart = \"always\"\n");
  auto moved = parse("\n\n# comment\n[services.web]\nrestart = \"always\"\ncommand = [\"web\"]\n");
  auto changed = parse("[services.web]\ncommand = \"web\"\nrestart = \"no\"\n");
  ASSERT_TRUE(one.ok() && moved.ok() && changed.ok());
  EXPECT_TRUE(one.config->services[0] == moved.config->services[0]);
  EXPECT_FALSE(one.config->services[0] == changed.config->services[0]);
  EXPECT_NE(one.config->services[0].fingerprint(), changed.config->services[0].fingerprint());
}

TEST(Parse, FileAndEnvFileRelativeToIt) {
  auto dir = temp_dir();
  std::filesystem::create_directories(dir / "env");
  write(dir / "env" / "a.env", "A=1\n");
  write(dir / "env" / "b.env", "B=2\nA=3\n");
  write(dir / "config.toml", "[services.x]\ncommand = \"x ${A} ${B}\"\nenv_file = [\"env/a.env\", \"env/b.env\"]\n");
  auto r = config::parse_file((dir / "config.toml").string(), test_inputs({}));
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->source_file, (dir / "config.toml").string());
  EXPECT_EQ(r.config->services[0].command, (std::vector<std::string>{"x", "3", "2"}));
}

TEST(Parse, MissingFile) {
  auto r = config::parse_file("/nonexistent/dockless.toml", test_inputs({}));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(), "/nonexistent/dockless.toml: cannot read config file: No such file or directory");
}

TEST(ParseService, SingleServiceAgainstExistingConfig) {
  auto base = parse("[services.db]\ncommand = \"db\"\nport = 5432\n");
  ASSERT_TRUE(base.ok());
  auto ctx = config::ServiceContext::from(*base.config, test_inputs({}));
  ctx.source_name = "api.toml";
  auto r = config::parse_service_string(
      "[services.api]\ncommand = \"api --db=${services.db.port}\"\ndepends_on = [\"db\"]\nport = 5432\n", ctx);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.service->command[1], "--db=5432");
  config::Config merged = *base.config;
  merged.services.push_back(*r.service);
  auto errors = config::validate_services(merged);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].message, "services.api: port 5432 is already claimed by service \"db\"");

  auto two = config::parse_service_string("[services.a]\ncommand = \"a\"\n[services.b]\ncommand = \"b\"\n", ctx);
  ASSERT_EQ(two.errors.size(), 1u);
  EXPECT_EQ(two.errors[0].to_string(), "api.toml:1:1: expected exactly one [services.NAME] table and nothing else");
}

TEST(Parse, TriggersReadBackWithDefaults) {
  auto r = parse(R"(
[services.web]
command = "sleep 1"

[[triggers]]
id = "deploy-web"
kind = "webhook"
provider = "github"
path = "/hooks/deploy-web"
match = { events = ["push"], branch = "main" }
secret = "${GH_SECRET}"
action = { restart = "web" }

[[triggers]]
id = "job"
kind = "webhook"
provider = "standard-webhooks"
secret = "whsec_c2VjcmV0"
action = { run = "/usr/local/bin/deploy.sh --fast", timeout = "90s" }
)",
                 {{"GH_SECRET", "s3cret"}});
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto& t = r.config->triggers;
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].provider, "github");
  EXPECT_EQ(t[0].path, "/hooks/deploy-web");
  EXPECT_EQ(t[0].events, std::vector<std::string>{"push"});
  EXPECT_EQ(t[0].branch, "main");
  EXPECT_EQ(t[0].secret, "s3cret");
  EXPECT_EQ(t[0].action, config::Trigger::Action::restart);
  EXPECT_EQ(t[0].service, "web");
  EXPECT_EQ(t[1].path, "/triggers/job");  // the default
  EXPECT_EQ(t[1].action, config::Trigger::Action::run);
  EXPECT_EQ(t[1].run, (std::vector<std::string>{"/usr/local/bin/deploy.sh", "--fast"}));
  EXPECT_EQ(t[1].timeout, 90s);
  EXPECT_TRUE(t[1].events.empty());
}

// A job's user is checked when the config is read, not at the first delivery; an unset one
// leaves the choice to the daemon (nobody when it is root).
TEST(Parse, TriggerUserIsAKnownUserOfARunAction) {
  const std::string head = "[services.web]\ncommand = \"x\"\n[[triggers]]\nid = \"t\"\nkind = \"webhook\"\n"
                           "provider = \"hmac\"\nsecret = \"s\"\n";
  auto r = parse(head + "action = { run = [\"/bin/true\"] }\nuser = \"nobody\"\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->triggers[0].user, "nobody");
  r = parse(head + "action = { run = [\"/bin/true\"] }\nuser = \"1234\"\n");  // a uid need not be listed
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->triggers[0].user, "1234");
  r = parse(head + "action = { run = [\"/bin/true\"] }\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->triggers[0].user, "");
  r = parse(head + "action = { run = [\"/bin/true\"] }\nuser = \"nobodyy\"\n");
  EXPECT_EQ(errors_of(r), "config.toml:9:8: triggers.t.user: unknown user \"nobodyy\"; did you mean \"nobody\"?\n");
  r = parse(head + "action = { run = [\"/bin/true\"] }\nuser = \"\"\n");
  EXPECT_NE(errors_of(r).find("config.toml:9:8: triggers.t.user: "), std::string::npos) << errors_of(r);
  r = parse(head + "action = { restart = \"web\" }\nuser = \"nobody\"\n");
  EXPECT_EQ(errors_of(r), "config.toml:9:8: triggers.t.user: applies to run actions only\n");
}

TEST(Parse, TriggerActionNeedsExactlyOneVerb) {
  auto r = parse("[services.web]\ncommand = \"x\"\n[[triggers]]\nid = \"t\"\nkind = \"webhook\"\n"
                 "provider = \"hmac\"\nsecret = \"s\"\naction = { restart = \"web\", stop = \"web\" }\n");
  EXPECT_EQ(errors_of(r),
            "config.toml:8:10: triggers.t.action: needs exactly one of restart, start, stop, run; got 2\n");
  r = parse("[[triggers]]\nid = \"t\"\nkind = \"webhook\"\nprovider = \"hmac\"\nsecret = \"s\"\n"
            "action = { run = [\"/bin/true\"] }\nmatch = { event = \"x\" }\n");
  EXPECT_EQ(errors_of(r), "config.toml:7:11: unknown key \"event\" in [triggers.t.match]; did you mean \"events\"?\n");
}

TEST(Parse, EventsAndCapsKeys) {
  auto d = parse("");
  ASSERT_TRUE(d.ok()) << errors_of(d);
  EXPECT_EQ(d.config->events.max_size, 8u << 20);
  EXPECT_EQ(d.config->events.keep, 4);
  EXPECT_EQ(d.config->events.max_age, config::Duration(30LL * 24 * 3600 * 1000));
  EXPECT_EQ(d.config->http.max_registered_services, 256u);
  EXPECT_EQ(d.config->http.max_follow_streams, 256u);
  EXPECT_EQ(d.config->http.max_public_follow_streams, 16u);
  auto r = parse("[http]\nmax_registered_services = 3\nmax_follow_streams = 0\nmax_public_follow_streams = 5\n"
                 "[events]\nmax_size = \"64KiB\"\nkeep = 2\nmax_age = \"48h\"\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->http.max_registered_services, 3u);
  EXPECT_EQ(r.config->http.max_follow_streams, 0u);
  EXPECT_EQ(r.config->http.max_public_follow_streams, 5u);
  EXPECT_EQ(r.config->events.max_size, 64u << 10);
  EXPECT_EQ(r.config->events.keep, 2);
  EXPECT_EQ(r.config->events.max_age, config::Duration(48LL * 3600 * 1000));
  EXPECT_FALSE(parse("[events]\nkeep = 0\n").ok());
  EXPECT_FALSE(parse("[events]\nmax_size = 100\n").ok());
  EXPECT_FALSE(parse("[events]\nmax_sise = \"1MiB\"\n").ok());
}
