// Durations, sizes, signals and shell-like command splitting.
#include <gtest/gtest.h>

#include <csignal>

#include "config/config.hpp"

using namespace std::chrono_literals;
using config::Duration;

TEST(Duration, AcceptsEveryUnitAndCombination) {
  std::string err;
  EXPECT_EQ(config::parse_duration("100ms", &err), Duration{100});
  EXPECT_EQ(config::parse_duration("5s", &err), Duration{5s});
  EXPECT_EQ(config::parse_duration("2m", &err), Duration{2min});
  EXPECT_EQ(config::parse_duration("1h", &err), Duration{1h});
  EXPECT_EQ(config::parse_duration("1m30s", &err), Duration{90s});
  EXPECT_EQ(config::parse_duration("1h2m3s4ms", &err), Duration{3'723'004});
  EXPECT_EQ(config::parse_duration("0", &err), Duration{0});
  EXPECT_EQ(config::parse_duration("0s", &err), Duration{0});
}

TEST(Duration, RejectsGarbageWithReason) {
  std::string err;
  EXPECT_FALSE(config::parse_duration("-5s", &err));
  EXPECT_EQ(err, "invalid duration \"-5s\": must not be negative");
  EXPECT_FALSE(config::parse_duration("5", &err));
  EXPECT_EQ(err, "invalid duration \"5\": missing unit (use ms, s, m or h)");
  EXPECT_FALSE(config::parse_duration("5x", &err));
  EXPECT_EQ(err, "invalid duration \"5x\": unknown unit \"x\" (use ms, s, m or h)");
  EXPECT_FALSE(config::parse_duration("", &err));
  EXPECT_FALSE(config::parse_duration("s", &err));
  EXPECT_FALSE(config::parse_duration("1.5s", &err));
  EXPECT_FALSE(config::parse_duration("99999999999999999999h", &err));
}

TEST(Size, UnitsBinaryAndDecimal) {
  std::string err;
  EXPECT_EQ(config::parse_size("4096", &err), 4096u);
  EXPECT_EQ(config::parse_size("512B", &err), 512u);
  EXPECT_EQ(config::parse_size("512KiB", &err), 512u * 1024);
  EXPECT_EQ(config::parse_size("512K", &err), 512u * 1024);
  EXPECT_EQ(config::parse_size("100KB", &err), 100'000u);
  EXPECT_EQ(config::parse_size("1M", &err), 1u << 20);
  EXPECT_EQ(config::parse_size("10MiB", &err), 10u << 20);
  EXPECT_EQ(config::parse_size("10MB", &err), 10'000'000u);
  EXPECT_EQ(config::parse_size("1G", &err), 1u << 30);
  EXPECT_EQ(config::parse_size("2GiB", &err), 2ull << 30);
  EXPECT_EQ(config::parse_size("1GB", &err), 1'000'000'000u);
}

TEST(Size, RejectsGarbage) {
  std::string err;
  EXPECT_FALSE(config::parse_size("10XB", &err));
  EXPECT_EQ(err, "invalid size \"10XB\": unknown unit \"XB\" (use B, K/KiB, KB, M/MiB, MB, G/GiB or GB)");
  EXPECT_FALSE(config::parse_size("-1M", &err));
  EXPECT_FALSE(config::parse_size("MiB", &err));
  EXPECT_FALSE(config::parse_size("99999999999G", &err));
}

TEST(Signal, NamesWithAndWithoutPrefix) {
  std::string err;
  EXPECT_EQ(config::parse_signal("TERM", &err), SIGTERM);
  EXPECT_EQ(config::parse_signal("SIGTERM", &err), SIGTERM);
  EXPECT_EQ(config::parse_signal("int", &err), SIGINT);
  EXPECT_EQ(config::parse_signal("HUP", &err), SIGHUP);
  EXPECT_EQ(config::parse_signal("QUIT", &err), SIGQUIT);
  EXPECT_EQ(config::parse_signal("KILL", &err), SIGKILL);
  EXPECT_EQ(config::parse_signal("USR1", &err), SIGUSR1);
  EXPECT_EQ(config::parse_signal("SIGUSR2", &err), SIGUSR2);
  EXPECT_FALSE(config::parse_signal("SIGNOPE", &err));
  EXPECT_EQ(err, "unknown signal \"SIGNOPE\" (use a name such as \"TERM\" or a number)");
}

TEST(SplitCommand, WhitespaceQuotesAndEscapes) {
  using V = std::vector<std::string>;
  std::string err;
  EXPECT_EQ(config::split_command("  /bin/app  -v\t--x=1 ", &err), (V{"/bin/app", "-v", "--x=1"}));
  EXPECT_EQ(config::split_command("echo 'a b' \"c d\"", &err), (V{"echo", "a b", "c d"}));
  EXPECT_EQ(config::split_command("echo 'it\"s' \"say \\\"hi\\\"\"", &err), (V{"echo", "it\"s", "say \"hi\""}));
  EXPECT_EQ(config::split_command("a\\ b c", &err), (V{"a b", "c"}));
  EXPECT_EQ(config::split_command("x'y'\"z\"", &err), (V{"xyz"}));
  EXPECT_EQ(config::split_command("sh -c 'echo $HOME | wc'", &err), (V{"sh", "-c", "echo $HOME | wc"}));
  EXPECT_EQ(config::split_command("a '' b", &err), (V{"a", "", "b"}));
  EXPECT_EQ(config::split_command("\"back\\\\slash\" 'lit\\n'", &err), (V{"back\\slash", "lit\\n"}));
  EXPECT_EQ(config::split_command("", &err), V{});
}

TEST(SplitCommand, Errors) {
  std::string err;
  EXPECT_FALSE(config::split_command("echo 'oops", &err));
  EXPECT_EQ(err, "unterminated single quote");
  EXPECT_FALSE(config::split_command("echo \"oops", &err));
  EXPECT_EQ(err, "unterminated double quote");
  EXPECT_FALSE(config::split_command("echo \\", &err));
  EXPECT_EQ(err, "trailing backslash");
}

TEST(ServiceName, Pattern) {
  EXPECT_TRUE(config::service_name_valid("web"));
  EXPECT_TRUE(config::service_name_valid("0db_1.x-y"));
  EXPECT_TRUE(config::service_name_valid(std::string(63, 'a')));
  EXPECT_FALSE(config::service_name_valid(std::string(64, 'a')));
  EXPECT_FALSE(config::service_name_valid(""));
  EXPECT_FALSE(config::service_name_valid("Web"));
  EXPECT_FALSE(config::service_name_valid("-web"));
  EXPECT_FALSE(config::service_name_valid(".hidden"));
  EXPECT_FALSE(config::service_name_valid("a/b"));
  EXPECT_FALSE(config::service_name_valid("a b"));
}
