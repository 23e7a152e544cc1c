#include "actors/reload.hpp"

#include <utility>

namespace actors {

namespace {

// Outside the coroutine: GCC 12 mishandles structured bindings in one.
void merge_keys(nlohmann::json& into, const nlohmann::json& from) {
  if (from.is_object())
    for (const auto& [key, value] : from.items()) into[key] = value;
}

}  // namespace

nlohmann::json Reload::Outcome::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  j["ok"] = ok;
  if (!ok) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& e : errors) list.push_back(e.to_string());
    j["errors"] = std::move(list);
    return j;
  }
  j["dry_run"] = dry_run;
  j["generation"] = generation;
  j["plan"] = plan.to_json();
  if (dry_run) {
    merge_keys(j, answer);
    return j;
  }
  j["added"] = services.added;
  j["removed"] = services.removed;
  j["changed"] = services.changed;
  j["updated_in_place"] = services.updated_in_place;
  merge_keys(j, answer);
  return j;
}

Reload::Outcome Reload::refuse(std::string by, std::vector<config::Error> errors, bool dry_run) {
  if (!dry_run) supervisor_.reload_failed(errors);
  Outcome out;
  out.dry_run = dry_run;
  out.refused_by = std::move(by);
  out.errors = std::move(errors);
  return out;
}

runtime::Task<Reload::Outcome> Reload::run(config::ParseResult parsed, bool dry_run) {
  if (!parsed.ok()) co_return refuse(kParse, std::move(parsed.errors), dry_run);
  config::Config next = std::move(*parsed.config);
  const config::Config& running = supervisor_.config();
  Outcome out;
  out.dry_run = dry_run;
  // Planned before the pinning below, so that the plan names the settings that wait for a
  // restart.
  out.plan = supervisor_.plan(next);
  out.restart_only_changed = next.data_dir != running.data_dir || next.listen_port != running.listen_port ||
                             next.listen_address != running.listen_address;
  next.data_dir = running.data_dir;
  next.listen_port = running.listen_port;
  next.listen_address = running.listen_address;

  // Phase one: every participant prepares; the first refusal ends the reload, and what the
  // others prepared is dropped with `commits`.
  std::vector<std::function<void()>> commits;
  out.answer = nlohmann::json::object();
  for (const Participant& p : participants_) {
    if (dry_run && p.side_effects) continue;
    Prepared part = p.prepare(next);
    if (!part.errors.empty()) co_return refuse(p.name, std::move(part.errors), dry_run);
    if (part.commit) commits.push_back(std::move(part.commit));
    merge_keys(out.answer, part.answer);
  }
  if (dry_run) {
    out.ok = true;
    out.generation = supervisor_.generation();
    co_return out;
  }
  // Phase two: install, then the services (the only step that suspends). Nothing suspended
  // since the plan was made, so it is still the plan of this state.
  for (auto& commit : commits) commit();
  out.services = co_await supervisor_.apply(out.plan, std::move(next));
  out.ok = out.services.ok;
  out.generation = supervisor_.generation();
  co_return out;
}

}  // namespace actors
