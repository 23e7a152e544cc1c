#include "tools/daemon/upgrade.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "dockless_config.h"
#include "runtime/ops_wait.hpp"
#include "actors/event_log.hpp"
#include "actors/event_type.hpp"
#include "actors/supervisor.hpp"
#include "runtime/process.hpp"
#include "tools/daemon/daemon_log.hpp"

namespace tools {

std::string installed_binary() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  std::string path(buf, static_cast<std::size_t>(n));
  constexpr std::string_view deleted = " (deleted)";
  if (path.size() > deleted.size() && path.compare(path.size() - deleted.size(), deleted.size(), deleted) == 0)
    path.resize(path.size() - deleted.size());
  return path;
}

runtime::Task<std::string> preflight(std::string binary, std::chrono::milliseconds limit) {
  if (binary.empty()) co_return "cannot tell where the running binary is (/proc/self/exe)";
  runtime::SpawnOptions o;
  o.argv = {binary, "help"};
  o.env = runtime::process_environment();
  o.stdout_mode = runtime::SpawnOptions::Stdio::null;
  o.stderr_mode = runtime::SpawnOptions::Stdio::null;
  std::string detail;
  runtime::Result<runtime::Process> p = runtime::Process::spawn(o, &detail);
  if (!p) co_return detail.empty() ? binary + ": " + p.message() : detail;
  runtime::Result<int> done = co_await runtime::poll(p->pidfd(), POLLIN).deadline(limit);
  if (!done) co_return binary + " help: no answer within " + std::to_string(limit.count()) + " ms";
  std::optional<runtime::ExitStatus> st = p->try_reap();
  if (!st) co_return binary + " help: exit status unreadable";
  if (!st->success()) co_return binary + " help: " + st->describe();
  co_return std::string();
}

namespace {

std::vector<std::string> own_argv() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string all = ss.str();
  std::vector<std::string> argv;
  std::size_t start = 0;
  for (std::size_t i = 0; i < all.size(); ++i)
    if (all[i] == '\0') {
      argv.push_back(all.substr(start, i - start));
      start = i + 1;
    }
  return argv;
}

void set_cloexec(int fd, bool on) {
  if (fd >= 0) ::fcntl(fd, F_SETFD, on ? FD_CLOEXEC : 0);
}

nlohmann::json blob_of(const Handover& h, std::vector<int>* handed) {
  nlohmann::json j;
  j["version"] = 1;
  j["from_pid"] = ::getpid();
  j["from_version"] = DOCKLESS_VERSION;
  j["image"] = h.image;
  j["manager"] = {{"notify_socket", h.notify_socket}, {"watchdog_usec", h.watchdog.count()}};
  j["listeners"] = nlohmann::json::array();
  for (const auto& l : *h.listeners) {
    j["listeners"].push_back({{"fd", l.fd.get()}, {"unix_path", l.unix_path}});
    handed->push_back(l.fd.get());
  }
  j["services"] = nlohmann::json::object();
  for (const auto& [name, r] : *h.services) {
    nlohmann::json s = {{"state", r->state},     {"executor", r->executor}, {"pending_start", r->pending_start},
                        {"restarts", r->restarts}, {"ports", r->ports},      {"started_unix_ms", r->started_unix_ms}};
    if (r->pid > 0 && r->pidfd >= 0) {
      s["pid"] = r->pid;
      s["start_ticks"] = r->start_ticks;
      s["pidfd"] = r->pidfd;
      s["stdout"] = r->out;
      s["stderr"] = r->err;
      s["stdin"] = r->in;
      for (int fd : {r->pidfd, r->out, r->err, r->in})
        if (fd >= 0) handed->push_back(fd);
      nlohmann::json sockets = nlohmann::json::array();
      for (const auto& k : r->sockets) {
        sockets.push_back({{"fd", k.fd}, {"fingerprint", k.fingerprint}, {"dev", k.dev}, {"ino", k.ino}});
        handed->push_back(k.fd);
      }
      if (!sockets.empty()) s["sockets"] = std::move(sockets);
    }
    j["services"][name] = std::move(s);
  }
  return j;
}

}  // namespace

