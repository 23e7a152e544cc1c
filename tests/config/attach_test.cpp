// attach = { pid_file, control }: parsed with its fixed follow-the-pid-file policy; every key
// that only means something for a launched process is an error at its own position.
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "test_inputs.hpp"

namespace {

config::ParseResult parse(std::string_view text) {
  return config::parse_string(text, "config.toml", "/etc/dockless", test_inputs({}));
}

std::string errors_of(const config::ParseResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.to_string() + "\n";
  return out;
}

TEST(Attach, ParsesWithTheFixedPolicy) {
  auto r = parse("[services.ngx]\nattach = { pid_file = \"run/ngx.pid\", control = true }\nport = 8080\n"
                 "stop_signal = \"QUIT\"\nhealth = { tcp = \"127.0.0.1:${PORT}\" }\ndepends_on = []\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const config::ServiceSpec& s = r.config->services.at(0);
  ASSERT_TRUE(s.attach);
  EXPECT_EQ(s.attach->pid_file, "/etc/dockless/run/ngx.pid");  // relative to the config's directory
  EXPECT_TRUE(s.attach->control);
  EXPECT_TRUE(s.command.empty());
  EXPECT_EQ(s.restart, config::RestartPolicy::always);
  EXPECT_EQ(s.restart_delay, config::kAttachPoll);
  EXPECT_EQ(s.restart_delay_max, config::kAttachPoll);
  EXPECT_EQ(s.restart_limit, 0);
  EXPECT_EQ(s.stop_signal, 3);
}

TEST(Attach, ControlDefaultsToReadOnlyAndChangesTheFingerprint) {
  auto a = parse("[services.x]\nattach = { pid_file = \"/run/x.pid\" }\n");
  auto b = parse("[services.x]\nattach = { pid_file = \"/run/x.pid\", control = true }\n");
  ASSERT_TRUE(a.ok() && b.ok()) << errors_of(a) << errors_of(b);
  EXPECT_FALSE(a.config->services[0].attach->control);
  EXPECT_NE(a.config->services[0].fingerprint(), b.config->services[0].fingerprint());
}

TEST(Attach, ErrorsNameTheKey) {
  const std::pair<std::string, std::string> cases[] = {
      {"[services.a]\ncommand = \"x\"\nattach = { pid_file = \"/run/a.pid\" }\n",
       "config.toml:2:11: services.a.command: attach and command are mutually exclusive\n"},
      {"[services.a]\nattach = { pid_file = \"/run/a.pid\" }\nimage = \"nginx\"\n",
       "config.toml:3:9: services.a.image: attach and image are mutually exclusive\n"},
      {"[services.a]\nattach = { pid_file = \"/run/a.pid\" }\nrestart_limit = 3\n",
       "config.toml:3:17: services.a.restart_limit: makes no sense for an attached service (attach): Dockless "
       "does not start it\n"},
      {"[services.a]\nattach = { pid_file = \"/run/a.pid\" }\nuser = \"nobody\"\n",
       "config.toml:3:8: services.a.user: makes no sense for an attached service (attach): Dockless does "
       "not start it\n"},
      {"[services.a]\nattach = { control = true }\n",
       "config.toml:2:10: services.a.attach: missing required key \"pid_file\"\n"},
      {"[services.a]\nattach = \"/run/a.pid\"\n",
       "config.toml:2:10: services.a.attach: expected a table { pid_file = \"...\", control = false }, got string\n"},
      {"[services.a]\nattach = { pid_file = \"/run/a.pid\" }\nport = \"auto\"\n",
       "config.toml:3:8: services.a.port: \"auto\" makes no sense for an attached service (attach): name the port "
       "it listens on\n"},
      {"[services.a]\nattach = { pid_file = \"/run/a.pid\" }\nhealth = { tcp = 80, restart_on_unhealthy = true }\n",
       "config.toml:3:10: services.a.health.restart_on_unhealthy: makes no sense for an attached service (attach): "
       "Dockless cannot restart it\n"},
  };
  for (const auto& [text, want] : cases) {
    auto r = parse(text);
    EXPECT_FALSE(r.ok()) << text;
    EXPECT_EQ(errors_of(r), want) << text;
  }
}

}  // namespace
