#pragma once
// Reload (SIGHUP, POST /v1/reload) in two phases, so that a reload refused by any part of the
// daemon applies nothing: before, a bad certificate could fail a reload whose new triggers
// were already installed.
//
// Prepare: the new config (parsed by the caller) is offered to every participant in the order
// they were added. Each checks its part and builds what it would install, installing nothing,
// and hands back either errors or a commit. The first refusal ends the reload: its errors are
// recorded (reload_failed) and what the others prepared is dropped. The participants are the
// HTTP layer's parts (TLS certificate, API keys, trigger routes), added by tools/daemon: this
// layer knows no HTTP, only the interface.
//
// Commit: every prepared part is installed, in order, then the services' diff is applied
// (Supervisor::apply, which never refuses: the parse has checked the services). Nothing
// suspends between the first prepare and the last commit, so two reloads never interleave
// their parts; only apply() suspends.
//
// data_dir and the listen address and port change only on restart: they are pinned to the
// running values before the participants see the config.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/reload_plan.hpp"
#include "actors/supervisor.hpp"
#include "config/config.hpp"
#include "runtime/task.hpp"

namespace actors {

class Reload {
 public:
  // A participant's answer to prepare: errors (the reload is refused), or the commit that
  // installs what it prepared (empty: nothing to install) and what the reload's answer
  // says of this part (keys merged into the JSON answer; null for nothing).
  // (The implicit noexcept constructors build null json values, which cannot throw;
  // clang-tidy 14 cannot see that through nlohmann's invariant checks.)
  struct Prepared {  // NOLINT(bugprone-exception-escape)
    std::vector<config::Error> errors;
    std::function<void()> commit;
    nlohmann::json answer;
  };
  struct Participant {
    std::string name;  // names a refusal (Outcome::refused_by)
    std::function<Prepared(const config::Config& next)> prepare;
    // Its prepare does more than check (creates a file): a dry run does not ask it. Such a
    // participant must never refuse, or a dry run could pass where the reload fails.
    bool side_effects = false;
  };

  struct Outcome {  // NOLINT(bugprone-exception-escape): as Prepared
    bool ok = false;
    std::string refused_by;             // when !ok: kParse or a participant's name
    std::vector<config::Error> errors;  // when !ok
    bool restart_only_changed = false;  // data_dir or listen settings differ (pinned, not applied)
    bool dry_run = false;
    // Supervisor::generation() when the answer was made: a dry run leaves it where it was.
    std::uint64_t generation = 0;
    ReloadPlan plan;                    // when ok: what was (dry run: would be) applied
    ReloadOutcome services;             // when ok and not a dry run
    nlohmann::json answer;              // the participants' parts of the answer, when ok
    // POST /v1/reload's body: {"ok": true, "dry_run": false, "plan": {...}, "added": [...],
    // "removed": [...], "changed": [...], ...participants' keys} or {"ok": false, "errors":
    // ["config.toml:3:1: ...", ...]} (the same for a dry run, which records no event).
    nlohmann::json to_json() const;
  };
  static constexpr const char* kParse = "config";

  explicit Reload(Supervisor& supervisor) : supervisor_(supervisor) {}
  Reload(const Reload&) = delete;
  Reload& operator=(const Reload&) = delete;

  // Participants are asked in the order they are added. One that cannot refuse but has
  // side effects of its own in prepare (creating a file) belongs last.
  void add(Participant participant) { participants_.push_back(std::move(participant)); }

  // `parsed` is the config as read now; its errors refuse the reload before any participant
  // is asked. A dry run goes as far as the plan and every participant's check, and changes
  // nothing: no commit, no apply, no event.
  runtime::Task<Outcome> run(config::ParseResult parsed, bool dry_run = false);

 private:
  Outcome refuse(std::string by, std::vector<config::Error> errors, bool dry_run);

  Supervisor& supervisor_;
  std::vector<Participant> participants_;
};

}  // namespace actors
