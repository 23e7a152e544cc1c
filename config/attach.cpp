// `attach = { pid_file = "...", control = false }`: a service that is a process someone else
// started (actors/attach_executor.cpp watches it). Keys that only mean something for a
// process Dockless launches are errors here rather than silently ignored.
#include <filesystem>

#include "config/detail.hpp"
#include "config/service_parse.hpp"

namespace config::detail {

namespace {
// What Dockless would do when it starts the process (or when it restarts it), and so
// nothing for one it only watches. health, depends_on, port(s), autostart, stop_signal and
// stop_timeout (attach.control) keep their meaning.
constexpr std::string_view kNotForAttached[] = {
    "command", "env", "env_file", "working_dir", "user", "group", "restart", "restart_delay",
    "restart_delay_max", "restart_reset_after", "restart_limit", "restart_window", "restart_mode", "start_on",
    "sockets", "stdin", "ready", "ready_timeout", "image", "docker_args", "volumes", "network", "docker_cli",
    "log_max_size", "log_keep", "memory_max", "memory_high", "memory_swap_max", "cpu_max", "cpu_weight",
    "pids_max", "io_weight"};
}  // namespace

void ServiceParser::attach() {
  const toml::node* n = r_.find("attach");
  if (!n) return;
  if (!n->is_table()) {
    r_.type_error(*n, "attach", "a table { pid_file = \"...\", control = false }");
    return;
  }
  Reader ar(*n->as_table(), r_.key_path("attach"), r_.sink());
  ar.reject_unknown({"pid_file", "control"});
  Attach a;
  a.pos = pos_of(*n);
  if (auto v = ar.string("pid_file", true)) {
    if (auto s = subst(*ar.find("pid_file"), "attach.pid_file", *v)) {
      std::filesystem::path path = *s;
      if (path.is_relative() && !ctx_.base_dir.empty()) path = std::filesystem::path(ctx_.base_dir) / path;
      a.pid_file = path.string();
    }
  } else if (!ar.find("pid_file")) {
    // Without one the service is attached only through `dockless attach NAME PID`, and
    // nothing tells it where its owner's next instance is: refused, to keep one model.
    r_.error(*n, "attach", "missing required key \"pid_file\"");
  }
  if (auto v = ar.boolean("control")) a.control = *v;
  for (std::string_view key : kNotForAttached)
    if (const toml::node* k = r_.find(key))
      r_.error(*k, key, key == "command" || key == "image"
                            ? "attach and " + std::string(key) + " are mutually exclusive"
                            : std::string("makes no sense for an attached service (attach): Dockless does not start it"));
  for (const Port& p : spec_.ports)
    if (p.automatic)
      r_.sink().add(p.pos, r_.key_path("port") + ": \"auto\" makes no sense for an attached service (attach): "
                                                 "name the port it listens on");
  // Restarting it is not Dockless's to do.
  if (spec_.health && spec_.health->restart_on_unhealthy)
    if (const toml::node* h = r_.find("health"))
      r_.error(*h, "health.restart_on_unhealthy", "makes no sense for an attached service (attach): Dockless cannot restart it");
  // After an exit the machine's backoff is the pid_file poll: forever, at one interval.
  spec_.restart = RestartPolicy::always;
  spec_.restart_delay = kAttachPoll;
  spec_.restart_delay_max = kAttachPoll;
  spec_.restart_limit = 0;
  spec_.command.clear();
  spec_.attach = std::move(a);
}

}  // namespace config::detail
