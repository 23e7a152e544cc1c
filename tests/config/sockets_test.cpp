// `sockets = [...]`: every form read back, default names, and each mistake as its exact
// "file:line:col: message".
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "test_inputs.hpp"

namespace {

using config::Socket;

config::ParseResult parse(std::string_view text) {
  return config::parse_string(text, "config.toml", "/nonexistent", test_inputs({{"SOCKDIR", "/run/app"}}));
}

std::vector<std::string> errors_of(std::string_view text) {
  auto r = parse(text);
  std::vector<std::string> out;
  for (const auto& e : r.errors) out.push_back(e.to_string());
  EXPECT_EQ(r.config.has_value(), out.empty());
  return out;
}

TEST(Sockets, EveryFormReadBack) {
  auto r = parse(R"(
[services.web]
command = "web"
sockets = [
  { listen = "0.0.0.0:8080", name = "http", backlog = 16, reuse_port = true },
  { listen = "[::1]:8443" },
  { listen = "127.0.0.1:5353", type = "datagram" },
  { listen = "${SOCKDIR}/app.sock", mode = "0660", user = "root", group = "0" },
  { listen = "/run/log.sock", type = "datagram", mode = 0o600 },
]
)");
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  const auto& s = r.config->find("web")->sockets;
  ASSERT_EQ(s.size(), 5u);
  EXPECT_TRUE(s[0].tcp());
  EXPECT_EQ(s[0].address, "0.0.0.0");
  EXPECT_EQ(s[0].port, 8080);
  EXPECT_EQ(s[0].name, "http");
  EXPECT_EQ(s[0].backlog, 16);
  EXPECT_TRUE(s[0].reuse_port);
  EXPECT_EQ(s[0].describe(), "tcp 0.0.0.0:8080");
  EXPECT_TRUE(s[1].ipv6);
  EXPECT_EQ(s[1].address, "::1");
  EXPECT_EQ(s[1].name, "tcp-8443");
  EXPECT_EQ(s[1].backlog, Socket::kDefaultBacklog);
  EXPECT_EQ(s[1].describe(), "tcp [::1]:8443");
  EXPECT_TRUE(s[2].udp());
  EXPECT_EQ(s[2].name, "udp-5353");
  EXPECT_EQ(s[3].family, Socket::Family::unix_path);
  EXPECT_EQ(s[3].path, "/run/app/app.sock");
  EXPECT_EQ(s[3].name, "app.sock");
  EXPECT_EQ(s[3].mode, 0660u);
  EXPECT_EQ(s[3].user, "root");
  EXPECT_EQ(s[3].group, "0");
  EXPECT_EQ(s[3].describe(), "unix /run/app/app.sock");
  EXPECT_EQ(s[4].type, Socket::Type::datagram);
  EXPECT_EQ(s[4].mode, 0600u);
  EXPECT_EQ(s[4].describe(), "unix-dgram /run/log.sock");
  // No `port`: $PORT (and a health check's) is the first TCP socket's.
  EXPECT_EQ(r.config->find("web")->first_tcp_socket_port(), 8080);
}

TEST(Sockets, HealthCheckPortFromTheFirstTcpSocket) {
  auto r = parse("[services.web]\ncommand = \"web\"\nsockets = [{ listen = \"127.0.0.1:9000\" }]\n"
                 "health = { tcp = \"127.0.0.1:$PORT\" }\n");
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
}

TEST(Sockets, ChangeNeedsARestart) {
  auto spec = [](std::string_view sockets) {
    auto r = parse("[services.web]\ncommand = \"web\"\n" + std::string(sockets));
    EXPECT_TRUE(r.ok());
    return *r.config->find("web");
  };
  const auto a = spec("sockets = [{ listen = \"127.0.0.1:9000\" }]\n");
  EXPECT_EQ(config::classify_change(a, spec("sockets = [{ listen = \"127.0.0.1:9000\" }]\n")), config::SpecChange::none);
  EXPECT_EQ(config::classify_change(a, spec("sockets = [{ listen = \"127.0.0.1:9001\" }]\n")), config::SpecChange::restart);
  EXPECT_EQ(config::classify_change(a, spec("sockets = [{ listen = \"127.0.0.1:9000\", backlog = 5 }]\n")),
            config::SpecChange::restart);
  EXPECT_EQ(config::classify_change(a, spec("")), config::SpecChange::restart);
}

TEST(Sockets, SameServiceMayBindOnePortOnTwoAddresses) {
  auto r = parse("[services.web]\ncommand = \"web\"\nsockets = [{ listen = \"127.0.0.1:9000\", name = \"v4\" }, "
                 "{ listen = \"[::1]:9000\", name = \"v6\" }]\n"
                 "[services.dns]\ncommand = \"dns\"\nsockets = [{ listen = \"127.0.0.1:9000\", type = \"datagram\" }]\n");
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
}

struct Case {
  const char* name;
  const char* toml;
  std::vector<std::string> errors;
};

const std::string kHead = "[services.web]\ncommand = \"web\"\n";

const Case kCases[] = {
    {"unknown_key", "sockets = [{ listen = \"127.0.0.1:1\", backlg = 3 }]\n",
     {"config.toml:3:38: unknown key \"backlg\" in [services.web.sockets[0]]; did you mean \"backlog\"?"}},
    {"missing_listen", "sockets = [{ name = \"x\" }]\n",
     {"config.toml:3:12: services.web.sockets[0]: missing required key \"listen\" (\"HOST:PORT\" (an IP address: "
      "\"0.0.0.0:8080\", \"[::1]:8080\") or an absolute unix socket path)"}},
    {"not_an_array", "sockets = \"127.0.0.1:1\"\n",
     {"config.toml:3:11: services.web.sockets: expected an array of tables ({ listen = \"0.0.0.0:8080\" }), got string"}},
    {"host_name", "sockets = [{ listen = \"localhost:80\" }]\n",
     {"config.toml:3:23: services.web.sockets[0].listen: \"localhost\" is not an IPv4 address (host names are not "
      "resolved; use e.g. \"127.0.0.1\" or \"0.0.0.0\")"}},
    {"no_port", "sockets = [{ listen = \"8080\" }]\n",
     {"config.toml:3:23: services.web.sockets[0].listen: expected \"HOST:PORT\" (an IP address: \"0.0.0.0:8080\", "
      "\"[::1]:8080\") or an absolute unix socket path, got \"8080\""}},
    {"port_range", "sockets = [{ listen = \"0.0.0.0:70000\" }]\n",
     {"config.toml:3:23: services.web.sockets[0].listen: expected a port between 1 and 65535, got \"70000\""}},
    {"v6_without_brackets", "sockets = [{ listen = \"::1:80\" }]\n",
     {"config.toml:3:23: services.web.sockets[0].listen: an IPv6 address needs brackets: \"[::1]:80\""}},
    {"relative_path", "sockets = [{ listen = \"run/app.sock\" }]\n",
     {"config.toml:3:23: services.web.sockets[0].listen: a unix socket path must be absolute, got \"run/app.sock\""}},
    {"bad_type", "sockets = [{ listen = \"/run/a.sock\", type = \"seqpacket\" }]\n",
     {"config.toml:3:45: services.web.sockets[0].type: expected one of \"stream\", \"datagram\", got \"seqpacket\""}},
    {"mode_on_tcp", "sockets = [{ listen = \"127.0.0.1:1\", mode = \"0600\" }]\n",
     {"config.toml:3:45: services.web.sockets[0].mode: only for unix socket paths"}},
    {"bad_mode", "sockets = [{ listen = \"/run/a.sock\", mode = \"rw\" }]\n",
     {"config.toml:3:45: services.web.sockets[0].mode: expected an octal file mode such as \"0660\" (at most \"0777\")"}},
    {"backlog_on_datagram", "sockets = [{ listen = \"127.0.0.1:1\", type = \"datagram\", backlog = 3 }]\n",
     {"config.toml:3:67: services.web.sockets[0].backlog: only for stream sockets"}},
    {"bad_name", "sockets = [{ listen = \"127.0.0.1:1\", name = \"a:b\" }]\n",
     {"config.toml:3:45: services.web.sockets[0].name: \"a:b\" is not a valid LISTEN_FDNAMES name: 1-255 of A-Z "
      "a-z 0-9 . _ - @ +"}},
    {"duplicate_name", "sockets = [{ listen = \"127.0.0.1:1\", name = \"a\" }, { listen = \"127.0.0.1:2\", name = \"a\" }]\n",
     {"config.toml:3:52: services.web.sockets[1]: name \"a\" is already used by tcp 127.0.0.1:1; give each socket a "
      "distinct `name`"}},
    {"duplicate_listen", "sockets = [{ listen = \"127.0.0.1:1\" }, { listen = \"127.0.0.1:1\" }]\n",
     {"config.toml:3:40: services.web.sockets[1]: tcp 127.0.0.1:1 is listed twice"}},
    {"also_in_ports", "port = 9000\nsockets = [{ listen = \"127.0.0.1:9000\" }]\n",
     {"config.toml:4:12: services.web.sockets[0]: port 9000 is also in `port`/`ports`, which the service binds "
      "itself; a socket's port is bound by the daemon (and is $PORT when there is no `port`): drop it there"}},
    {"ready_fd_clash", "ready = \"fd:3\"\nsockets = [{ listen = \"127.0.0.1:9000\" }]\n",
     {"config.toml:3:9: services.web.ready: fd:3 is one of the sockets' fds (3-3); use fd:4 or above"}},
    {"container", "image = \"nginx\"\nsockets = [{ listen = \"127.0.0.1:9000\" }]\n",
     {"config.toml:4:11: services.web.sockets: not for a container service: the daemon passes sockets to native "
      "processes only; publish the container's port with docker_args (e.g. \"-p 8080:8080\")"}},
    {"listen_port", "sockets = [{ listen = \"127.0.0.1:3080\" }]\n",
     {"config.toml:3:12: services.web.sockets[0]: port 3080 is the daemon's listen_port"}},
    {"claimed_by_ports_of_another",
     "sockets = [{ listen = \"127.0.0.1:9000\" }]\n[services.api]\ncommand = \"api\"\nport = 9000\n",
     {"config.toml:6:8: services.api: port 9000 is already claimed by service \"web\""}},
    {"claimed_by_socket_of_another",
     "sockets = [{ listen = \"/run/a.sock\" }, { listen = \"0.0.0.0:53\", type = \"datagram\" }]\n"
     "[services.api]\ncommand = \"api\"\nsockets = [{ listen = \"/run/a.sock\" }, { listen = \"127.0.0.1:53\", type = "
     "\"datagram\" }]\n",
     {"config.toml:6:12: services.api.sockets[0]: unix socket /run/a.sock is already claimed by service \"web\"",
      "config.toml:6:40: services.api.sockets[1]: udp port 53 is already claimed by service \"web\""}},
    {"overlap_without_sockets", "ready = \"notify\"\nrestart_mode = \"overlap\"\n",
     {"config.toml:4:16: services.web.restart_mode: \"overlap\" needs `sockets`: the new instance must take over "
      "the same listening sockets while the old one still runs"}},
    {"overlap_without_notify", "restart_mode = \"overlap\"\nsockets = [{ listen = \"127.0.0.1:9000\" }]\n",
     {"config.toml:3:16: services.web.restart_mode: \"overlap\" needs ready = \"notify\": the old instance is "
      "stopped only once the new one sends READY=1"}},
    {"bad_restart_mode", "restart_mode = \"rolling\"\n",
     {"config.toml:3:16: services.web.restart_mode: expected one of \"stop-first\", \"overlap\", got \"rolling\""}},
    {"lazy_without_sockets", "start_on = \"connection\"\n",
     {"config.toml:3:12: services.web.start_on: \"connection\" needs `sockets`: the daemon starts the service when "
      "one of them becomes readable"}},
    {"bad_start_on", "start_on = \"demand\"\n",
     {"config.toml:3:12: services.web.start_on: expected one of \"boot\", \"connection\", got \"demand\""}},
};

TEST(Sockets, Errors) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(errors_of(kHead + c.toml), c.errors);
  }
}

TEST(Sockets, ModesDefaultAndChangeTheFingerprint) {
  auto r = parse(kHead + "restart_mode = \"stop-first\"\nstart_on = \"boot\"\n");
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  const config::ServiceSpec& s = *r.config->find("web");
  EXPECT_EQ(s.restart_mode, config::RestartMode::stop_first);
  EXPECT_EQ(s.start_on, config::StartOn::boot);
  config::ServiceSpec other = s;
  other.start_on = config::StartOn::connection;
  EXPECT_NE(s.fingerprint(), other.fingerprint());
}

TEST(Sockets, LazyStartWithSocketsIsAccepted) {
  auto r = parse(kHead + "start_on = \"connection\"\nsockets = [{ listen = \"127.0.0.1:9000\" }]\n");
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  EXPECT_EQ(r.config->find("web")->start_on, config::StartOn::connection);
}

TEST(Sockets, OverlapWithSocketsAndNotifyIsAccepted) {
  auto r = parse(kHead + "ready = \"notify\"\nrestart_mode = \"overlap\"\nsockets = [{ listen = \"127.0.0.1:9000\" }]\n");
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  EXPECT_EQ(r.config->find("web")->restart_mode, config::RestartMode::overlap);
}

}  // namespace
