// `dockless top`'s pure text: the ▁..█ sparkline (buckets, gaps, right-aligned short series)
// and the screen for a GET /v1/history answer. The live loop is tests/cli/top_test.py's.
#include <gtest/gtest.h>

#include "tools/cli/cli_top.hpp"

using namespace tools::cli;
using nlohmann::json;

namespace {

std::vector<std::optional<double>> v(std::initializer_list<std::optional<double>> l) { return l; }

TEST(TextSparkline, OneCharacterPerValueScaledToTheMaximum) {
  EXPECT_EQ(text_sparkline(v({0, 50, 100}), 3), "▁▅█");
  EXPECT_EQ(text_sparkline(v({0, 0}), 2), "▁▁");
  EXPECT_EQ(text_sparkline(v({10, 20}), 2, 100.0), "▂▂");
}

TEST(TextSparkline, GapsAreSpacesAndShortSeriesEndAtTheRight) {
  EXPECT_EQ(text_sparkline(v({100, std::nullopt, 100}), 3), "█ █");
  EXPECT_EQ(text_sparkline(v({100}), 4), "   █");
  EXPECT_EQ(text_sparkline({}, 3), "   ");
  EXPECT_EQ(text_sparkline(v({1}), 0), "");
}

TEST(TextSparkline, LongSeriesAreBucketedByTheirHighestValue) {
  std::vector<std::optional<double>> s(360, 0.0);
  s[100] = 80;  // one spike in the second bucket of four
  s[359] = 40;
  EXPECT_EQ(text_sparkline(s, 4), "▁█▁▅");
}

TEST(RenderTop, NodeLineThenARowPerService) {
  const json h = json::parse(R"({
    "node": {"cpus": 4, "load": [0.5, 0.25, 1.0],
             "memory": {"total_bytes": 8589934592, "available_bytes": 4294967296},
             "disk": {"total_bytes": 10737418240, "available_bytes": 5368709120}},
    "services": [
      {"name": "busy", "state": "running", "restarts": 2, "cpu_percent": [50.0, 99.0], "memory_bytes": [1048576, 2097152], "events": []},
      {"name": "idle", "state": "stopped", "restarts": 0, "cpu_percent": [3.0, null], "memory_bytes": [1024, null], "events": []}
    ]})");
  const std::string s = render_top(h, false, 100);
  EXPECT_NE(s.find("load 0.50 0.25 1.00 (4 CPUs)   mem 4.0G/8.0G   disk 5.0G/10.0G\n\n"), std::string::npos) << s;
  EXPECT_NE(s.find("NAME"), std::string::npos);
  EXPECT_NE(s.find("CPU, LAST HOUR"), std::string::npos);
  const auto busy = s.substr(s.find("busy"));
  EXPECT_NE(busy.substr(0, busy.find('\n')).find("99%"), std::string::npos) << s;
  EXPECT_NE(busy.find("2.0M"), std::string::npos) << s;
  EXPECT_NE(busy.find("▅█"), std::string::npos) << s;
  // Not running: no "now" figures, the last hour still shown.
  const auto idle = s.substr(s.find("idle"));
  EXPECT_EQ(idle.substr(0, idle.find('\n')).substr(0, 31), "idle   stopped   -     -      0") << s;
}

TEST(RenderTop, ToleratesAnEmptyAnswer) {
  EXPECT_NE(render_top(json::object(), false, 80).find("NAME"), std::string::npos);
  EXPECT_NE(render_top(json::array(), false, 80).find("NAME"), std::string::npos);
}

}  // namespace
