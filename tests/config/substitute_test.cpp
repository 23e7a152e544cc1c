// ${VAR} substitution and env files.
#include <gtest/gtest.h>

#include "config/envfile.hpp"
#include "config/substitute.hpp"

namespace {

config::Resolution lookup(std::string_view name) {
  if (name == "A") return config::Resolution::of("alpha");
  if (name == "EMPTY") return config::Resolution::of("");
  if (name == "PORT") return config::Resolution::kept();
  return config::Resolution::failed("undefined variable ${" + std::string(name) + "}");
}

}  // namespace

TEST(Substitute, ReplacesKeepsAndEscapes) {
  EXPECT_EQ(config::substitute("x${A}y", lookup).text, "xalphay");
  EXPECT_EQ(config::substitute("${A}${A}", lookup).text, "alphaalpha");
  EXPECT_EQ(config::substitute("[${EMPTY}]", lookup).text, "[]");
  EXPECT_EQ(config::substitute("$${A}", lookup).text, "${A}");
  // Left to right: a lone "$", then the "$${" escape.
  EXPECT_EQ(config::substitute("$$${A}", lookup).text, "$${A}");
  EXPECT_EQ(config::substitute("cost $5 and $A", lookup).text, "cost $5 and $A");
  EXPECT_EQ(config::substitute("--port=${PORT}", lookup).text, "--port=${PORT}");
  EXPECT_TRUE(config::substitute("plain", lookup).errors.empty());
}

TEST(Substitute, ReportsEveryUndefinedAndMalformed) {
  auto r = config::substitute("${NOPE} ${A} ${ALSO}", lookup);
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0], "undefined variable ${NOPE}");
  EXPECT_EQ(r.errors[1], "undefined variable ${ALSO}");
  auto open = config::substitute("x ${A", lookup);
  ASSERT_EQ(open.errors.size(), 1u);
  EXPECT_EQ(open.errors[0], "unterminated \"${\" (write \"$${\" for a literal \"${\")");
  auto bad = config::substitute("${a b}", lookup);
  ASSERT_EQ(bad.errors.size(), 1u);
  EXPECT_EQ(bad.errors[0], "invalid variable reference \"${a b}\"");
  EXPECT_EQ(config::substitute("${}", lookup).errors.size(), 1u);
}

TEST(EnvFile, ParsesCommentsExportAndQuotes) {
  auto r = config::parse_env_file_text(
      "# comment\n"
      "\n"
      "PLAIN=value with spaces  \n"
      "export EXPORTED=1\n"
      "  SPACED = x \n"
      "SINGLE='a $b \\n'\n"
      "DOUBLE=\"line\\nnext \\\"q\\\"\" # trailing comment\n"
      "EMPTY=\n"
      "HASH=a#b\n"
      "PLAIN=again\r\n");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].message;
  std::vector<std::pair<std::string, std::string>> want = {
      {"PLAIN", "value with spaces"}, {"EXPORTED", "1"},     {"SPACED", "x"},
      {"SINGLE", "a $b \\n"},         {"DOUBLE", "line\nnext \"q\""}, {"EMPTY", ""},
      {"HASH", "a#b"},                {"PLAIN", "again"}};
  EXPECT_EQ(r.vars, want);
}

TEST(EnvFile, ReportsBadLinesWithPosition) {
  auto r = config::parse_env_file_text("OK=1\nno equals here\n  1BAD=x\nQ=\"open\nZ='a' junk\n");
  ASSERT_EQ(r.errors.size(), 4u);
  EXPECT_EQ(r.errors[0].line, 2);
  EXPECT_EQ(r.errors[0].message, "expected KEY=VALUE");
  EXPECT_EQ(r.errors[1].line, 3);
  EXPECT_EQ(r.errors[1].col, 3);
  EXPECT_EQ(r.errors[1].message, "invalid variable name \"1BAD\"");
  EXPECT_EQ(r.errors[2].message, "unterminated quote in value of Q");
  EXPECT_EQ(r.errors[3].message, "unexpected text after the quoted value of Z");
  ASSERT_EQ(r.vars.size(), 1u);
}
