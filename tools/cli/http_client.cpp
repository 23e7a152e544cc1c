#include "tools/cli/http_client.hpp"

#include <llhttp.h>
#include <poll.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "dockless_config.h"

namespace tools {

namespace {

using Clock = Connection::Clock;

ClientError make_error(ClientError::Kind kind, int code, std::string message) {
  return ClientError{kind, code, std::move(message)};
}

std::string serialize(const HttpRequest& req, const Endpoint& ep, const std::string& token) {
  std::string out = req.method + " " + req.target + " HTTP/1.1\r\n";
  out += "Host: " + ep.host_header() + "\r\n";
  out += "User-Agent: dockless/" DOCKLESS_VERSION "\r\n";
  // One request per connection: the response then ends at the latest when the
  // daemon closes, and no connection state outlives a command.
  out += "Connection: close\r\n";
  if (!token.empty()) out += "Authorization: Bearer " + token + "\r\n";
  for (const auto& [k, v] : req.headers) out += k + ": " + v + "\r\n";
  if (!req.body.empty() || req.method == "POST" || req.method == "PUT")
    out += "Content-Length: " + std::to_string(req.body.size()) + "\r\n";
  out += "\r\n";
  out += req.body;
  return out;
}

// llhttp's callbacks write into this; `parser.data` points at it.
struct ParseState {
  HttpResponse* head = nullptr;
  const BodySink* sink = nullptr;
  std::string field, value;
  bool headers_done = false;
  bool complete = false;
  bool sink_stopped = false;

  // Bodies of error statuses are kept for the caller, never streamed to the sink.
  bool streaming() const { return sink && head->status >= 200 && head->status < 300; }
};

ParseState* state_of(llhttp_t* p) { return static_cast<ParseState*>(p->data); }

const llhttp_settings_t& parser_settings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_header_field = [](llhttp_t* p, const char* at, size_t n) {
      state_of(p)->field.append(at, n);
      return 0;
    };
    s.on_header_value = [](llhttp_t* p, const char* at, size_t n) {
      state_of(p)->value.append(at, n);
      return 0;
    };
    s.on_header_value_complete = [](llhttp_t* p) {
      ParseState* st = state_of(p);
      st->head->headers.emplace_back(std::move(st->field), std::move(st->value));
      st->field.clear();
      st->value.clear();
      return 0;
    };
    s.on_headers_complete = [](llhttp_t* p) {
      ParseState* st = state_of(p);
      st->head->status = llhttp_get_status_code(p);
      st->headers_done = true;
      return 0;
    };
    s.on_body = [](llhttp_t* p, const char* at, size_t n) {
      ParseState* st = state_of(p);
      if (!st->streaming()) {
        st->head->body.append(at, n);
        return 0;
      }
      if (!(*st->sink)(at, n)) {
        st->sink_stopped = true;
        return static_cast<int>(HPE_USER);
      }
      return 0;
    };
    s.on_message_complete = [](llhttp_t* p) {
      state_of(p)->complete = true;
      return static_cast<int>(HPE_PAUSED);  // one response per connection: ignore the rest
    };
    return s;
  }();
  return settings;
}

// Sends the request, then reads and parses until the response is complete.
// `total` bounds the whole exchange; `idle` each wait for bytes.
std::optional<ClientError> exchange(const Endpoint& ep, const std::string& token,
                                    const HttpRequest& req, HttpResponse* head,
                                    const BodySink* sink, std::optional<Clock::time_point> total,
                                    std::optional<std::chrono::milliseconds> idle) {
  auto [conn, cerr] = Connection::open(ep, total);
  if (!conn) return cerr;
  auto deadline = [&]() -> std::optional<Clock::time_point> {
    std::optional<Clock::time_point> d = total;
    if (idle) {
      auto i = Clock::now() + *idle;
      if (!d || i < *d) d = i;
    }
    return d;
  };
  auto wait_error = [&](int err, const char* what) {
    if (err == EINTR) return make_error(ClientError::Kind::interrupted, EINTR, "interrupted");
    if (err == ETIME)
      return make_error(ClientError::Kind::timeout, ETIMEDOUT,
                        std::string("no ") + what + " from " + ep.describe() + " in time");
    return make_error(ClientError::Kind::io, err,
                      std::string(what) + " from " + ep.describe() + ": " + std::strerror(err));
  };

  short want = 0;
  const std::string wire = serialize(req, ep, token);
  for (std::size_t sent = 0; sent < wire.size();) {
    ssize_t n = conn->send_some(wire.data() + sent, wire.size() - sent, &want);
    if (n >= 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      // The daemon may have answered (e.g. 413) and closed before reading it all:
      // its response, if any, is still worth reading.
      if (errno == EPIPE || errno == ECONNRESET) break;
      return make_error(ClientError::Kind::io, errno,
                        "send to " + ep.describe() + ": " + std::strerror(errno));
    }
    if (int w = conn->wait(want, deadline()); w != 0) return wait_error(w, "progress sending");
  }

  ParseState st;
  st.head = head;
  st.sink = sink;
  llhttp_t parser;
  llhttp_init(&parser, HTTP_RESPONSE, &parser_settings());
  parser.data = &st;
  char buf[64 * 1024];
  while (!st.complete) {
    ssize_t n = conn->recv_some(buf, sizeof buf, &want);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        return make_error(ClientError::Kind::io, errno,
                          "reading from " + ep.describe() + ": " + std::strerror(errno));
      }
      if (int w = conn->wait(want, deadline()); w != 0) return wait_error(w, "response");
      continue;
    }
    llhttp_errno_t e = n == 0 ? llhttp_finish(&parser) : llhttp_execute(&parser, buf, static_cast<std::size_t>(n));
    if (st.sink_stopped) return std::nullopt;
    // At EOF llhttp_finish() says HPE_INVALID_EOF_STATE for a body cut short.
    if (n == 0 && !st.complete) {
      return make_error(ClientError::Kind::protocol, 0,
                        ep.describe() + " closed the connection before the response was complete");
    }
    if (e != HPE_OK && e != HPE_PAUSED) {
      return make_error(ClientError::Kind::protocol, 0,
                        "bad response from " + ep.describe() + ": " + llhttp_errno_name(e) + " (" +
                            llhttp_get_error_reason(&parser) + ")");
    }
  }
  return std::nullopt;
}

bool iequals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace

std::string HttpResponse::header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return "";
}

HttpClient::HttpClient(Endpoint endpoint, std::string token)
    : endpoint_(std::move(endpoint)), token_(std::move(token)) {}

std::pair<std::optional<HttpResponse>, ClientError> HttpClient::request(const HttpRequest& req) const {
  HttpResponse resp;
  auto err = exchange(endpoint_, token_, req, &resp, nullptr, Clock::now() + kRequestTimeout, std::nullopt);
  if (err) return {std::nullopt, *err};
  return {std::move(resp), {}};
}

std::optional<ClientError> HttpClient::stream(const HttpRequest& req, HttpResponse* head,
                                              const BodySink& sink,
                                              std::optional<std::chrono::milliseconds> idle) const {
  return exchange(endpoint_, token_, req, head, &sink, std::nullopt, idle);
}

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace tools
