// A service's resource limits in its spec JSON (GET /v1/services/NAME): each under its config
// key, in a form the key accepts back, so a spec read from the API registers again unchanged.
#include <gtest/gtest.h>

#include "http/api/handlers.hpp"

namespace api = http::api;
using nlohmann::json;

namespace {

config::ServiceContext context() {
  config::ServiceContext ctx;
  ctx.base_dir = "/nonexistent";
  ctx.inputs.env = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  ctx.inputs.read_file = config::map_files({});
  return ctx;
}

api::ParsedSpec parse(const json& body) {
  http::Request req;
  req.method = "POST";
  req.headers.add("Content-Type", "application/json");
  req.body = body.dump();
  return api::parse_spec_body(req, context(), "");
}

}  // namespace

TEST(SpecLimits, ShownUnderTheirKeysAndAcceptedBack) {
  const json body = {{"name", "web"},           {"command", {"web"}},       {"memory_max", "512M"},
                     {"memory_high", "40%"},    {"memory_swap_max", "max"}, {"cpu_max", "1.5"},
                     {"cpu_weight", 200},       {"io_weight", 50},          {"pids_max", 64}};
  api::ParsedSpec first = parse(body);
  ASSERT_TRUE(first.spec) << (first.error ? first.error->body : "");
  const json j = api::spec_json(*first.spec, api::Disclosure::config);
  EXPECT_EQ(j["memory_max"], 512 * 1024 * 1024);
  EXPECT_EQ(j["memory_high"], "40%");
  EXPECT_EQ(j["memory_swap_max"], "max");
  EXPECT_EQ(j["cpu_max"], "150%");
  EXPECT_EQ(j["cpu_weight"], 200);
  EXPECT_EQ(j["io_weight"], 50);
  EXPECT_EQ(j["pids_max"], 64);

  json again = {{"name", "web"}, {"command", {"web"}}};
  for (const char* key : {"memory_max", "memory_high", "memory_swap_max", "cpu_max", "cpu_weight", "io_weight", "pids_max"})
    again[key] = j[key];
  api::ParsedSpec second = parse(again);
  ASSERT_TRUE(second.spec) << (second.error ? second.error->body : "");
  EXPECT_EQ(second.spec->limits, first.spec->limits);
}

TEST(SpecLimits, UnsetLimitsAreAbsent) {
  api::ParsedSpec p = parse({{"name", "web"}, {"command", {"web"}}, {"pids_max", "max"}});
  ASSERT_TRUE(p.spec);
  const json j = api::spec_json(*p.spec);
  EXPECT_EQ(j["pids_max"], "max");
  for (const char* key : {"memory_max", "memory_high", "memory_swap_max", "cpu_max", "cpu_weight", "io_weight"})
    EXPECT_FALSE(j.contains(key)) << key;
}

TEST(SpecLimits, BadLimitIsAFieldError) {
  api::ParsedSpec p = parse({{"name", "web"}, {"command", {"web"}}, {"memory_max", "12X"}});
  ASSERT_TRUE(p.error);
  EXPECT_EQ(p.error->status, 422);
  const json detail = json::parse(p.error->body)["detail"];
  ASSERT_EQ(detail.size(), 1u);
  EXPECT_EQ(detail[0]["field"], "memory_max");
  EXPECT_EQ(detail[0]["message"],
            "services.web.memory_max: \"12X\" is not a size; use e.g. \"512M\" or \"1G\", \"50%\" or \"max\"");
}
