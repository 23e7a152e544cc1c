#include "actors/health.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "actors/http_request.hpp"
#include "actors/service_env.hpp"
#include "runtime/fd.hpp"
#include "runtime/ops_net.hpp"
#include "runtime/ops_wait.hpp"
#include "runtime/process.hpp"
#include "runtime/reactor.hpp"


namespace actors {
namespace {

using Clock = std::chrono::steady_clock;
using runtime::Fd;
using runtime::Result;
using runtime::Task;

constexpr std::size_t kCaptureBytes = 4096;     // exec output kept for the reason
constexpr std::size_t kReasonOutputBytes = 200;  // of which the reason shows this much

using Budget = RequestBudget;

HealthReport healthy(std::string reason) { return {true, std::move(reason), 0}; }
HealthReport unhealthy(std::string reason) { return {false, std::move(reason), 1}; }

// ETIME is the linked deadline firing, ECANCELED the stop token; both are ours,
// not the peer's, so they get their own words instead of strerror's.
HealthReport op_failure(int err, const Budget& b, const std::string& what) {
  if (err == ETIME) return unhealthy(b.timed_out(what));
  if (err == ECANCELED) return unhealthy("stopped");
  return unhealthy(what + ": " + std::strerror(err));
}

Task<HealthReport> check_tcp(const config::HealthCheck& spec, std::uint16_t port, std::stop_token stop) {
  Budget b(spec.timeout);
  std::string why;
  auto ep = endpoint(spec.host, port, &why);
  if (!ep) co_return unhealthy(why);
  Fd sock;
  Result<int> r = co_await connect_socket(sock, *ep, b, stop);
  if (!r) co_return op_failure(r.error(), b, "connect " + ep->text);
  co_return healthy("connected to " + ep->text);
}

Task<HealthReport> check_http(const config::HealthCheck& spec, std::uint16_t port, std::stop_token stop) {
  Budget b(spec.timeout);
  std::string why;
  auto ep = endpoint(spec.host, port, &why);
  if (!ep) co_return unhealthy(why);
  const std::string path = spec.path.empty() || spec.path.front() != '/' ? "/" + spec.path : spec.path;
  const std::string where = ep->text + path;

  // Host as configured ("localhost:8080"), for servers that route by it.
  const std::string host = spec.host.empty() ? "127.0.0.1" : spec.host;
  const std::string authority =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + authority +
                        "\r\nUser-Agent: dockless-health\r\nConnection: close\r\n\r\n";
  HttpExchange x = co_await http_exchange(*ep, std::move(request), where, b, stop);
  if (!x.status) co_return unhealthy(std::move(x.error));
  std::string what = "HTTP " + std::to_string(*x.status) + " from " + where;
  co_return *x.status >= 200 && *x.status < 300 ? healthy(std::move(what)) : unhealthy(std::move(what));
}

// Reads what is in the pipe without blocking; keeps the first kCaptureBytes and
// discards the rest so a chatty check never stalls on a full pipe. False at EOF.
bool drain(int fd, std::string& captured) {
  std::array<char, 4096> buf;
  // Bounded, so a child writing as fast as we read still lets the loop run:
  // the level-triggered epoll reports the pipe again next round.
  for (int i = 0; i < 16; ++i) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n > 0) {
      auto keep = std::min(static_cast<std::size_t>(n), kCaptureBytes - captured.size());
      captured.append(buf.data(), keep);
    } else if (n == 0) {
      return false;
    } else if (errno != EINTR) {
      return errno == EAGAIN;
    }
  }
  return true;
}

// Never the daemon's own environment (its keys and secrets): the caller's, else the base.
runtime::Environment check_environment(std::uint16_t port, const ExecContext& exec) {
  runtime::Environment env = exec.env.empty() ? base_environment({}, exec.uid.value_or(::geteuid())) : exec.env;
  if (port != 0) env["PORT"] = std::to_string(port);
  return env;
}

