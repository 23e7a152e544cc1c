// [[triggers]] in the orchestrator design's form: provider aliases, match.events forms,
// handler, secrets by reference, a2a-push, [orchestrator].
#include <gtest/gtest.h>

#include "config/config.hpp"
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
  EXPECT_EQ(errors_of(r), "config.toml:7:10: triggers.t.secret: a \"whsec_\" secret must be followed by standard base64\n");
}

TEST(Triggers, GithubEventDotActionIsKept) {
  auto r = parse(std::string(kWeb) + "[[triggers]]\nid = \"t\"\nkind = \"webhook\"\nprovider = \"github\"\n"
                                     "match = { events = [\"issues.opened\", \"push\"] }\n"
                                     "secret = \"s\"\naction = { restart = \"web\" }\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->triggers[0].events, (std::vector<std::string>{"issues.opened", "push"}));
}
