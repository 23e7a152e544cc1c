#include "config/graph.hpp"

#include <algorithm>
#include <set>

namespace config {

DependencyGraph::DependencyGraph(const std::vector<ServiceSpec>& services) {
  std::map<std::string, const ServiceSpec*, std::less<>> by_name;
  for (const ServiceSpec& s : services) {
    by_name[s.name] = &s;
    deps_[s.name];
    dependents_[s.name];
  }
  for (const ServiceSpec& s : services) {
    for (const Dependency& d : s.depends_on) {
      if (!by_name.count(d.name)) continue;
      deps_[s.name].push_back(d.name);
      dependents_[d.name].push_back(s.name);
    }
  }
  for (auto* m : {&deps_, &dependents_}) {
    for (auto& [name, list] : *m) {
      std::sort(list.begin(), list.end());
      list.erase(std::unique(list.begin(), list.end()), list.end());
    }
  }

  // Kahn's algorithm; the ready set is ordered so ties go to the smaller name.
  std::map<std::string, std::size_t, std::less<>> waiting;
  std::set<std::string, std::less<>> ready;
  for (const auto& [name, list] : deps_) {
    waiting[name] = list.size();
    if (list.empty()) ready.insert(name);
  }
  while (!ready.empty()) {
    std::string next = *ready.begin();
    ready.erase(ready.begin());
    start_order_.push_back(next);
    for (const std::string& dependent : dependents_[next])
      if (--waiting[dependent] == 0) ready.insert(dependent);
  }
  if (start_order_.size() == deps_.size()) return;

  // Some services never became ready: they are on a cycle or behind one. Walk from the smallest
  // unfinished name along unfinished dependencies until a name repeats; that loop is a cycle.
  std::set<std::string, std::less<>> done(start_order_.begin(), start_order_.end());
  std::string at;
  for (const auto& [name, count] : waiting)
    if (!done.count(name)) {
      at = name;
      break;
    }
  std::vector<std::string> path;
  while (std::find(path.begin(), path.end(), at) == path.end()) {
    path.push_back(at);
    for (const std::string& d : deps_[at])
      if (!done.count(d)) {
        at = d;
        break;
      }
  }
  std::vector<std::string> cycle(std::find(path.begin(), path.end(), at), path.end());
  // Start the report at the smallest name so it does not depend on where the walk began.
  std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
  std::string text = "dependency cycle: ";
  for (const std::string& n : cycle) text += n + " -> ";
  text += cycle.front();
  const ServiceSpec* first = by_name[cycle.front()];
  cycle_error_ = Error{"", first->pos.line, first->pos.col, text};
  start_order_.clear();
}

std::vector<std::string> DependencyGraph::stop_order() const {
  return {start_order_.rbegin(), start_order_.rend()};
}

std::vector<std::string> DependencyGraph::dependents_of(std::string_view name) const {
  auto it = dependents_.find(name);
  return it == dependents_.end() ? std::vector<std::string>{} : it->second;
}

std::vector<std::string> DependencyGraph::dependencies_of(std::string_view name) const {
  auto it = deps_.find(name);
  return it == deps_.end() ? std::vector<std::string>{} : it->second;
}

namespace {

// Everything reachable from `name` through `edges` (not `name` itself), listed in `order`.
std::vector<std::string> reachable(std::string_view name,
                                   const std::map<std::string, std::vector<std::string>, std::less<>>& edges,
                                   const std::vector<std::string>& order) {
  std::set<std::string, std::less<>> seen;
  std::vector<std::string> todo;
  auto push_from = [&](std::string_view from) {
    if (auto it = edges.find(from); it != edges.end()) todo.insert(todo.end(), it->second.begin(), it->second.end());
  };
  push_from(name);
  while (!todo.empty()) {
    std::string n = std::move(todo.back());
    todo.pop_back();
    if (seen.insert(n).second) push_from(n);
  }
  std::vector<std::string> out;
  for (const std::string& n : order)
    if (seen.count(n)) out.push_back(n);
  return out;
}

}  // namespace

std::vector<std::string> DependencyGraph::all_dependents_of(std::string_view name) const {
  return reachable(name, dependents_, stop_order());
}

std::vector<std::string> DependencyGraph::all_dependencies_of(std::string_view name) const {
  return reachable(name, deps_, start_order_);
}

}  // namespace config