Task<HealthReport> check_exec(const config::HealthCheck& spec, std::uint16_t port, const ExecContext& exec,
                              std::stop_token stop) {
  Budget b(spec.timeout);
  if (spec.exec.empty()) co_return unhealthy("exec: empty command");
  if (!exec.identity_error.empty()) co_return unhealthy(exec.identity_error);
  const std::string what = "exec " + spec.exec[0];

  // stdout and stderr share one pipe so the reason shows them interleaved as the
  // check wrote them. Our end is non-blocking: it is only read once epoll says so.
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) co_return unhealthy(std::string("pipe: ") + std::strerror(errno));
  Fd out(fds[0]), out_w(fds[1]);
  ::fcntl(out.get(), F_SETFL, O_NONBLOCK);
  runtime::SpawnOptions opts;
  opts.argv = spec.exec;
  opts.env = check_environment(port, exec);
  opts.uid = exec.uid;
  opts.gid = exec.gid;
  opts.groups = exec.groups;
  opts.working_dir = exec.working_dir;
  opts.stdout_mode = opts.stderr_mode = runtime::SpawnOptions::Stdio::inherit;
  opts.extra_fds = {{out_w.get(), 1}, {out_w.get(), 2}};
  std::string detail;
  auto spawned = runtime::Process::spawn(opts, &detail);
  // Our copy of the write end must go, or the pipe never reaches EOF.
  out_w.reset();
  if (!spawned) co_return unhealthy(detail);
  runtime::Process proc = std::move(spawned.value());

  // Two things to wait for at once (output, exit) through one ring operation: an
  // epoll set holding both, polled on the ring. Waiting for EOF alone would hang
  // on a background child that keeps the pipe open after the check exited.
  Fd ep(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep) co_return unhealthy(std::string("epoll: ") + std::strerror(errno));
  auto watch = [&](int fd, std::uint32_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = tag;
    return ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : errno;
  };
  int wait_error = watch(out.get(), 0);
  if (wait_error == 0) wait_error = watch(proc.pidfd(), 1);

  std::string captured;
  bool exited = false;
  while (!exited && wait_error == 0) {
    if (b.expired()) {
      wait_error = ETIME;
      break;
    }
    Result<int> r = co_await runtime::poll(ep.get(), POLLIN).deadline(b.left()).stop_on(stop);
    if (!r) {
      wait_error = r.error();
      break;
    }
    std::array<epoll_event, 2> ready;
    const int n = ::epoll_wait(ep.get(), ready.data(), static_cast<int>(ready.size()), 0);
    for (int i = 0; i < n; ++i) {
      if (ready[static_cast<std::size_t>(i)].data.u32 == 1) exited = true;
      else if (!drain(out.get(), captured)) ::epoll_ctl(ep.get(), EPOLL_CTL_DEL, out.get(), nullptr);
    }
  }
  // TRICKY: the group is killed before the leader is reaped. Until then its pid
  // (the group id) cannot be reused, so the SIGKILL reaches only the check's own
  // leftovers (a timed-out command, or helpers it left running).
  (void)proc.signal_group(SIGKILL);
  if (!exited) (void)proc.signal(SIGKILL);  // in case it left its group
  (void)drain(out.get(), captured);
  // No stop token: the child must be reaped whatever happens, and SIGKILL makes
  // this prompt. (If the reactor is shutting down, ~Process reaps it instead.)
  auto status = co_await proc.wait();
  if (wait_error != 0) co_return op_failure(wait_error, b, what);
  if (!status) co_return unhealthy(what + ": wait: " + std::strerror(status.error()));
  std::string reason = "exec " + status->describe();
  std::string shown = printable(captured, kReasonOutputBytes);
  if (!shown.empty()) reason += ": " + shown;
  co_return status->success() ? healthy(std::move(reason)) : unhealthy(std::move(reason));
}

}  // namespace

std::string format_duration(config::Duration d) {
  const auto ms = d.count();
  if (ms % 1000 == 0 && ms != 0) return std::to_string(ms / 1000) + "s";
  if (ms > 1000 && ms % 100 == 0) return std::to_string(ms / 1000) + "." + std::to_string(ms % 1000 / 100) + "s";
  return std::to_string(ms) + "ms";
}

Task<HealthReport> check_once(const config::HealthCheck& spec, std::uint16_t service_port,
                              std::stop_token stop, ExecContext exec) {
  if (stop.stop_requested()) co_return unhealthy("stopped");
  const std::uint16_t port = spec.port != 0 ? spec.port : service_port;
  switch (spec.kind) {
    case config::HealthCheck::Kind::exec: co_return co_await check_exec(spec, service_port, exec, stop);
    case config::HealthCheck::Kind::http: co_return co_await check_http(spec, port, stop);
    case config::HealthCheck::Kind::tcp: co_return co_await check_tcp(spec, port, stop);
  }
  co_return unhealthy("unknown health check kind");
}

Task<void> run_health_checks(config::HealthCheck spec, std::uint16_t service_port, std::stop_token stop,
                             std::function<void(const HealthReport&)> on_change, ExecContext exec) {
  const auto started = Clock::now();
  // A zero interval would spin the loop; checks are at least a millisecond apart.
  const auto interval = std::max(spec.interval, config::Duration{1});
  const int retries = std::max(1, spec.retries);
  std::optional<bool> reported;  // nothing yet: "starting"
  int failures = 0;
  while (!stop.stop_requested()) {
    const auto check_start = Clock::now();
    HealthReport report = co_await check_once(spec, service_port, stop, exec);
    // A check cut short (stop, or the reactor shutting down) says nothing about the service.
    if (stop.stop_requested() || runtime::reactor().stopping()) break;
    if (report.healthy) failures = 0;
    else if (check_start - started >= spec.start_period) ++failures;
    report.consecutive_failures = failures;
    if (report.healthy && reported != true) {
      reported = true;
      on_change(report);
    } else if (!report.healthy && failures >= retries && reported != false) {
      reported = false;
      on_change(report);
    }
    Result<int> slept = co_await runtime::sleep_for(interval).stop_on(stop);
    if (!slept) break;
  }
}

}  // namespace actors
