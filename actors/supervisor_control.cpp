// The operator's commands on one service (start, stop, restart, signal, stdin) and the
// dependency order they keep: a start brings up what the service depends on first, a stop
// takes down what depends on it first (docs/api.md, "start" and "stop"), unless told not to.
#include <set>
#include <utility>

#include "actors/event_log.hpp"
#include "actors/state_store.hpp"
#include "actors/supervisor.hpp"
#include "actors/supervisor_entry.hpp"
#include "config/graph.hpp"

namespace actors {

using runtime::Result;
using runtime::Task;

void Supervisor::request_start(Entry& e) {
  if (e.ordered_stop) e.ordered_stop->request_stop();  // a start wins over a pending ordered stop
  e.ordered_stop.reset();
  if (e.starter) e.starter->request_stop();
  e.starter.emplace();
  e.waiting_recorded = false;
  background_.spawn(start_when_ready(e.spec->name, e.starter->get_token()), e.spec->name + "/start");
}

// A dependent starts once each dependency is running (condition "started") or
// running and healthy ("healthy"). It waits as long as it takes; the wait is
// visible as a "waiting" event and ends if the operator stops the service.
Task<void> Supervisor::start_when_ready(std::string name, std::stop_token stop) {
  while (!stop.stop_requested()) {
    Entry* e = find(name);
    if (!e || e->actor_done) co_return;
    std::vector<std::string> missing;
    for (const auto& dep : e->spec->depends_on) {
      Entry* d = find(dep.name);
      // A lazy dependency waiting on its sockets counts as started: a connection to it
      // waits in the backlog and starts it.
      const bool ok = d && ((d->status.state == State::running &&
                             (dep.condition == config::DependencyCondition::started ||
                              d->status.health == Health::healthy)) ||
                            (d->status.waiting_for_connection && dep.condition == config::DependencyCondition::started));
      if (!ok) missing.push_back(dep.name + (dep.condition == config::DependencyCondition::healthy ? " (healthy)" : ""));
    }
    if (missing.empty()) {
      e->starter.reset();
      e->actor->post(Command::of(Command::Kind::start));
      co_return;
    }
    if (!e->waiting_recorded) {
      e->waiting_recorded = true;
      events_.append(name, EventType::waiting, {{"for", missing}});
    }
    if (!co_await changed_.wait(stop)) co_return;
  }
}

Result<void> Supervisor::start(const std::string& name, Deps deps, std::vector<std::string>* also) {
  Entry* e = find(name);
  if (!e || e->actor_done) return Result<void>::failure(ENOENT);
  if (deps == Deps::ignore) {
    // Only NAME, and now: waiting for dependencies nobody is asked to start could be forever.
    if (e->ordered_stop) e->ordered_stop->request_stop();
    e->ordered_stop.reset();
    if (e->starter) e->starter->request_stop();
    e->starter.reset();
    events_.append(name, EventType::start_requested, {{"deps", false}});
    e->actor->post(Command::of(Command::Kind::start));
    return {};
  }
  // Each dependency that is down and not already on its way up is started too; each waits
  // for its own dependencies the usual way, so the order is the graph's.
  const config::DependencyGraph graph(all_specs());
  for (const std::string& dep : graph.all_dependencies_of(name)) {
    Entry* d = find(dep);
    if (!d || d->actor_done || !settled(d->status.state) || d->starter) continue;
    request_start(*d);
    events_.append(dep, EventType::start_requested, {{"for", name}});
    if (also) also->push_back(dep);
  }
  request_start(*e);
  events_.append(name, EventType::start_requested, {});
  return {};
}

Result<void> Supervisor::stop(const std::string& name, Deps deps, std::vector<std::string>* also) {
  Entry* e = find(name);
  if (!e || e->actor_done) return Result<void>::failure(ENOENT);
  std::vector<std::string> order;  // dependents that are up (or on their way), in stop order
  if (deps == Deps::follow) {
    const config::DependencyGraph graph(all_specs());
    for (const std::string& dep : graph.all_dependents_of(name)) {
      Entry* d = find(dep);
      if (!d || d->actor_done || (settled(d->status.state) && !d->starter)) continue;
      order.push_back(dep);
    }
  }
  auto call_off_start = [](Entry& x) {
    if (x.starter) x.starter->request_stop();
    x.starter.reset();
    if (x.ordered_stop) x.ordered_stop->request_stop();
    x.ordered_stop.reset();
  };
  for (const std::string& dep : order) {
    Entry& d = *find(dep);
    call_off_start(d);
    events_.append(dep, EventType::stop_requested, {{"for", name}});
    if (also) also->push_back(dep);
  }
  call_off_start(*e);
  events_.append(name, EventType::stop_requested, deps == Deps::ignore ? nlohmann::json{{"deps", false}} : nlohmann::json::object());
  if (order.empty()) {
    e->actor->post(Command::of(Command::Kind::stop));
    return {};
  }
  order.push_back(name);
  std::stop_source cancel;
  for (const std::string& n : order) find(n)->ordered_stop = cancel;
  background_.spawn(stop_entries(std::move(order), Command::Kind::stop, cancel), name + "/stop");
  return {};
}

Result<void> Supervisor::restart(const std::string& name) {
  Entry* e = find(name);
  if (!e || e->actor_done) return Result<void>::failure(ENOENT);
  events_.append(name, EventType::restart_requested, {});
  if (settled(e->status.state)) request_start(*e);
  else e->actor->post(Command::of(Command::Kind::restart));
  return {};
}

Result<void> Supervisor::signal(const std::string& name, int sig) {
  Entry* e = find(name);
  if (!e || e->actor_done) return Result<void>::failure(ENOENT);
  if (!e->status.pid) return Result<void>::failure(ESRCH);
  e->actor->post(Command::of(Command::Kind::signal, sig));
  return {};
}

Result<void> Supervisor::attach(const std::string& name, pid_t pid) {
  Entry* e = find(name);
  if (!e || e->actor_done) return Result<void>::failure(ENOENT);
  if (!e->spec->attach) return Result<void>::failure(EINVAL);
  // The actor checks it again (start time, pidfd); this only answers the obvious at once.
  if (pid <= 1 || process_start_ticks(pid) == 0) return Result<void>::failure(ESRCH);
  events_.append(name, EventType::attach_requested, {{"pid", pid}});
  e->actor->post(Command::of(Command::Kind::attach, pid));
  return {};
}

Result<void> Supervisor::write_stdin(const std::string& name, std::string bytes) {
  Entry* e = find(name);
  if (!e || e->actor_done) return Result<void>::failure(ENOENT);
  if (!e->spec->stdin) return Result<void>::failure(ENOTSUP);
  if (!e->status.pid) return Result<void>::failure(ESRCH);
  e->actor->post(Command::input(std::move(bytes)));
  return {};
}

// Stops `names` so that nothing is stopped while a service depending on it still runs: a
// service gets `kind` once all its dependents (among `names`) are done — gone (shutdown: the
// daemon's exit, a removal) or settled (stop: the operator's, dependents first). `cancel`
// ends it early, leaving what was not yet told to stop as it is.
Task<void> Supervisor::stop_entries(std::vector<std::string> names, Command::Kind kind, std::stop_source cancel) {
  std::set<std::string> left(names.begin(), names.end());
  std::set<std::string> posted;
  const config::DependencyGraph graph(all_specs());
  auto done = [&](const std::string& n, const Entry* e) {
    if (!e || e->actor_done) return true;
    return kind == Command::Kind::stop && posted.count(n) > 0 && settled(e->status.state);
  };
  while (!left.empty()) {
    bool progress = true;
    while (progress) {
      progress = false;
      for (auto it = left.begin(); it != left.end();) {
        Entry* e = find(*it);
        if (done(*it, e)) {
          it = left.erase(it);
          progress = true;
          continue;
        }
        if (!posted.count(*it)) {
          bool blocked = false;
          for (const auto& d : graph.dependents_of(*it)) blocked |= d != *it && left.count(d) > 0;
          if (!blocked) {
            if (e->starter) e->starter->request_stop();
            e->starter.reset();
            // The daemon exiting stops containers like processes (systemctl stop means
            // stop); only an upgrade's hand-over or a crash leaves one running.
            e->actor->post(Command::of(kind));
            posted.insert(*it);
            progress = true;  // a stop of a settled service counts as done at once
          }
        }
        ++it;
      }
    }
    if (left.empty()) break;
    if (!co_await changed_.wait(cancel.get_token())) break;
  }
  for (const std::string& n : names)
    if (Entry* e = find(n); e && e->ordered_stop && *e->ordered_stop == cancel) e->ordered_stop.reset();
}

}  // namespace actors
