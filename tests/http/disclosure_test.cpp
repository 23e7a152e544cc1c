// What public readers, key holders and ?secrets=1 see (http/api/disclosure.hpp), on plain
// values: a spec rendered for each, and events.log lines filtered for public readers.
#include <gtest/gtest.h>

#include "http/api/disclosure.hpp"
#include "http/api/handlers.hpp"

namespace api = http::api;
using nlohmann::json;

namespace {

config::ServiceSpec secret_spec() {
  config::ServiceSpec s;
  s.name = "web";
  s.command = {"server", "--token", "cmd-token-7f3a"};
  s.env = {{"API_TOKEN", "env-secret-91bc"}, {"MODE", "prod"}};
  s.env_files = {"/etc/web.env"};
  config::HealthCheck h;
  h.exec = {"probe", "--token", "probe-token-55aa"};
  s.health = h;
  s.docker_args = {"-e", "DB_PASSWORD=docker-secret-2d2d"};
  return s;
}

bool mentions(const json& j, std::string_view needle) { return j.dump().find(needle) != std::string::npos; }

}  // namespace

TEST(Disclosure, PublicReadersSeeNoCommandLineNorEnvValue) {
  const json j = api::spec_json(secret_spec(), api::Disclosure::state);
  for (const char* secret : {"cmd-token-7f3a", "env-secret-91bc", "probe-token-55aa", "docker-secret-2d2d", "prod"})
    EXPECT_FALSE(mentions(j, secret)) << secret << " in " << j.dump();
  EXPECT_TRUE(j["command"].is_null());
  EXPECT_TRUE(j["health"]["exec"].is_null());
  EXPECT_TRUE(j["docker_args"].is_null());
  EXPECT_EQ(j["env"], json({{"API_TOKEN", nullptr}, {"MODE", nullptr}}));  // names stay
  EXPECT_EQ(j["env_file"], json({"/etc/web.env"}));                         // the path, not its contents
  EXPECT_TRUE(j["env_redacted"].get<bool>());
}

TEST(Disclosure, KeyHoldersSeeCommandsButEnvValuesOnlyWithSecrets) {
  const json conf = api::spec_json(secret_spec(), api::Disclosure::config);
  EXPECT_EQ(conf["command"], json({"server", "--token", "cmd-token-7f3a"}));
  EXPECT_EQ(conf["health"]["exec"][2], "probe-token-55aa");
  EXPECT_FALSE(mentions(conf, "env-secret-91bc"));
  EXPECT_TRUE(conf["env"]["API_TOKEN"].is_null());
  const json all = api::spec_json(secret_spec(), api::Disclosure::secrets);
  EXPECT_EQ(all["env"]["API_TOKEN"], "env-secret-91bc");
  EXPECT_FALSE(all["env_redacted"].get<bool>());
}

TEST(Disclosure, OnlyTrustedPrincipalsAreKeyHolders) {
  http::Principal p;
  EXPECT_EQ(api::disclosure_for(p), api::Disclosure::state);  // the default: least trust
  p.access = http::Principal::Access::key;
  EXPECT_EQ(api::disclosure_for(p), api::Disclosure::config);
  p.access = http::Principal::Access::local;
  EXPECT_EQ(api::disclosure_for(p), api::Disclosure::config);
  http::Request req;
  const auto refused = api::require_key(req, "this");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  EXPECT_TRUE(refused->headers.has("WWW-Authenticate"));
  req.principal.access = http::Principal::Access::key;
  EXPECT_FALSE(api::require_key(req, "this"));
}

TEST(Disclosure, PublicEventsCarryNoRequestDataNorCommand) {
  auto line = [](std::string text) { return api::public_event_line({1, std::move(text)}); };
  // Webhook deliveries and what they led to: client-chosen ids and text.
  for (const char* kind : {"trigger_delivery", "trigger_action", "trigger_job_finished", "secrets_read"})
    EXPECT_FALSE(line(std::string(R"({"seq":1,"service":null,"kind":")") + kind + R"(","delivery":"x"})")) << kind;
  EXPECT_FALSE(line(R"({"seq":1,"kind":"no_such_kind"})"));  // unknown: not shown
  EXPECT_FALSE(line("not json"));
  const std::string exited = R"({"seq":3,"time":"t","service":"web","kind":"exited","code":3})";
  EXPECT_EQ(line(exited), exited);  // untouched, byte for byte
  const auto started = line(R"({"seq":2,"time":"t","service":"web","kind":"started","pid":7,"command":["a","tok"]})");
  ASSERT_TRUE(started);
  EXPECT_EQ(*started, R"({"seq":2,"time":"t","service":"web","kind":"started","pid":7})");  // order kept
  // A reload's plan names old and new command lines: public readers get the service names only.
  const auto reloaded = line(
      R"({"seq":4,"kind":"reload_succeeded","changed":["web"],"plan":{"services":{"restarted":[{"name":"web"}]}}})");
  ASSERT_TRUE(reloaded);
  EXPECT_EQ(*reloaded, R"({"seq":4,"kind":"reload_succeeded","changed":["web"]})");
  EXPECT_FALSE(api::public_event_kind(actors::EventType::trigger_delivery));
  EXPECT_TRUE(api::public_event_kind(actors::EventType::exited));
}
