#include "actors/http_request.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <span>

#include "actors/health.hpp"
#include "runtime/ops_net.hpp"

namespace actors {
namespace {

constexpr std::size_t kMaxStatusLine = 1024;  // longer is not HTTP

// ETIME is the linked deadline firing, ECANCELED the stop token; both are ours, not the
// peer's, so they get their own words instead of strerror's.
std::string op_error(int err, const RequestBudget& b, const std::string& what) {
  if (err == ETIME) return b.timed_out(what);
  if (err == ECANCELED) return "stopped";
  return what + ": " + std::strerror(err);
}

}  // namespace

runtime::Duration RequestBudget::left() const {
  return std::max(runtime::Duration::zero(), std::chrono::duration_cast<runtime::Duration>(end - Clock::now()));
}

std::string RequestBudget::timed_out(std::string_view what) const {
  return "timed out after " + format_duration(timeout) + " (" + std::string(what) + ")";
}

std::string printable(std::string_view raw, std::size_t max) {
  std::string out;
  for (char c : raw.substr(0, max)) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\r' || c == '\t') out += ' ';
    else if (u < 0x20 || u == 0x7f) out += '?';
    else out += c;
  }
  // Do not end inside a UTF-8 sequence that `max` cut in two.
  if (raw.size() > max) {
    std::size_t lead = out.size();
    while (lead > 0 && (static_cast<unsigned char>(out[lead - 1]) & 0xC0) == 0x80) --lead;
    if (lead > 0) {
      const auto b = static_cast<unsigned char>(out[lead - 1]);
      const std::size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
      if (out.size() - (lead - 1) < need) out.resize(lead - 1);
    }
  }
  const auto last = out.find_last_not_of(' ');
  out.resize(last == std::string::npos ? 0 : last + 1);
  return out;
}

std::optional<Endpoint> endpoint(const std::string& host, std::uint16_t port, std::string* why) {
  Endpoint ep;
  const std::string h = host == "localhost" || host.empty() ? "127.0.0.1" : host;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ep.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ep.addr);
  if (::inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    ep.len = sizeof *v4;
    ep.text = h + ":" + std::to_string(port);
  } else if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    ep.len = sizeof *v6;
    ep.text = "[" + h + "]:" + std::to_string(port);
  } else {
    *why = "host " + host + ": only numeric IPv4/IPv6 addresses and localhost are supported";
    return std::nullopt;
  }
  if (port == 0) {
    *why = "no port for " + h + " ($PORT is unset: the service has no port)";
    return std::nullopt;
  }
  return ep;
}

runtime::Task<runtime::Result<int>> connect_socket(runtime::Fd& sock, const Endpoint& ep, const RequestBudget& b,
                                                   std::stop_token stop) {
  using R = runtime::Result<int>;
  sock.reset(::socket(ep.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!sock) co_return R::failure(errno);
  if (b.expired()) co_return R::failure(ETIME);
  co_return co_await runtime::connect(sock.get(), reinterpret_cast<const sockaddr*>(&ep.addr), ep.len)
      .deadline(b.left())
      .stop_on(stop);
}

std::optional<int> parse_status_line(std::string_view line) {
  if (line.size() < 12 || line.substr(0, 5) != "HTTP/") return std::nullopt;
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!digit(line[5]) || line[6] != '.' || !digit(line[7]) || line[8] != ' ') return std::nullopt;
  if (!digit(line[9]) || !digit(line[10]) || !digit(line[11])) return std::nullopt;
  if (line.size() > 12 && line[12] != ' ') return std::nullopt;
  return (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
}

runtime::Task<HttpExchange> http_exchange(const Endpoint& ep, std::string request, std::string where,
                                          const RequestBudget& b, std::stop_token stop) {
  HttpExchange out;
  // The Fd outlives every operation below: each one is awaited to its CQE before we
  // return, so the close in ~Fd never races an operation on the number.
  runtime::Fd sock;
  runtime::Result<int> r = co_await connect_socket(sock, ep, b, stop);
  if (!r) {
    out.error = op_error(r.error(), b, "connect " + ep.text);
    co_return out;
  }
  const auto bytes = std::as_bytes(std::span(request));
  for (std::size_t sent = 0; sent < bytes.size(); sent += static_cast<std::size_t>(r.value())) {
    r = co_await runtime::send(sock.get(), bytes.subspan(sent)).deadline(b.left()).stop_on(stop);
    if (!r) {
      out.error = op_error(r.error(), b, "send to " + where);
      co_return out;
    }
  }
  // Only the status line is read. Closing with the rest unread may reset the
  // connection, which a server that already answered does not mind.
  std::string head;
  std::array<std::byte, 512> buf;
  while (head.find('\n') == std::string::npos && head.size() < kMaxStatusLine) {
    r = co_await runtime::recv(sock.get(), buf).deadline(b.left()).stop_on(stop);
    if (!r) {
      out.error = op_error(r.error(), b, "read from " + where);
      co_return out;
    }
    if (r.value() == 0) break;
    head.append(reinterpret_cast<const char*>(buf.data()), static_cast<std::size_t>(r.value()));
  }
  if (head.empty()) {
    out.error = "connection closed by " + where + " without a response";
    co_return out;
  }
  std::string_view line(head);
  line = line.substr(0, line.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  out.status = parse_status_line(line);
  if (!out.status) out.error = "bad status line from " + where + ": \"" + printable(line, 60) + "\"";
  co_return out;
}

}  // namespace actors
