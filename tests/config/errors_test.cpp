// Malformed configs, each with the exact "file:line:col: message" lines it must produce.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "config/config.hpp"
#include "test_inputs.hpp"

namespace {

struct Case {
  const char* name;
  const char* toml;
  std::vector<std::string> errors;
};

std::vector<std::string> errors_of(std::string_view text) {
  auto r = config::parse_string(text, "config.toml", "/nonexistent", test_inputs({{"HOME", "/root"}}));
  std::vector<std::string> out;
  for (const auto& e : r.errors) out.push_back(e.to_string());
  EXPECT_EQ(r.config.has_value(), out.empty());
  return out;
}

const Case kCases[] = {
    {"unknown_key_with_suggestion",
     "[services.web]\ncommand = \"web\"\ncomand = \"x\"\n",
     {"config.toml:3:1: unknown key \"comand\" in [services.web]; did you mean \"command\"?"}},
    {"unknown_key_prefix_suggestion",
     "[services.web]\ncommand = \"web\"\nrestart_del = \"1s\"\n",
     {"config.toml:3:1: unknown key \"restart_del\" in [services.web]; did you mean \"restart_delay\"?"}},
    {"unknown_key_no_suggestion",
     "[services.web]\ncommand = \"web\"\nzzzzzz = 1\n",
     {"config.toml:3:1: unknown key \"zzzzzz\" in [services.web]"}},
    {"unknown_top_level_table",
     "[service.web]\ncommand = \"web\"\n",
     {"config.toml:1:2: unknown key \"service\" at top level; did you mean \"services\"?"}},
    {"unknown_health_key",
     "[services.web]\ncommand = \"web\"\nhealth = { exec = \"true\", intervl = \"1s\" }\n",
     {"config.toml:3:27: unknown key \"intervl\" in [services.web.health]; did you mean \"interval\"?"}},
    {"wrong_type",
     "[services.web]\ncommand = \"web\"\nautostart = \"yes\"\n",
     {"config.toml:3:13: services.web.autostart: expected true or false, got string"}},
    {"bad_enum",
     "[services.web]\ncommand = \"web\"\nrestart = \"sometimes\"\n",
     {"config.toml:3:11: services.web.restart: expected one of \"no\", \"on-failure\", \"always\", got \"sometimes\""}},
    {"bad_log_level",
     "log_level = \"loud\"\n",
     {"config.toml:1:13: log_level: expected one of \"debug\", \"info\", \"warn\", \"error\", got \"loud\""}},
    {"listen_port_range",
     "listen_port = 70000\n",
     {"config.toml:1:15: listen_port: must be between 1 and 65535, got 70000"}},
    {"bad_name",
     "[services.Web_App]\ncommand = \"web\"\n",
     {"config.toml:1:11: invalid service name \"Web_App\": must match [a-z0-9][a-z0-9_.-]{0,62} (it becomes a file name)"}},
    {"bad_duration",
     "[services.web]\ncommand = \"web\"\nstop_timeout = \"10 seconds\"\n",
     {"config.toml:3:16: services.web.stop_timeout: invalid duration \"10 seconds\": unknown unit \" seconds\" (use ms, s, m or h)"}},
    {"integer_duration_hint",
     "[services.web]\ncommand = \"web\"\nrestart_delay = 5\n",
     {"config.toml:3:17: services.web.restart_delay: expected a duration string, got integer 5; use a string such as \"5s\""}},
    {"bad_size",
     "[services.web]\ncommand = \"web\"\nlog_max_size = \"1KiB\"\n",
     {"config.toml:3:16: services.web.log_max_size: must be at least 4096 bytes, got 1024"}},
    {"missing_command",
     "[services.web]\nrestart = \"no\"\n",
     {"config.toml:1:1: [services.web]: missing required key \"command\""}},
    {"empty_command",
     "[services.web]\ncommand = \"  \"\n",
     {"config.toml:2:11: services.web.command: must not be empty"}},
    {"unterminated_quote_in_command",
     "[services.web]\ncommand = \"echo 'hi\"\n",
     {"config.toml:2:11: services.web.command: unterminated single quote"}},
    {"toml_syntax_error",
     "[services.web]\ncommand = \"web\nrestart = \"no\"\n",
     {"config.toml:2:15: Error while parsing string: unescaped control characters other than TAB (U+0009) are explicitly prohibited"}},
    {"unknown_dependency",
     "[services.web]\ncommand = \"web\"\ndepends_on = [\"dbb\"]\n[services.db]\ncommand = \"db\"\n",
     {"config.toml:3:15: services.web.depends_on: unknown service \"dbb\"; did you mean \"db\"?"}},
    {"healthy_dependency_without_check",
     "[services.web]\ncommand = \"web\"\ndepends_on = { db = \"healthy\" }\n[services.db]\ncommand = \"db\"\n",
     {"config.toml:3:21: services.web.depends_on: \"db\" has no health check; condition \"healthy\" needs a [services.db.health] table"}},
    {"bad_dependency_condition",
     "[services.web]\ncommand = \"web\"\ndepends_on = [{ name = \"db\", condition = \"ready\" }]\n[services.db]\ncommand = \"db\"\n",
     {"config.toml:3:42: services.web.depends_on.condition: expected one of \"started\", \"healthy\", got \"ready\""}},
    {"duplicate_port",
     "[services.web]\ncommand = \"web\"\nport = 8080\n[services.api]\ncommand = \"api\"\nports = [9000, 8080]\n",
     {"config.toml:6:16: services.api: port 8080 is already claimed by service \"web\""}},
    {"port_is_listen_port",
     "[services.web]\ncommand = \"web\"\nport = 3080\n",
     {"config.toml:3:8: services.web: port 3080 is the daemon's listen_port"}},
    {"bad_port",
     "[services.web]\ncommand = \"web\"\nport = \"eighty\"\n",
     {"config.toml:3:8: services.web.port: expected a port number (1-65535) or \"auto\", got \"eighty\""}},
    {"invalid_health_url_scheme",
     "[services.web]\ncommand = \"web\"\nhealth = { http = \"https://127.0.0.1:8443/\" }\n",
     {"config.toml:3:19: services.web.health.http: only http:// URLs are supported, got \"https://127.0.0.1:8443/\""}},
    {"invalid_health_url_port",
     "[services.web]\ncommand = \"web\"\nhealth = { http = \"http://127.0.0.1:99999/x\" }\n",
     {"config.toml:3:19: services.web.health.http: invalid port \"99999\" in URL \"http://127.0.0.1:99999/x\""}},
    {"health_two_kinds",
     "[services.web]\ncommand = \"web\"\nhealth = { exec = \"true\", tcp = 80 }\n",
     {"config.toml:3:33: services.web.health.tcp: a health check takes exactly one of \"exec\", \"http\", \"tcp\""}},
    {"health_no_kind",
     "[services.web]\ncommand = \"web\"\n[services.web.health]\ninterval = \"1s\"\n",
     {"config.toml:3:1: [services.web.health]: expected one of \"exec\", \"http\", \"tcp\""}},
    {"health_port_without_service_port",
     "[services.web]\ncommand = \"web\"\nhealth = { tcp = \"127.0.0.1:${PORT}\" }\n",
     {"config.toml:3:18: services.web.health: uses $PORT but the service declares no port"}},
    {"env_file_missing",
     "[services.web]\ncommand = \"web\"\nenv_file = \"web.env\"\n",
     {"config.toml:3:12: services.web.env_file: cannot read \"/nonexistent/web.env\": No such file or directory"}},
    {"undefined_variable",
     "[services.web]\ncommand = \"web --home ${HOME} --key ${API_KEY}\"\n",
     {"config.toml:2:11: services.web.command: undefined variable ${API_KEY}; set it in the environment or in env/env_file"}},
    {"port_ref_to_portless_service",
     "[services.web]\ncommand = \"web ${services.db.port}\"\n[services.db]\ncommand = \"db\"\n",
     {"config.toml:2:11: services.web.command: ${services.db.port}: service \"db\" has no port"}},
    {"port_ref_to_unknown_service",
     "[services.web]\ncommand = \"web ${services.nope.port}\"\n",
     {"config.toml:2:11: services.web.command: ${services.nope.port} names unknown service \"nope\""}},
    {"bad_signal",
     "[services.web]\ncommand = \"web\"\nstop_signal = \"SIGFOO\"\n",
     {"config.toml:3:15: services.web.stop_signal: unknown signal \"SIGFOO\" (use a name such as \"TERM\" or a number)"}},
    {"bad_ready",
     "[services.web]\ncommand = \"web\"\nready = \"fd:1\"\n",
     {"config.toml:3:9: services.web.ready: expected \"exec\", \"notify\" or \"fd:N\" (N >= 3), got \"fd:1\""}},
    {"ready_timeout_not_a_duration",
     "[services.web]\ncommand = \"web\"\nready = \"notify\"\nready_timeout = 30\n",
     {"config.toml:4:17: services.web.ready_timeout: expected a duration string, got integer 30; use a string such as \"30s\""}},
    {"empty_image",
     "[services.web]\ncommand = \"web\"\nimage = \"\"\n",
     {"config.toml:3:9: services.web.image: must not be empty"}},
    {"trigger_without_id",
     "[[triggers]]\nsecret = \"x\"\n",
     {"config.toml:1:1: triggers: each [[triggers]] needs a non-empty string \"id\""}},
    {"http_unknown_key",
     "[http]\nmax_body = \"1MiB\"\n",
     {"config.toml:2:1: unknown key \"max_body\" in [http]; did you mean \"max_body_bytes\"?"}},
    {"cycle",
     "[services.a]\ncommand = \"a\"\ndepends_on = [\"b\"]\n[services.b]\ncommand = \"b\"\ndepends_on = [\"c\"]\n"
     "[services.c]\ncommand = \"c\"\ndepends_on = [\"a\"]\n",
     {"config.toml:1:1: dependency cycle: a -> b -> c -> a"}},
};

}  // namespace

