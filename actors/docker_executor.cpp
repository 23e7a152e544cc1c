#include "actors/docker_executor.hpp"

#include <fcntl.h>

#include <array>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "actors/service_env.hpp"
#include "actors/state_store.hpp"
#include "runtime/ops_rw.hpp"
#include "runtime/ops_wait.hpp"
#include "runtime/scope.hpp"

namespace actors {

using namespace std::chrono_literals;
using runtime::Result;
using runtime::Task;

namespace {

// CLI calls that only ask the engine something; a hung engine must not hold a
// service's start forever.
constexpr std::chrono::milliseconds kQueryTimeout = 30s;
// `docker run` may pull the image first.
constexpr std::chrono::milliseconds kRunTimeout = 300s;
// After `docker wait` returns, how long `docker logs --follow` gets to deliver
// the container's last lines before the actor hears of the exit.
constexpr std::chrono::milliseconds kLogTailGrace = 3s;

std::string container_name(const std::string& service) { return std::string(kContainerPrefix) + service; }

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  std::size_t b = 0;
  while (b < s.size() && (s[b] == ' ' || s[b] == '\n')) ++b;
  return s.substr(b);
}

std::optional<long long> parse_int(const std::string& text) {
  std::string t = trim(text);
  if (t.empty()) return std::nullopt;
  char* end = nullptr;
  long long v = std::strtoll(t.c_str(), &end, 10);
  if (*end != '\0') return std::nullopt;
  return v;
}

// FNV-1a: the container's label must mean the same thing to the next daemon
// binary, which std::hash does not promise.
std::string fingerprint(const std::vector<std::string>& args) {
  std::uint64_t h = 1469598103934665603ull;
  for (const auto& a : args) {
    for (unsigned char c : a) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xffu) * 1099511628211ull;  // argument boundary
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// `docker run` without the fingerprint label: the fingerprint is computed over
// exactly these words, so a container is adopted only if it was started with the
// very same command.
std::vector<std::string> run_args(const LaunchRequest& req) {
  const config::ServiceSpec& s = *req.spec;
  std::vector<std::string> a = {"run", "-d", "--name", container_name(s.name), "--label",
                                std::string(kServiceLabel) + "=" + s.name};
  a.push_back("--stop-signal");
  a.push_back(runtime::signal_name(s.stop_signal));
  a.push_back("--stop-timeout");
  a.push_back(std::to_string((s.stop_timeout.count() + 999) / 1000));
  const bool host_network = s.network && *s.network == "host";
  if (s.network) {
    a.push_back("--network");
    a.push_back(*s.network);
  }
  if (!host_network)
    for (std::uint16_t p : req.ports) {
      a.push_back("-p");
      a.push_back(std::to_string(p) + ":" + std::to_string(p));
    }
  for (const auto& v : s.volumes) {
    a.push_back("-v");
    a.push_back(v);
  }
  for (const auto& [k, v] : req.env) {
    a.push_back("-e");
    a.push_back(k + "=" + v);
  }
  if (!s.working_dir.empty()) {
    a.push_back("-w");
    a.push_back(s.working_dir);
  }
  if (!s.user.empty()) {
    a.push_back("--user");
    a.push_back(s.group.empty() ? s.user : s.user + ":" + s.group);
  }
  a.insert(a.end(), s.docker_args.begin(), s.docker_args.end());
  a.push_back(*s.image);
  a.insert(a.end(), req.argv.begin(), req.argv.end());
  return a;
}

std::vector<std::string> args_of(std::initializer_list<std::string_view> words, const std::string& last) {
  std::vector<std::string> a(words.begin(), words.end());
  a.push_back(last);
  return a;
}

std::vector<std::string> inspect_args(const std::string& name) {
  return args_of({"inspect", "--type", "container", "--format",
                  "{{.State.Status}}|{{.State.Pid}}|{{index .Config.Labels \"dockless.fingerprint\"}}"},
                 name);
}
std::vector<std::string> pid_args(const std::string& name) {
  return args_of({"inspect", "--type", "container", "--format", "{{.State.Pid}}"}, name);
}
std::vector<std::string> exit_code_args(const std::string& name) {
  return args_of({"inspect", "--type", "container", "--format", "{{.State.ExitCode}}"}, name);
}
std::vector<std::string> rm_args(const std::string& name) { return args_of({"rm", "-f"}, name); }
std::vector<std::string> wait_args(const std::string& name) { return args_of({"wait"}, name); }
std::vector<std::string> stop_args(const std::string& name, std::chrono::milliseconds timeout) {
  return args_of({"stop", "-t", std::to_string((timeout.count() + 999) / 1000)}, name);
}
std::vector<std::string> kill_args(const std::string& name, int sig) {
  return args_of({"kill", "-s", runtime::signal_name(sig)}, name);
}
std::vector<std::string> logs_args(const std::string& name, bool adopted) {
  // An adopted container's earlier output was captured by the previous daemon
  // (or was written while none ran: it stays in `docker logs`); follow new lines only.
  if (adopted) return args_of({"logs", "--follow", "--tail", "0"}, name);
  return args_of({"logs", "--follow"}, name);
}
nlohmann::json started_details(const std::string& container, const LaunchRequest& req, pid_t pid) {
  nlohmann::json d = {{"container", container}, {"image", *req.spec->image}, {"pid", pid}};
  if (!req.argv.empty()) d["command"] = req.argv;
  return d;
}
std::string unsupported(const config::ServiceSpec& s) {
  if (s.stdin) return "stdin = true is not supported for a container service (image)";
  if (s.ready != config::ReadyMode::exec) return "only ready = \"exec\" is supported for a container service (image)";
  return {};
}
std::vector<std::string> ps_args() {
  return {"ps", "-a", "--filter", std::string("label=") + std::string(kServiceLabel), "--format", "{{.Names}}"};
}

// Reads what the pipe holds (the writer has exited, so this never waits).
Task<std::string> drain(runtime::Fd& fd) {
  std::string out;
  if (!fd) co_return out;
  std::array<std::byte, 16384> buf;
  for (int i = 0; i < 1024; ++i) {  // bounded: 16 MiB, far past the raised pipe size
    Result<int> r = co_await runtime::read(fd.get(), buf);
    if (!r || r.value() <= 0) break;
    out.append(reinterpret_cast<const char*>(buf.data()), static_cast<std::size_t>(r.value()));
  }
  co_return out;
}

Result<runtime::Process> spawn_cli(const std::string& cli, const std::vector<std::string>& args, bool capture,
                                   std::string* error) {
  runtime::SpawnOptions o;
  o.argv.push_back(cli);
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  // The daemon's environment: DOCKER_HOST, CONTAINERS_CONF and friends select the engine.
  o.env = runtime::process_environment();
  if (!capture) {
    o.stdout_mode = runtime::SpawnOptions::Stdio::null;
    o.stderr_mode = runtime::SpawnOptions::Stdio::null;
  }
  return runtime::Process::spawn(o, error);
}

Task<void> fire_and_forget(std::string cli, std::vector<std::string> args) {
  (void)co_await run_cli(std::move(cli), std::move(args), kQueryTimeout);
}

class DockerExecution final : public Execution {
 public:
  DockerExecution(std::string cli, std::string container, pid_t pid, bool adopted,
                  std::optional<runtime::Process> logs, nlohmann::json details)
      : cli_(std::move(cli)), container_(std::move(container)), pid_(pid),
        ticks_(pid > 0 ? process_start_ticks(pid) : 0), adopted_(adopted), logs_(std::move(logs)),
        details_(std::move(details)) {}

  pid_t pid() const override { return pid_; }
  std::uint64_t pid_start_ticks() const override { return ticks_; }
  nlohmann::json describe() const override { return details_; }
  bool adopted() const override { return adopted_; }
  runtime::Fd take_stdout() override { return logs_ ? std::move(logs_->stdout_pipe()) : runtime::Fd{}; }
  runtime::Fd take_stderr() override { return logs_ ? std::move(logs_->stderr_pipe()) : runtime::Fd{}; }

  Task<Result<runtime::ExitStatus>> wait() override {
    std::stop_token st = detach_.get_token();
    CliResult w = co_await run_cli(cli_, wait_args(container_), 0ms, st);
    if (st.stop_requested()) co_return Result<runtime::ExitStatus>::failure(ECANCELED);
    if (logs_ && !logs_->reaped())
      (void)co_await runtime::poll(logs_->pidfd(), POLLIN).deadline(kLogTailGrace).stop_on(st);
    std::optional<long long> code = w.ok() ? parse_int(w.out) : std::nullopt;
    if (!code) {  // `wait` could not say (the container went away under us): ask inspect
      CliResult i = co_await run_cli(cli_, exit_code_args(container_), kQueryTimeout, st);
      if (i.ok()) code = parse_int(i.out);
    }
    if (!code) co_return Result<runtime::ExitStatus>::failure(ECHILD);
    co_return runtime::ExitStatus{false, static_cast<int>(*code)};
  }

  void stop(int, std::chrono::milliseconds timeout) override { helper(stop_args(container_, timeout)); }
  void kill() override { helper(kill_args(container_, SIGKILL)); }
  Result<void> signal(int sig) override {
    helper(kill_args(container_, sig));
    return {};
  }
  void exited() override { helper(rm_args(container_)); }

  bool can_detach() const override { return true; }
  void detach() override { detach_.request_stop(); }

  Task<void> close() override {
    detach_.request_stop();
    if (logs_ && !logs_->reaped()) {
      (void)logs_->signal(SIGKILL);
      (void)co_await logs_->wait();
    }
    co_await helpers_.join();
  }

 private:
  void helper(std::vector<std::string> args) {
    std::string name = container_;
    name += '/';
    name += args.front();
    helpers_.spawn(fire_and_forget(cli_, std::move(args)), std::move(name));
  }

  std::string cli_;
  std::string container_;
  pid_t pid_;
  std::uint64_t ticks_;
  bool adopted_;
  std::optional<runtime::Process> logs_;  // `docker logs --follow`: the output pipes
  nlohmann::json details_;
  std::stop_source detach_;
  runtime::Scope helpers_;  // stop / kill / rm calls in flight
};

}  // namespace

std::string CliResult::message() const {
  if (!spawned) return error;
  if (timed_out) return "timed out";
  // docker ends a failure with a pointer at its help ("See 'docker run --help'.", "Run
  // 'docker COMMAND --help' ..."), which says nothing; the engine's own words come before
  // it. The first line that reports an error wins, else one that says what it cannot do,
  // else the last line that is not help.
  // Views into err: stderr may hold up to the pipe's 1 MiB (a pull's progress), and
  // copying the rest at every line would be quadratic.
  std::vector<std::string_view> lines;
  std::string_view rest = err;
  while (!rest.empty()) {
    const std::size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    const bool help = line.starts_with("See '") || line.starts_with("Run '") || line.starts_with("Usage:") ||
                      line.find("--help") != std::string_view::npos;
    if (!line.empty() && !help) lines.push_back(line);
  }
  // podman says "Cannot connect to Podman. Please verify ..." before the "Error: ..." line
  // that names the socket, so an error line is preferred to a "Cannot" one.
  for (std::string_view line : lines)
    if (line.find("rror") != std::string_view::npos) return std::string(line);
  for (std::string_view line : lines)
    if (line.starts_with("Cannot ")) return std::string(line);
  if (!lines.empty()) return std::string(lines.back());
  return "exited with " + std::to_string(exit_code);
}

std::string docker_cli_of(const config::ServiceSpec& spec) {
  return spec.docker_cli && !spec.docker_cli->empty() ? *spec.docker_cli : std::string("docker");
}

Task<CliResult> run_cli(std::string cli, std::vector<std::string> args, std::chrono::milliseconds timeout,
                        std::stop_token stop) {
  CliResult r;
  Result<runtime::Process> p = spawn_cli(cli, args, true, &r.error);
  if (!p) co_return r;
  r.spawned = true;
  // The CLI's output is read once it has exited, so it must fit in the pipes.
  (void)::fcntl(p->stdout_pipe().get(), F_SETPIPE_SZ, 1 << 20);
  (void)::fcntl(p->stderr_pipe().get(), F_SETPIPE_SZ, 1 << 20);
  // A pidfd polls readable once the process has exited.
  auto op = runtime::poll(p->pidfd(), POLLIN);
  Result<int> done = timeout.count() > 0 ? co_await op.deadline(timeout).stop_on(stop) : co_await op.stop_on(stop);
  if (!done) {
    r.timed_out = true;
    (void)p->signal(SIGKILL);
  }
  Result<runtime::ExitStatus> st = co_await p->wait();
  r.out = co_await drain(p->stdout_pipe());
  r.err = co_await drain(p->stderr_pipe());
  if (st.ok()) r.exit_code = st->signaled ? 128 + st->code : st->code;
  co_return r;
}

DockerExecutor::DockerExecutor(const config::ServiceSpec& spec)
    : cli_(docker_cli_of(spec)), container_(container_name(spec.name)) {}

config::HealthCheck DockerExecutor::health_check(const config::HealthCheck& check) const {
  config::HealthCheck c = check;
  if (c.kind == config::HealthCheck::Kind::exec) {
    std::vector<std::string> argv = {cli_, "exec", container_};
    argv.insert(argv.end(), c.exec.begin(), c.exec.end());
    c.exec = std::move(argv);
  }
  return c;
}

Task<std::unique_ptr<Execution>> DockerExecutor::launch(LaunchRequest req, std::string* error) {
  // The container has no stdin pipe and no readiness channel from the daemon.
  if (std::string why = unsupported(*req.spec); !why.empty()) {
    *error = std::move(why);
    co_return nullptr;
  }
  std::vector<std::string> args = run_args(req);
  const std::string fp = fingerprint(args);
  args.insert(args.begin() + 1, "dockless.fingerprint=" + fp);
  args.insert(args.begin() + 1, "--label");

  CliResult found = co_await run_cli(cli_, inspect_args(container_), kQueryTimeout);
  if (!found.spawned) {
    *error = "docker CLI \"" + cli_ + "\" cannot run: " + found.error;
    co_return nullptr;
  }
  bool adopt = false;
  pid_t pid = 0;
  if (found.ok()) {
    // "status|pid|fingerprint"
    std::string line = trim(found.out);
    std::size_t a = line.find('|'), b = line.rfind('|');
    if (a != std::string::npos && b > a && line.substr(0, a) == "running" && line.substr(b + 1) == fp) {
      pid = static_cast<pid_t>(parse_int(line.substr(a + 1, b - a - 1)).value_or(0));
      adopt = true;
    } else {
      // Stopped, or started with another command: replaced.
      CliResult rm = co_await run_cli(cli_, rm_args(container_), kQueryTimeout);
      if (!rm.ok()) {
        *error = "docker rm -f " + container_ + ": " + rm.message();
        co_return nullptr;
      }
    }
  }
  if (!adopt) {
    CliResult run = co_await run_cli(cli_, args, kRunTimeout);
    if (!run.ok()) {
      *error = "docker run " + *req.spec->image + ": " + run.message();
      // A timed-out run may still create the container; the next launch removes it.
      co_return nullptr;
    }
    CliResult p = co_await run_cli(cli_, pid_args(container_), kQueryTimeout);
    if (p.ok()) pid = static_cast<pid_t>(parse_int(p.out).value_or(0));
  }
  std::optional<runtime::Process> logs;
  if (req.capture_output) {
    std::string why;
    Result<runtime::Process> lp = spawn_cli(cli_, logs_args(container_, adopt), true, &why);
    if (!lp) {
      *error = "docker logs: " + why;
      (void)co_await run_cli(cli_, rm_args(container_), kQueryTimeout);
      co_return nullptr;
    }
    logs.emplace(std::move(lp).value());
  }
  co_return std::make_unique<DockerExecution>(cli_, container_, pid, adopt, std::move(logs),
                                             started_details(container_, req, pid));
}

Task<std::vector<SweptContainer>> sweep_orphan_containers(std::string cli, std::set<std::string> keep,
                                                          std::stop_token stop) {
  std::vector<SweptContainer> out;
  CliResult ps = co_await run_cli(cli, ps_args(), kQueryTimeout, stop);
  if (!ps.ok()) co_return out;
  std::size_t pos = 0;
  while (pos < ps.out.size() && !stop.stop_requested()) {
    std::size_t nl = ps.out.find('\n', pos);
    std::string name = trim(ps.out.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos));
    pos = nl == std::string::npos ? ps.out.size() : nl + 1;
    if (name.rfind(kContainerPrefix, 0) != 0) continue;
    std::string service = name.substr(kContainerPrefix.size());
    if (keep.count(service)) continue;
    SweptContainer s{service, name, {}};
    CliResult st = co_await run_cli(cli, stop_args(name, 10s), kQueryTimeout, stop);
    CliResult rm = co_await run_cli(cli, rm_args(name), kQueryTimeout, stop);
    if (!rm.ok()) s.error = rm.message();
    (void)st;
    out.push_back(std::move(s));
  }
  co_return out;
}

}  // namespace actors
