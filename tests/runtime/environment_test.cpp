// runtime::Environment: how "K=V" entries become the map and back (process_test's
// PathEnvAndWorkingDir shows a child seeing exactly the map).
#include <gtest/gtest.h>

#include <cstdlib>

#include "runtime/environment.hpp"

using namespace runtime;

TEST(Environment, EntriesWithoutANameOrAnEqualsSignAreDropped) {
  const char* envp[] = {"A=1", "=nameless", "no-equals", "EMPTY=", "B=x=y", nullptr};
  const Environment env = environment_of(envp);
  EXPECT_EQ(env, (Environment{{"A", "1"}, {"EMPTY", ""}, {"B", "x=y"}}));
}

TEST(Environment, ARepeatedNameKeepsItsLastValue) {
  const char* envp[] = {"A=first", "A=second", nullptr};
  EXPECT_EQ(environment_of(envp).at("A"), "second");
}

TEST(Environment, EntriesRoundTripInNameOrder) {
  const Environment env{{"Z", "last"}, {"A", "a b"}, {"M", ""}};
  const std::vector<std::string> entries = environment_entries(env);
  EXPECT_EQ(entries, (std::vector<std::string>{"A=a b", "M=", "Z=last"}));
  std::vector<const char*> envp;
  envp.reserve(entries.size() + 1);
  for (const auto& e : entries) envp.push_back(e.c_str());
  envp.push_back(nullptr);
  EXPECT_EQ(environment_of(envp.data()), env);
}

TEST(Environment, ProcessEnvironmentFollowsSetenv) {
  ASSERT_EQ(::setenv("DOCKLESS_ENV_TEST", "seen", 1), 0);
  EXPECT_EQ(process_environment().at("DOCKLESS_ENV_TEST"), "seen");
  ASSERT_EQ(::unsetenv("DOCKLESS_ENV_TEST"), 0);
  EXPECT_EQ(process_environment().count("DOCKLESS_ENV_TEST"), 0U);
}
