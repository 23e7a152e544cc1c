#include "tools/daemon/sd_notify.hpp"

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "actors/supervisor.hpp"
#include "runtime/ops_wait.hpp"
#include "runtime/scope.hpp"
#include "tools/daemon/daemon_log.hpp"

namespace tools {

SdNotifier::SdNotifier(const std::string& socket_path) {
  if (socket_path.empty()) return;
  if (socket_path.size() >= sizeof addr_.sun_path || (socket_path[0] != '/' && socket_path[0] != '@')) {
    error_ = "NOTIFY_SOCKET=\"" + socket_path + "\" is not an absolute path or @abstract name";
    return;
  }
  addr_.sun_family = AF_UNIX;
  std::memcpy(addr_.sun_path, socket_path.data(), socket_path.size());
  if (socket_path[0] == '@') addr_.sun_path[0] = '\0';  // abstract: no terminating NUL counted
  addr_len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_path.size() +
                                     (socket_path[0] == '/' ? 1 : 0));
  fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd_) error_ = std::string("socket: ") + std::strerror(errno);
}

void SdNotifier::send(std::string_view message) {
  if (!fd_) return;
  ssize_t n;
  do {
    n = ::sendto(fd_.get(), message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                 reinterpret_cast<const sockaddr*>(&addr_), addr_len_);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && !send_failed_) {
    send_failed_ = true;
    log(Level::warn, std::string("notify socket: ") + std::strerror(errno) + " (further failures not logged)");
  }
}

void SdNotifier::send_fd(std::string_view message, int fd) {
  if (!fd_) return;
  iovec iov{const_cast<char*>(message.data()), message.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_name = &addr_;
  msg.msg_namelen = addr_len_;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ssize_t n;
  do {
    n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && !send_failed_) {
    send_failed_ = true;
    log(Level::warn, std::string("notify socket: ") + std::strerror(errno) + " (further failures not logged)");
  }
}

void SdNotifier::store_fd(const std::string& name, int fd) {
  // Remove first: systemd keeps every fd sent under a name, and a service's new
  // incarnation has new pipes; the old ones must not be handed back after a crash.
  // Only names this daemon stored (or found stored at start) are removed: no
  // datagram per spawn for a stream a service does not have.
  if (stored_.erase(name) > 0) send("FDSTOREREMOVE=1\nFDNAME=" + name);
  if (fd >= 0) {
    send_fd("FDSTORE=1\nFDNAME=" + name, fd);
    stored_.insert(name);
  }
}

void SdNotifier::status(std::string_view text) {
  std::string msg = "STATUS=";
  msg.append(text);
  send(msg);
}

void SdNotifier::reloading() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const long long usec = static_cast<long long>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
  std::string msg = "RELOADING=1\nMONOTONIC_USEC=";
  msg += std::to_string(usec);
  send(msg);
}

runtime::Task<void> watchdog_pinger(SdNotifier& notifier, std::chrono::microseconds interval,
                                    std::stop_token stop) {
  // A floor, so that an absurd WATCHDOG_USEC=1 cannot turn this into a busy loop.
  const auto period = std::max<runtime::Duration>(std::chrono::duration_cast<runtime::Duration>(interval / 2),
                                                  std::chrono::milliseconds(10));
  while (!stop.stop_requested()) {
    notifier.watchdog();
    runtime::Result<int> r = co_await runtime::sleep_for(period).stop_on(stop);
    if (!r && r.error() != ETIME) co_return;
  }
}

std::string status_line(const actors::Supervisor& supervisor) {
  int total = 0, running = 0, failed = 0, backoff = 0;
  for (const auto& s : supervisor.list()) {
    ++total;
    running += s.state == actors::State::running;
    failed += s.state == actors::State::failed;
    backoff += s.state == actors::State::backoff;
  }
  std::string out = std::to_string(total);
  out += total == 1 ? " service, " : " services, ";
  out += std::to_string(running);
  out += " running";
  if (failed) {
    out += ", ";
    out += std::to_string(failed);
    out += " failed";
  }
  if (backoff) {
    out += ", ";
    out += std::to_string(backoff);
    out += " restarting";
  }
  return out;
}

runtime::Task<void> status_reporter(SdNotifier& notifier, actors::Supervisor& supervisor,
                                    std::stop_token stop, std::chrono::milliseconds min_gap) {
  std::string last;
  while (!stop.stop_requested()) {
    std::string now = status_line(supervisor);
    if (now != last) {
      notifier.status(now);
      last = std::move(now);
      // Rate limit: a burst of changes (boot, a crash loop) becomes one update per gap.
      runtime::Result<int> r = co_await runtime::sleep_for(min_gap).stop_on(stop);
      if (!r && r.error() != ETIME) co_return;
      continue;
    }
    if (!co_await supervisor.changed().wait(stop)) co_return;
  }
}

}  // namespace tools

namespace tools {

namespace {
bool boot_settled(const actors::Supervisor& supervisor) {
  for (const auto& s : supervisor.list()) {
    const config::ServiceSpec* spec = supervisor.spec(s.name);
    if (!spec || !spec->autostart) continue;
    if (s.state == actors::State::stopped || s.state == actors::State::starting) return false;
  }
  return true;
}
}  // namespace

runtime::Task<void> wait_boot_settled(actors::Supervisor& supervisor, std::chrono::milliseconds limit,
                                      std::stop_token stop) {
  std::stop_source timeout;
  std::stop_callback forward(stop, [&timeout] { timeout.request_stop(); });
  runtime::Scope timer;
  auto body = [](std::stop_source* src, std::chrono::milliseconds d, std::stop_token st) -> runtime::Task<void> {
    runtime::Result<int> r = co_await runtime::sleep_for(d).stop_on(st);
    if (r.ok() || r.error() == ETIME) src->request_stop();
  };
  timer.spawn(body(&timeout, limit, timer.token()), "boot-settle-timer");
  while (!boot_settled(supervisor) && !timeout.stop_requested()) {
    if (!co_await supervisor.changed().wait(timeout.get_token())) break;
  }
  timer.request_stop();
  co_await timer.join();
}

runtime::Task<void> run_manager_link(SdNotifier& notifier, actors::Supervisor& supervisor,
                                     std::chrono::microseconds watchdog, const bool& stopping,
                                     std::stop_token stop) {
  runtime::Scope pinger;
  if (watchdog.count() > 0) pinger.spawn(watchdog_pinger(notifier, watchdog, pinger.token()), "sd-watchdog");
  co_await wait_boot_settled(supervisor, std::chrono::seconds(60), stop);
  if (!stop.stop_requested()) {
    if (!stopping) notifier.ready();
    co_await status_reporter(notifier, supervisor, stop);
  }
  pinger.request_stop();
  co_await pinger.join();
}

}  // namespace tools