std::string exec_new_image(const Handover& h) {
  std::vector<int> handed;
  const std::string text = blob_of(h, &handed).dump();
  // Not MFD_CLOEXEC: this one fd must reach the new image.
  runtime::Fd blob(static_cast<int>(::syscall(SYS_memfd_create, "dockless-upgrade", 0)));
  if (!blob) return std::string("memfd_create: ") + std::strerror(errno);
  std::size_t off = 0;
  while (off < text.size()) {
    const ssize_t w = ::write(blob.get(), text.data() + off, text.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return std::string("write the state blob: ") + std::strerror(errno);
    off += static_cast<std::size_t>(w);
  }
  ::lseek(blob.get(), 0, SEEK_SET);
  handed.push_back(blob.get());

  std::vector<std::string> argv = own_argv();
  if (argv.empty()) return "cannot read /proc/self/cmdline";
  runtime::Environment next_env = runtime::process_environment();
  next_env[std::string(kUpgradeFdEnv)] = std::to_string(blob.get());
  std::vector<std::string> env = runtime::environment_entries(next_env);
  std::vector<char*> argp, envp;
  for (auto& a : argv) argp.push_back(a.data());
  argp.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  // Whitelist, not blacklist: everything (the ring, the signalfd, client sockets,
  // the data_dir lock, log files) closes at the exec except what the blob names.
  ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  for (int fd : handed) set_cloexec(fd, false);
  ::execve(h.binary.c_str(), argp.data(), envp.data());
  const int err = errno;
  for (int fd : handed) set_cloexec(fd, true);
  return "exec " + h.binary + ": " + std::strerror(err);
}

namespace {
runtime::Fd take_fd(const nlohmann::json& j, const char* key, std::set<int>* seen) {
  if (!j.contains(key) || !j[key].is_number_integer()) return {};
  const int fd = j[key].get<int>();
  // Each fd owned once, and only ones that are open.
  if (fd < 3 || seen->count(fd) || ::fcntl(fd, F_GETFD) < 0) return {};
  seen->insert(fd);
  set_cloexec(fd, true);
  return runtime::Fd(fd);
}
}  // namespace

std::optional<Inheritance> take_inheritance(std::string* error) {
  const char* v = std::getenv(kUpgradeFdEnv);
  if (!v) return std::nullopt;
  const int blob_fd = std::atoi(v);
  ::unsetenv(kUpgradeFdEnv);
  if (blob_fd < 3 || ::fcntl(blob_fd, F_GETFD) < 0) {
    *error = std::string(kUpgradeFdEnv) + " names no open fd";
    return std::nullopt;
  }
  runtime::Fd blob(blob_fd);
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(blob.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || j.value("version", 0) != 1) {
    *error = "the upgrade state blob is not version 1 JSON";
    return std::nullopt;
  }
  Inheritance out;
  std::set<int> seen{blob_fd};
  out.from_pid = j.value("from_pid", 0);
  out.from_version = j.value("from_version", "");
  out.image = j.value("image", 1);
  if (j.contains("manager") && j["manager"].is_object()) {
    out.notify_socket = j["manager"].value("notify_socket", "");
    out.watchdog = std::chrono::microseconds(j["manager"].value("watchdog_usec", std::int64_t{0}));
  }
  if (j.contains("listeners") && j["listeners"].is_array())
    for (const auto& l : j["listeners"]) {
      if (!l.is_object()) continue;
      runtime::Fd fd = take_fd(l, "fd", &seen);
      if (fd) out.listeners.push_back({std::move(fd), l.value("unix_path", "")});
    }
  if (j.contains("services") && j["services"].is_object())
    for (const auto& [name, s] : j["services"].items()) {
      if (!s.is_object()) continue;
      actors::Inherited in;
      in.state = s.value("state", "");
      in.executor = s.value("executor", "");
      in.pending_start = s.value("pending_start", false);
      if (s.contains("pid") && s["pid"].is_number_integer()) {
        auto info = std::make_shared<actors::AdoptInfo>();
        info->pid = s["pid"].get<pid_t>();
        info->start_ticks = s.value("start_ticks", std::uint64_t{0});
        info->restarts = s.value("restarts", 0);
        info->started_unix_ms = s.value("started_unix_ms", std::int64_t{0});
        if (s.contains("ports") && s["ports"].is_array())
          for (const auto& p : s["ports"])
            if (p.is_number_unsigned() && p.get<std::uint64_t>() <= 65535) info->ports.push_back(p.get<std::uint16_t>());
        info->origin = "upgrade";
        info->pidfd = take_fd(s, "pidfd", &seen);
        info->out = take_fd(s, "stdout", &seen);
        info->err = take_fd(s, "stderr", &seen);
        info->in = take_fd(s, "stdin", &seen);
        if (s.contains("sockets") && s["sockets"].is_array())
          for (const auto& k : s["sockets"]) {
            if (!k.is_object()) continue;
            info->sockets.push_back({take_fd(k, "fd", &seen), k.value("fingerprint", ""),
                                     k.value("dev", std::uint64_t{0}), k.value("ino", std::uint64_t{0})});
          }
        std::string got;
        if (info->out) got += "stdout";
        if (info->err) got += got.empty() ? "stderr" : " stderr";
        info->output = got.empty() ? "none" : got + " handed over";
        if (info->pidfd) in.instance = std::move(info);
      }
      out.services[name] = std::move(in);
    }
  return out;
}

nlohmann::json upgrade_json(const UpgradeState& u) {
  nlohmann::json j = nlohmann::json::object();
  j["image"] = u.image;
  j["pid"] = ::getpid();
  j["version"] = DOCKLESS_VERSION;
  j["failures"] = u.failures;
  j["last_error"] = u.last_error;
  j["upgraded_from"] = u.from_version;
  return j;
}

namespace {
constexpr std::chrono::milliseconds kPreflightLimit{10'000};

std::string refuse_transition(const actors::Supervisor& supervisor) {
  std::vector<std::string> busy = supervisor.in_transition();
  if (busy.empty()) return {};
  std::string names;
  for (const auto& n : busy) names += (names.empty() ? "" : ", ") + n;
  return "services starting or stopping (" + names + "); try again once they settle";
}
}  // namespace

// POST /v1/upgrade: checked here (so the caller gets the error) and answered 202
// before anything is handed over; the upgrade itself runs on SIGUSR2, the same path
// as `kill -USR2`.
runtime::Task<http::Response> upgrade_request(actors::Supervisor& supervisor, UpgradeState& state) {
  if (std::string busy = refuse_transition(supervisor); !busy.empty())
    co_return http::Response::error(409, busy);
  const std::string binary = installed_binary();
  if (std::string e = co_await preflight(binary, kPreflightLimit); !e.empty())
    co_return http::Response::error(500, "upgrade refused, this image keeps running: " + e);
  ::kill(::getpid(), SIGUSR2);
  nlohmann::json j = upgrade_json(state);
  j["ok"] = true;
  j["binary"] = binary;
  co_return http::Response::json(202, j);
}

// The hand-over (docs/architecture.md, "Upgrade"). Returns only when it failed,
// with why; this image then goes on as before (services never stopped).
runtime::Task<std::string> upgrade(http::Server& server, actors::Supervisor& supervisor, actors::EventLog& events,
                          const ManagerEnvironment& manager, UpgradeState& state) {
  if (std::string busy = refuse_transition(supervisor); !busy.empty()) co_return busy;
  const std::string binary = installed_binary();
  if (std::string e = co_await preflight(binary, kPreflightLimit); !e.empty()) co_return e;
  log(Level::info, "upgrade: handing over to " + binary);
  // Accepting stops first (the listeners stay open: new clients wait in the
  // backlog), then open connections finish what they are answering — the 202 of
  // POST /v1/upgrade among them — and streams end.
  std::vector<http::ReleasedListener> listeners = co_await server.release_listeners();
  co_await server.stop(std::chrono::milliseconds(2000));
  auto records = co_await supervisor.handover(std::chrono::milliseconds(10'000));
  if (records.empty() && !supervisor.list().empty()) {
    server.resume(std::move(listeners));
    co_return "a service did not hand over within 10 s";
  }
  co_await supervisor.write_snapshot();
  nlohmann::json ev = nlohmann::json::object();
  ev["binary"] = binary;
  ev["image"] = state.image;
  events.append(std::nullopt, actors::EventType::upgrade_exec, ev);
  co_await events.flush();
  Handover h;
  h.binary = binary;
  h.notify_socket = manager.notify_socket;
  h.watchdog = manager.watchdog;
  h.image = state.image;
  h.listeners = &listeners;
  h.services = &records;
  std::string error = exec_new_image(h);
  supervisor.resume_after_handover();
  server.resume(std::move(listeners));
  co_return error;
}

}  // namespace tools