class MalformedConfig : public ::testing::TestWithParam<Case> {};

TEST_P(MalformedConfig, ReportsExactError) {
  EXPECT_EQ(errors_of(GetParam().toml), GetParam().errors);
}

INSTANTIATE_TEST_SUITE_P(Errors, MalformedConfig, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Errors, AllMistakesReportedInFileOrder) {
  auto errors = errors_of(R"([services.web]
comand = "web"
restart = "sometimes"
stop_timeout = 10
port = 8080
depends_on = ["ghost"]

[services.api]
command = "api"
port = 8080
)");
  std::vector<std::string> want = {
      "config.toml:1:1: [services.web]: missing required key \"command\"",
      "config.toml:2:1: unknown key \"comand\" in [services.web]; did you mean \"command\"?",
      "config.toml:3:11: services.web.restart: expected one of \"no\", \"on-failure\", \"always\", got \"sometimes\"",
      "config.toml:4:16: services.web.stop_timeout: expected a duration string, got integer 10; use a string such as \"10s\"",
      "config.toml:6:15: services.web.depends_on: unknown service \"ghost\"",
      "config.toml:10:8: services.api: port 8080 is already claimed by service \"web\"",
  };
  EXPECT_EQ(errors, want);
}

TEST(Errors, EnvFileLineErrorsNameTheEnvFile) {
  auto dir = std::filesystem::path(::testing::TempDir()) / ("dockless_envfile_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "bad.env") << "GOOD=1\nthis is not an assignment\n";
  auto r = config::parse_string("[services.web]\ncommand = \"web\"\nenv_file = \"bad.env\"\n", "config.toml",
                                dir.string(), test_inputs({}));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(), (dir / "bad.env").string() + ":2:1: expected KEY=VALUE");
}
