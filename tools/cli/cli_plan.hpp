#pragma once
// A reload's plan (actors/reload_plan.hpp, as the API's JSON) as text for `dockless reload`,
// `dockless reload --dry-run` and `dockless check-config --plan`. Pure formatting.
#include <string>

#include <nlohmann/json.hpp>

namespace tools::cli {

// One line per service, trigger and setting, each changed key indented below its service:
//   ~ web: restart
//       command: ["sleep", "1"] -> ["sleep", "2"]
// "no changes\n" for an empty plan.
std::string render_plan(const nlohmann::json& plan);

}  // namespace tools::cli
