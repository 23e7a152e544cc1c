// Start/stop order, dependents and the cycle report.
#include <gtest/gtest.h>

#include "config/graph.hpp"

namespace {

config::ServiceSpec svc(std::string name, const std::vector<std::string>& deps, int line = 1) {
  config::ServiceSpec s;
  s.name = std::move(name);
  s.pos = {line, 1};
  for (auto& d : deps) s.depends_on.push_back({d, config::DependencyCondition::started, {}});
  return s;
}

using V = std::vector<std::string>;

}  // namespace

TEST(Graph, TopologicalOrderTiesByName) {
  config::DependencyGraph g({svc("web", {"api", "cache"}), svc("api", {"db"}), svc("db", {}),
                             svc("cache", {}), svc("worker", {"db"}), svc("alone", {})});
  ASSERT_FALSE(g.cycle_error());
  EXPECT_EQ(g.start_order(), (V{"alone", "cache", "db", "api", "web", "worker"}));
  EXPECT_EQ(g.stop_order(), (V{"worker", "web", "api", "db", "cache", "alone"}));
}

TEST(Graph, Dependents) {
  config::DependencyGraph g({svc("web", {"api"}), svc("api", {"db"}), svc("db", {}), svc("worker", {"db"})});
  EXPECT_EQ(g.dependents_of("db"), (V{"api", "worker"}));
  EXPECT_EQ(g.dependents_of("web"), V{});
  EXPECT_EQ(g.dependents_of("nope"), V{});
  EXPECT_EQ(g.all_dependents_of("db"), (V{"worker", "web", "api"}));
  EXPECT_EQ(g.dependencies_of("web"), V{"api"});
}

// What `dockless start NAME` brings up first: the transitive dependencies in start order.
TEST(Graph, AllDependenciesInStartOrder) {
  config::DependencyGraph g({svc("web", {"api", "cache"}), svc("api", {"db"}), svc("db", {}),
                             svc("cache", {}), svc("worker", {"db"}), svc("alone", {})});
  EXPECT_EQ(g.all_dependencies_of("web"), (V{"cache", "db", "api"}));
  EXPECT_EQ(g.all_dependencies_of("worker"), V{"db"});
  EXPECT_EQ(g.all_dependencies_of("db"), V{});
  EXPECT_EQ(g.all_dependencies_of("nope"), V{});
}

TEST(Graph, UnknownDependenciesAreIgnoredHere) {
  config::DependencyGraph g({svc("web", {"ghost"})});
  EXPECT_FALSE(g.cycle_error());
  EXPECT_EQ(g.start_order(), V{"web"});
}

TEST(Graph, CycleNamedInOrderFromSmallestName) {
  config::DependencyGraph g({svc("c", {"a"}, 9), svc("a", {"b"}, 3), svc("b", {"c"}, 6), svc("d", {"c"}, 12),
                             svc("e", {}, 15)});
  ASSERT_TRUE(g.cycle_error());
  EXPECT_EQ(g.cycle_error()->message, "dependency cycle: a -> b -> c -> a");
  EXPECT_EQ(g.cycle_error()->line, 3);
  EXPECT_TRUE(g.start_order().empty());
}

TEST(Graph, SelfDependencyIsACycle) {
  config::DependencyGraph g({svc("x", {"x"}, 4)});
  ASSERT_TRUE(g.cycle_error());
  EXPECT_EQ(g.cycle_error()->message, "dependency cycle: x -> x");
}

TEST(Graph, CycleBehindAChain) {
  // "a" waits on the cycle but is not part of it: the report names only the loop.
  config::DependencyGraph g({svc("a", {"m"}), svc("m", {"n"}), svc("n", {"m"})});
  ASSERT_TRUE(g.cycle_error());
  EXPECT_EQ(g.cycle_error()->message, "dependency cycle: m -> n -> m");
}
