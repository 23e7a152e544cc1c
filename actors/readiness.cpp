#include "actors/readiness.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "runtime/ops_wait.hpp"

namespace actors {

using runtime::Result;
using runtime::Task;

namespace {

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Abstract names are per network namespace and vanish with the socket; the
// daemon's pid and a counter keep two incarnations (or two daemons) apart.
std::string next_socket_name(const std::string& service) {
  static unsigned long counter = 0;
  return "@dockless/" + std::to_string(::getpid()) + "/" + std::to_string(++counter) + "/" + service;
}

bool from_service(const ucred* cred, pid_t leader, uid_t service_uid) {
  if (!cred || cred->pid <= 0) return false;
  if (cred->pid == leader) return true;
  // A helper the service forked (sh -c wrappers, python's subprocess) is in its group.
  const pid_t group = ::getpgid(cred->pid);
  if (group >= 0) return group == leader;
  // The sender is gone before we looked: `systemd-notify --ready` in a shell script exits
  // at once and is reaped. Its process group cannot be read any more, but the uid the
  // kernel stamped at send time can: the service's own user sent it. (A live sender outside
  // the group is refused above, whoever it is.)
  return errno == ESRCH && cred->uid == service_uid;
}

void parse_datagram(std::string_view text, ReadinessReport* out) {
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (line == "READY=1") out->ready = true;
    else if (line.substr(0, 7) == "STATUS=") out->status = std::string(line.substr(7));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

// Reads every queued datagram, in order. Passed fds are closed: the daemon keeps no fd
// store for services (FDSTORE=1), and closing the fd of BARRIER=1 is the barrier itself
// (systemd-notify waits for the hang-up; every datagram before it has been read by then,
// and its sender, still alive while it waits, was checked by its process group).
void drain_notify_socket(int fd, pid_t leader, uid_t service_uid, ReadinessReport* out) {
  std::array<char, 4096> buf;
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * 16)> control;
  for (int i = 0; i < 256; ++i) {  // bounded: the rest waits for the next poll
    iovec iov{buf.data(), buf.size() - 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    const ssize_t n = ::recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN: drained
    }
    const ucred* cred = nullptr;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET) continue;
      if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(ucred)))
        cred = reinterpret_cast<const ucred*>(CMSG_DATA(c));
      if (c->cmsg_type == SCM_RIGHTS) {
        const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t k = 0; k < count; ++k) {
          int passed;
          std::memcpy(&passed, CMSG_DATA(c) + k * sizeof(int), sizeof passed);
          ::close(passed);
        }
      }
    }
    if (!from_service(cred, leader, service_uid)) continue;
    parse_datagram(std::string_view(buf.data(), static_cast<std::size_t>(n)), out);
  }
}

}  // namespace

Result<std::optional<ReadinessChannel>> ReadinessChannel::open(const config::ServiceSpec& spec, std::string* error) {
  using R = Result<std::optional<ReadinessChannel>>;
  if (spec.ready == config::ReadyMode::exec) return R(std::optional<ReadinessChannel>());
  ReadinessChannel ch;
  ch.mode_ = spec.ready;
  if (spec.ready == config::ReadyMode::fd) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
      *error = errno_text("readiness pipe");
      return R::failure(errno);
    }
    ch.daemon_end_.reset(p[0]);
    ch.child_end_.reset(p[1]);
    // Only our end: the service may well write to its end in blocking mode.
    if (::fcntl(p[0], F_SETFL, O_NONBLOCK) != 0) {
      *error = errno_text("readiness pipe");
      return R::failure(errno);
    }
    ch.child_fd_number_ = spec.ready_fd;
    return R(std::optional<ReadinessChannel>(std::move(ch)));
  }
  ch.daemon_end_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!ch.daemon_end_) {
    *error = errno_text("notify socket");
    return R::failure(errno);
  }
  const int one = 1;
  if (::setsockopt(ch.daemon_end_.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0) {
    *error = errno_text("notify socket: SO_PASSCRED");
    return R::failure(errno);
  }
  ch.notify_socket_ = next_socket_name(spec.name);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::size_t len = std::min(ch.notify_socket_.size(), sizeof addr.sun_path);
  ch.notify_socket_.resize(len);
  std::memcpy(addr.sun_path, ch.notify_socket_.data(), len);
  addr.sun_path[0] = '\0';
  if (::bind(ch.daemon_end_.get(), reinterpret_cast<sockaddr*>(&addr),
             static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len)) != 0) {
    *error = errno_text(("notify socket: bind " + ch.notify_socket_).c_str());
    return R::failure(errno);
  }
  // Services running as other users may send to it: abstract sockets have no
  // file permissions, and the sender is checked by pid instead.
  return R(std::optional<ReadinessChannel>(std::move(ch)));
}

void ReadinessChannel::apply(runtime::SpawnOptions& opts) {
  service_uid_ = opts.uid.value_or(::geteuid());
  if (mode_ == config::ReadyMode::notify) {
    opts.env["NOTIFY_SOCKET"] = notify_socket_;
  } else if (mode_ == config::ReadyMode::fd) {
    opts.extra_fds.emplace_back(child_end_.get(), child_fd_number_);
  }
}

Task<void> ReadinessChannel::watch(ReadinessChannel channel, pid_t leader, std::stop_token stop,
                                   std::function<void(ReadinessReport)> report) {
  const int fd = channel.daemon_end_.get();
  bool ready_sent = false;
  std::optional<std::string> last_status;
  while (!stop.stop_requested()) {
    Result<int> polled = co_await runtime::poll(fd, POLLIN).stop_on(stop);
    if (!polled) co_return;
    ReadinessReport r;
    if (channel.mode_ == config::ReadyMode::notify) {
      drain_notify_socket(fd, leader, channel.service_uid_, &r);
    } else {
      std::array<char, 512> buf;
      bool eof = false;
      for (int i = 0; i < 64; ++i) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n > 0) {
          if (std::memchr(buf.data(), '\n', static_cast<std::size_t>(n))) r.ready = true;
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        eof = n == 0;  // the service closed its end (after the newline, as s6 wants)
        break;
      }
      if (eof && !r.ready) co_return;  // never ready this way: the ready_timeout decides
      if (eof) {
        if (!ready_sent) report(r);
        co_return;
      }
    }
    if (r.status && r.status == last_status) r.status.reset();
    if (r.status) last_status = r.status;
    if (ready_sent) r.ready = false;
    if (r.ready || r.status) {
      ready_sent = ready_sent || r.ready;
      report(std::move(r));
    }
  }
}

}  // namespace actors
