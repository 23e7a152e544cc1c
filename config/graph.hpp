// The dependency graph of services: start order, stop order, dependents, cycle report.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace config {

class DependencyGraph {
 public:
  // Dependencies naming services not in the list are ignored here (validate_services reports
  // them).
  explicit DependencyGraph(const std::vector<ServiceSpec>& services);

  // Set when the graph has a cycle; the orders below are then empty.
  const std::optional<Error>& cycle_error() const { return cycle_error_; }

  // Every service after everything it depends on; ties broken by name.
  const std::vector<std::string>& start_order() const { return start_order_; }
  // start_order reversed: dependents stop before what they depend on.
  std::vector<std::string> stop_order() const;

  // Services that name `name` in depends_on directly, sorted by name.
  std::vector<std::string> dependents_of(std::string_view name) const;
  // Every service that depends on `name` directly or transitively, in stop order.
  std::vector<std::string> all_dependents_of(std::string_view name) const;
  // Everything `name` depends on directly or transitively, in start order.
  std::vector<std::string> all_dependencies_of(std::string_view name) const;
  // The services `name` depends on directly, sorted by name.
  std::vector<std::string> dependencies_of(std::string_view name) const;

 private:
  std::map<std::string, std::vector<std::string>, std::less<>> deps_;        // sorted, unique
  std::map<std::string, std::vector<std::string>, std::less<>> dependents_;  // sorted, unique
  std::vector<std::string> start_order_;
  std::optional<Error> cycle_error_;
};

}  // namespace config
