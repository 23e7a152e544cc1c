// The CLI's pure formatting: durations, CPU time, sizes, the ps table, events.
#include <gtest/gtest.h>

#include <cstdlib>

#include "tools/cli/cli_format.hpp"

using namespace tools::cli;
using nlohmann::json;

TEST(FormatDuration, TwoLargestUnitsTruncated) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(-5), "0s");
  EXPECT_EQ(format_duration(std::nan("")), "0s");
  EXPECT_EQ(format_duration(0.9), "0s");
  EXPECT_EQ(format_duration(42.7), "42s");
  EXPECT_EQ(format_duration(59.99), "59s");
  EXPECT_EQ(format_duration(60), "1m0s");
  EXPECT_EQ(format_duration(192), "3m12s");
  EXPECT_EQ(format_duration(3599), "59m59s");
  EXPECT_EQ(format_duration(3600), "1h0m");
  EXPECT_EQ(format_duration(2 * 3600 + 5 * 60 + 59), "2h5m");
  EXPECT_EQ(format_duration(86399), "23h59m");
  EXPECT_EQ(format_duration(86400), "1d0h");
  EXPECT_EQ(format_duration(4 * 86400 + 3600 + 1800), "4d1h");
  EXPECT_EQ(format_duration(400 * 86400.0), "400d0h");
}

TEST(FormatCpu, TenthsThenDuration) {
  EXPECT_EQ(format_cpu(0), "0.0s");
  EXPECT_EQ(format_cpu(0.04), "0.0s");
  EXPECT_EQ(format_cpu(1.23), "1.2s");
  EXPECT_EQ(format_cpu(1.29), "1.2s");
  EXPECT_EQ(format_cpu(59.99), "59.9s");
  EXPECT_EQ(format_cpu(61), "1m1s");
  EXPECT_EQ(format_cpu(7300), "2h1m");
}

TEST(FormatBytes, BinaryUnitsOneDecimal) {
  EXPECT_EQ(format_bytes(-1), "0B");
  EXPECT_EQ(format_bytes(0), "0B");
  EXPECT_EQ(format_bytes(512), "512B");
  EXPECT_EQ(format_bytes(1023), "1023B");
  EXPECT_EQ(format_bytes(1024), "1.0K");
  EXPECT_EQ(format_bytes(1536), "1.5K");
  EXPECT_EQ(format_bytes(12897485), "12.3M");
  EXPECT_EQ(format_bytes(1048575), "1.0M");  // never "1024.0K"
  EXPECT_EQ(format_bytes(1181116006), "1.1G");
  EXPECT_EQ(format_bytes(2199023255552LL), "2.0T");
}

TEST(Table, ColumnsAlignedWithoutEscapeCodesCounted) {
  std::vector<std::vector<Cell>> rows = {{{"NAME"}, {"STATE"}, {"PID"}},
                                         {{"web"}, {"running", Colour::green}, {"12"}},
                                         {{"worker-long"}, {"failed", Colour::red}, {"-"}}};
  EXPECT_EQ(render_table(rows, false),
            "NAME          STATE     PID\n"
            "web           running   12\n"
            "worker-long   failed    -\n");
  std::string coloured = render_table(rows, true);
  EXPECT_NE(coloured.find("\033[32mrunning\033[0m   12\n"), std::string::npos) << coloured;
  EXPECT_NE(coloured.find("\033[31mfailed\033[0m    -\n"), std::string::npos) << coloured;
}

TEST(StateCell, ColoursByStateAndExit) {
  EXPECT_EQ(state_cell({{"state", "running"}}).colour, Colour::green);
  for (const char* s : {"starting", "stopping", "backoff"})
    EXPECT_EQ(state_cell({{"state", s}}).colour, Colour::yellow) << s;
  EXPECT_EQ(state_cell({{"state", "failed"}}).colour, Colour::red);
  EXPECT_EQ(state_cell({{"state", "stopped"}}).colour, Colour::grey);
  Cell ok = state_cell({{"state", "exited"}, {"exit_code", 0}, {"exit_signal", nullptr}});
  EXPECT_EQ(ok.text, "exited(0)");
  EXPECT_EQ(ok.colour, Colour::grey);
  Cell bad = state_cell({{"state", "exited"}, {"exit_code", 3}, {"exit_signal", nullptr}});
  EXPECT_EQ(bad.text, "exited(3)");
  EXPECT_EQ(bad.colour, Colour::red);
  Cell killed = state_cell({{"state", "exited"}, {"exit_code", nullptr}, {"exit_signal", "SIGKILL"}});
  EXPECT_EQ(killed.text, "exited(SIGKILL)");
  EXPECT_EQ(killed.colour, Colour::red);
}

TEST(Ps, RendersServiceObjects) {
  json services = json::parse(R"([
    {"name":"api","state":"running","pid":4242,"restarts":2,"uptime_seconds":192.5,
     "health":"healthy","cpu_seconds":1.25,"rss_bytes":12897485,"ports":[8080,8081]},
    {"name":"batch","state":"stopped","pid":null,"restarts":0,"uptime_seconds":null,
     "health":"none","cpu_seconds":null,"rss_bytes":null,"ports":[]}
  ])");
  EXPECT_EQ(render_ps(services, false),
            "NAME    STATE     PID    UPTIME   RESTARTS   HEALTH    CPU    MEM     PORTS\n"
            "api     running   4242   3m12s    2          healthy   1.2s   12.3M   8080,8081\n"
            "batch   stopped   -      -        0          -         -      -       -\n");
  EXPECT_EQ(render_ps(json::array(), false),
            "NAME   STATE   PID   UPTIME   RESTARTS   HEALTH   CPU   MEM   PORTS\n");
}

TEST(Events, OneLineWithDetails) {
  json ev = json::parse(
      R"({"seq":7,"time":"2026-01-02T03:04:05.678Z","service":"web","kind":"exited","exit_code":3,"reason":"bad thing"})");
  EXPECT_EQ(render_event(ev), "2026-01-02T03:04:05.678Z  web  exited  exit_code=3  reason=\"bad thing\"");
  json daemon = json::parse(R"({"seq":1,"time":"T","service":null,"kind":"daemon_started","pid":9})");
  EXPECT_EQ(render_event(daemon), "T  dockless  daemon_started  pid=9");
}

TEST(Colour, NoColorDisablesEvenOnATty) {
  // stdin of a test is not a TTY under meson either way; NO_COLOR must win regardless.
  ::setenv("NO_COLOR", "1", 1);
  EXPECT_FALSE(colour_enabled(0));
  ::unsetenv("NO_COLOR");
  EXPECT_EQ(paint("x", Colour::none), "x");
  EXPECT_EQ(paint("x", Colour::grey), "\033[90mx\033[0m");
}
