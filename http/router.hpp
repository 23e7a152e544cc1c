#pragma once
// Router: method + path pattern → handler. Patterns are literal segments and
// `{name}` captures ("/v1/services/{name}/logs"); a capture matches one whole
// segment, percent-decoded. A literal segment beats a capture where both match.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.hpp"
#include "runtime/task.hpp"

namespace http {

class ResponseStream;

// A handler answers with one whole Response.
using Handler = std::function<runtime::Task<Response>(Request&)>;
// A streaming handler writes its body bit by bit (chunked) for as long as it
// likes; see ResponseStream.
using StreamHandler = std::function<runtime::Task<void>(Request&, ResponseStream&)>;

class Router {
 public:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;  // "{name}" kept as written
    Handler handler;                    // exactly one of these two is set
    StreamHandler stream_handler;
  };

  // Throws std::invalid_argument for a malformed pattern (a programming error).
  void add(std::string method, std::string pattern, Handler h);
  void add_stream(std::string method, std::string pattern, StreamHandler h);
  void get(std::string pattern, Handler h) { add("GET", std::move(pattern), std::move(h)); }
  void post(std::string pattern, Handler h) { add("POST", std::move(pattern), std::move(h)); }
  void put(std::string pattern, Handler h) { add("PUT", std::move(pattern), std::move(h)); }
  void del(std::string pattern, Handler h) { add("DELETE", std::move(pattern), std::move(h)); }

  struct Match {
    enum class Kind { found, not_found, method_not_allowed, bad_path };
    Kind kind = Kind::not_found;
    const Route* route = nullptr;
    std::map<std::string, std::string> params;
    std::string allow;  // for method_not_allowed: "GET, HEAD, POST"
  };
  // `path` is the raw (percent-encoded) path without the query. HEAD falls back
  // to the GET route when no HEAD route is registered.
  Match match(std::string_view method, std::string_view path) const;

  const std::vector<Route>& routes() const noexcept { return routes_; }

  // Paths owned by a component whose set changes at run time (webhook triggers). When the
  // head of a request has been read, `pin` is asked for the version that will judge it (kept
  // in Request::pinned); a pinned request goes to `handler` instead of the routes, so a
  // request in flight during a reload finishes under the version it started with.
  struct Delegate {
    std::function<std::shared_ptr<const void>(std::string_view path)> pin;  // null: not claimed
    Handler handler;
  };
  void set_delegate(Delegate d) { delegate_ = std::move(d); }
  std::shared_ptr<const void> pin(std::string_view target) const;
  const Handler& delegate_handler() const noexcept { return delegate_.handler; }

 private:
  Delegate delegate_;
  void insert(Route r);
  std::vector<Route> routes_;
};

}  // namespace http
