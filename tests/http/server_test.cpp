// The server end to end over real sockets: curl and raw clients against
// keep-alive, pipelining, chunked bodies, 100-continue, HEAD, HTTP/1.0, errors,
// unix sockets, IPv6, socket activation, fd hygiene and graceful stop.
#include <sys/stat.h>

#include "harness.hpp"

using http::Request;
using http::Response;
using runtime::Task;
using namespace test;

namespace {

// JSON objects are built with statements: GCC 12 miscompiles braced
// initializer lists with string literals inside coroutine bodies.
void routes(http::Server& s) {
  s.router().get("/hello", [](Request& r) -> Task<Response> {
    nlohmann::json j;
    j["hello"] = "world";
    j["peer"] = r.peer;
    j["unix"] = r.via_unix;
    j["q"] = r.query;
    co_return Response::json(200, j);
  });
  s.router().post("/echo", [](Request& r) -> Task<Response> {
    co_return Response::text(200, r.method + ":" + r.body);
  });
  s.router().put("/echo", [](Request& r) -> Task<Response> { co_return Response::text(201, "put:" + r.body); });
  s.router().get("/v1/services/{name}/logs", [](Request& r) -> Task<Response> {
    co_return Response::text(200, std::string(r.param("name")) + "|" + std::string(r.query_param("tail").value_or("-")));
  });
  s.router().get("/boom", [](Request&) -> Task<Response> {
    throw std::runtime_error("kaboom");
    co_return Response::text(200, "unreachable");
  });
  s.router().get("/slow", [](Request&) -> Task<Response> {
    (void)co_await runtime::sleep_for(150ms);
    co_return Response::text(200, "slow done");
  });
}

http::ServerLimits fast_limits() {
  http::ServerLimits l;
  l.header_timeout = 2000ms;
  l.idle_timeout = 2000ms;
  return l;
}

}  // namespace

TEST(Server, CurlGetAndPost) {
  serve(fast_limits(), routes, [](std::uint16_t port) {
    const std::string get = run("curl -sS -i '" + url(port, "/hello?a=1&b=x%20y") + "'");
    EXPECT_NE(get.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << get;
    EXPECT_NE(get.find("Content-Type: application/json\r\n"), std::string::npos) << get;
    EXPECT_NE(get.find("Date: "), std::string::npos) << get;
    const auto body = nlohmann::json::parse(get.substr(get.find("\r\n\r\n") + 4));
    EXPECT_EQ(body["hello"], "world");
    EXPECT_EQ(body["q"]["b"], "x y");
    EXPECT_EQ(body["unix"], false);
    EXPECT_EQ(body["peer"].get<std::string>().rfind("127.0.0.1:", 0), 0u);

    const std::string post = run("curl -sS -i -d 'name=web' '" + url(port, "/echo") + "'");
    EXPECT_NE(post.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << post;
    EXPECT_NE(post.find("Content-Length: 13\r\n"), std::string::npos) << post;
    EXPECT_NE(post.find("\r\n\r\nPOST:name=web"), std::string::npos) << post;

    const std::string param = run("curl -sS '" + url(port, "/v1/services/my%20svc/logs?tail=5") + "'");
    EXPECT_EQ(param, "my svc|5");
  });
}

TEST(Server, KeepAliveServesManyRequestsOnOneConnection) {
  serve(fast_limits(), routes, [](std::uint16_t port) {
    const int fd = connect_tcp(port);
    Reader rd(fd);
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n" + std::to_string(i)));
      auto r = rd.response();
      ASSERT_TRUE(r);
      EXPECT_EQ(r->body, "POST:" + std::to_string(i));
      EXPECT_EQ(r->header("connection"), "keep-alive");
    }
    ::close(fd);
    // curl reuses its connection for several URLs in one invocation.
    const std::string out = run("curl -sS -v '" + url(port, "/hello") + "' '" + url(port, "/hello") + "' 2>&1");
    EXPECT_NE(out.find("Re-using existing connection"), std::string::npos) << out;
  }, [](http::Server& s) -> Task<void> {
    EXPECT_EQ(s.stats().accepted, 2u);
    EXPECT_EQ(s.stats().requests, 7u);
    co_return;
  });
}

TEST(Server, PipelinedRequestsAnsweredInOrder) {
  serve(fast_limits(), routes, [](std::uint16_t port) {
    const int fd = connect_tcp(port);
    // The slow one first: a server answering out of order would send the fast ones first.
    ASSERT_TRUE(send_str(fd,
        "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        "GET /v1/services/c/logs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    Reader rd(fd);
    auto a = rd.response(), b = rd.response(), c = rd.response();
    ASSERT_TRUE(a && b && c);
    EXPECT_EQ(a->body, "slow done");
    EXPECT_EQ(b->body, "POST:abc");
    EXPECT_EQ(c->body, "c|-");
    EXPECT_EQ(c->header("connection"), "close");
    EXPECT_TRUE(rd.at_eof());
    ::close(fd);
  });
}

TEST(Server, ChunkedRequestBody) {
  serve(fast_limits(), routes, [](std::uint16_t port) {
    const int fd = connect_tcp(port);
    ASSERT_TRUE(send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "5\r\nhello\r\n"));
    std::this_thread::sleep_for(20ms);  // the body arrives in two reads
    ASSERT_TRUE(send_str(fd, "6\r\n world\r\n0\r\n\r\n"));
    Reader rd(fd);
    auto r = rd.response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "POST:hello world");
    ::close(fd);
    const std::string out =
        run("curl -sS -H 'Transfer-Encoding: chunked' --data-binary 'abc' '" + url(port, "/echo") + "'");
    EXPECT_EQ(out, "POST:abc");
  });
}

TEST(Server, ExpectContinue) {
  serve(fast_limits(), routes, [](std::uint16_t port) {
    const int fd = connect_tcp(port);
    ASSERT_TRUE(send_str(fd, "PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
    Reader rd(fd);
    auto cont = rd.response();
    ASSERT_TRUE(cont);
    EXPECT_EQ(cont->status, 100);
    ASSERT_TRUE(send_str(fd, "data"));
    auto r = rd.response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 201);
    EXPECT_EQ(r->body, "put:data");
    ::close(fd);
    const std::string out = run("curl -sS -H 'Expect: 100-continue' -T /etc/hostname '" + url(port, "/echo") + "'");
    EXPECT_EQ(out.rfind("put:", 0), 0u) << out;
  });
}

TEST(Server, NotFoundAndMethodNotAllowedAreJson) {
  serve(fast_limits(), routes, [](std::uint16_t port) {
    const std::string nf = run("curl -sS -i '" + url(port, "/nope") + "'");
    EXPECT_NE(nf.find("HTTP/1.1 404 Not Found"), std::string::npos) << nf;
    auto j = nlohmann::json::parse(nf.substr(nf.find("\r\n\r\n") + 4));
    EXPECT_EQ(j["error"], "not found");
    EXPECT_EQ(j["detail"]["path"], "/nope");

    const std::string na = run("curl -sS -i -X DELETE '" + url(port, "/echo") + "'");
    EXPECT_NE(na.find("HTTP/1.1 405 Method Not Allowed"), std::string::npos) << na;
    EXPECT_NE(na.find("Allow: POST, PUT\r\n"), std::string::npos) << na;
    j = nlohmann::json::parse(na.substr(na.find("\r\n\r\n") + 4));
    EXPECT_EQ(j["error"], "method not allowed");
  }, [](http::Server& s) -> Task<void> {
    EXPECT_EQ(s.stats().rejected.at(404), 1u);
    EXPECT_EQ(s.stats().rejected.at(405), 1u);
    co_return;
  });
}

TEST(Server, HandlerExceptionIs500AndConnectionSurvives) {
  serve(fast_limits(), routes, [](std::uint16_t port) {
    const int fd = connect_tcp(port);
    Reader rd(fd);
    ASSERT_TRUE(send_str(fd, "GET /boom HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto a = rd.response(), b = rd.response();
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->status, 500);
    EXPECT_EQ(nlohmann::json::parse(a->body)["detail"], "kaboom");
    EXPECT_EQ(b->status, 200);
    ::close(fd);
  });
}

TEST(Server, HeadHasLengthButNoBody) {
  serve(fast_limits(), routes, [](std::uint16_t port) {
    const int fd = connect_tcp(port);
    Reader rd(fd);
    ASSERT_TRUE(send_str(fd, "HEAD /v1/services/ab/logs HTTP/1.1\r\nHost: x\r\n\r\n"
                             "GET /v1/services/ab/logs HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto h = rd.response(true);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 200);
    EXPECT_EQ(h->header("content-length"), "4");
    auto g = rd.response();  // parses only if HEAD sent no body bytes
    ASSERT_TRUE(g);
    EXPECT_EQ(g->body, "ab|-");
    ::close(fd);
  });
}

TEST(Server, Http10ClosesAfterResponse) {
  serve(fast_limits(), routes, [](std::uint16_t port) {
    const int fd = connect_tcp(port);
    Reader rd(fd);
    ASSERT_TRUE(send_str(fd, "GET /hello HTTP/1.0\r\n\r\n"));
    auto r = rd.response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(rd.at_eof());
    ::close(fd);
  });
}

TEST(Server, UnixSocketWithModeStaleFileAndCleanup) {
  const std::string dir = "/tmp/dockless-http-test-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/api.sock";
  {  // a stale socket file: bound, then its owner is gone
    const int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path.c_str());
    ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::close(s);
  }
  std::string out;
  run_loop([&]() -> Task<void> {
    http::Server server(fast_limits());
    routes(server);
    auto r = server.listen_unix(path, 0660);
    EXPECT_TRUE(r.ok()) << r.message();
    struct stat st{};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0660u);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    // A second server on a live socket is refused; a regular file is not replaced.
    http::Server other;
    EXPECT_EQ(other.listen_unix(path, 0600).error(), EADDRINUSE);
    EXPECT_EQ(other.listen_unix(dir + "/none/x.sock", 0600).error(), ENOENT);
    const int efd = ::eventfd(0, EFD_CLOEXEC);
    std::thread t([&] {
      out = run("curl -sS --unix-socket " + path + " http://localhost/hello");
      const std::uint64_t one = 1;
      (void)!::write(efd, &one, sizeof one);
    });
    std::uint64_t buf = 0;
    (void)co_await runtime::read(efd, std::as_writable_bytes(std::span(&buf, 1)));
    t.join();
    ::close(efd);
    co_await other.stop(100ms);
    co_await server.stop(100ms);
  });
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["unix"], true);
  EXPECT_EQ(j["peer"], "unix");
  EXPECT_FALSE(std::filesystem::exists(path)) << "socket file left behind";
  {
    std::FILE* f = std::fopen((dir + "/plain").c_str(), "w");
    std::fclose(f);
    run_loop([&]() -> Task<void> {
      http::Server s;
      EXPECT_EQ(s.listen_unix(dir + "/plain", 0600).error(), EEXIST);
      co_await s.stop(100ms);
    });
  }
  std::filesystem::remove_all(dir);
}

TEST(Server, Ipv6Loopback) {
  std::string out;
  bool skipped = false;
  run_loop([&]() -> Task<void> {
    http::Server server(fast_limits());
    routes(server);
    auto port = server.listen_tcp("::1", 0);
    if (!port) {
      skipped = true;
      co_await server.stop(100ms);
      co_return;
    }
    const int efd = ::eventfd(0, EFD_CLOEXEC);
    std::thread t([&] {
      out = run("curl -sS -g 'http://[::1]:" + std::to_string(*port) + "/hello'");
      const std::uint64_t one = 1;
      (void)!::write(efd, &one, sizeof one);
    });
    std::uint64_t buf = 0;
    (void)co_await runtime::read(efd, std::as_writable_bytes(std::span(&buf, 1)));
    t.join();
    ::close(efd);
    co_await server.stop(100ms);
  });
  if (skipped) GTEST_SKIP() << "no IPv6 loopback here";
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["peer"].get<std::string>().rfind("[::1]:", 0), 0u) << out;
}

TEST(Server, AdoptsAListeningSocket) {
  // What systemd hands over: a bound, listening, blocking socket.
  const int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(lfd, 16), 0);
  socklen_t len = sizeof a;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  const std::uint16_t port = ntohs(a.sin_port);
  std::string out;
  run_loop([&]() -> Task<void> {
    http::Server server(fast_limits());
    routes(server);
    auto r = server.adopt_listener(lfd);
    EXPECT_TRUE(r.ok()) << r.message();
    const int efd = ::eventfd(0, EFD_CLOEXEC);
    std::thread t([&] {
      out = run("curl -sS '" + url(port, "/v1/services/x/logs") + "'");
      const std::uint64_t one = 1;
      (void)!::write(efd, &one, sizeof one);
    });
    std::uint64_t buf = 0;
    (void)co_await runtime::read(efd, std::as_writable_bytes(std::span(&buf, 1)));
    t.join();
    ::close(efd);
    co_await server.stop(100ms);
  });
  EXPECT_EQ(out, "x|-");
  EXPECT_EQ(::fcntl(lfd, F_GETFD), -1) << "the adopted fd was not closed at stop";
}

TEST(Server, NoFdLeakAfterThousandConnections) {
  const int before = count_fds();
  serve(fast_limits(), routes, [](std::uint16_t port) {
    for (int i = 0; i < 1000; ++i) {
      const int fd = connect_tcp(port);
      ASSERT_GE(fd, 0);
      // Alternate: a full request, and a client that leaves without one.
      if (i % 2 == 0) {
        ASSERT_TRUE(send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        Reader rd(fd);
        auto r = rd.response();
        ASSERT_TRUE(r);
        ASSERT_EQ(r->status, 200);
      }
      ::close(fd);
    }
  }, [](http::Server& s) -> Task<void> {
    EXPECT_TRUE(co_await eventually([&] { return s.stats().open_connections == 0; }));
    EXPECT_EQ(s.stats().accepted, 1000u);
    EXPECT_EQ(s.stats().requests, 500u);
  });
  EXPECT_EQ(count_fds(), before);
}

TEST(Server, StopFinishesInFlightRequestAndClosesIdle) {
  std::atomic<int> phase{0};
  std::string slow_reply;
  run_loop([&]() -> Task<void> {
    http::Server server(fast_limits());
    routes(server);
    auto port = server.listen_tcp("127.0.0.1", 0);
    const int efd = ::eventfd(0, EFD_CLOEXEC);
    std::atomic<bool> idle_closed{false};
    std::thread t([&, p = *port] {
      const int idle = connect_tcp(p);
      const int busy = connect_tcp(p);
      send_str(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
      phase = 1;
      Reader rb(busy), ri(idle);
      auto r = rb.response();
      if (r) slow_reply = r->body + "|" + r->header("connection");
      idle_closed = ri.at_eof();
      ::close(idle);
      ::close(busy);
      const std::uint64_t one = 1;
      (void)!::write(efd, &one, sizeof one);
    });
    EXPECT_TRUE(co_await eventually([&] { return phase == 1 && server.stats().open_connections == 2; }));
    (void)co_await runtime::sleep_for(30ms);  // the slow request is being handled now
    const auto t0 = Clock::now();
    co_await server.stop(2000ms);
    EXPECT_LT(Clock::now() - t0, 1000ms);
    std::uint64_t buf = 0;
    (void)co_await runtime::read(efd, std::as_writable_bytes(std::span(&buf, 1)));
    t.join();
    ::close(efd);
    EXPECT_TRUE(idle_closed);
  });
  EXPECT_EQ(slow_reply, "slow done|close");
}

// The upgrade's hand-over: released listeners stay open (a client connecting
// meanwhile waits in the backlog, its unix path is not unlinked) and another server
// resuming on them (the new image) answers that client.
TEST(Server, ReleasedListenersKeepTheirBacklogForTheNextServer) {
  const std::string dir = std::filesystem::temp_directory_path() / ("dockless-release-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/api.sock";
  std::string reply;
  std::string unix_reply;
  run_loop([&]() -> Task<void> {
    auto old_image = std::make_unique<http::Server>(fast_limits());
    routes(*old_image);
    auto port = old_image->listen_tcp("127.0.0.1", 0);
    EXPECT_TRUE(old_image->listen_unix(path, 0660).ok());
    std::vector<http::ReleasedListener> released = co_await old_image->release_listeners();
    co_await old_image->stop(100ms);
    old_image.reset();
    EXPECT_EQ(released.size(), 2u);
    EXPECT_TRUE(std::filesystem::exists(path)) << "unlinked while handed over";
    // Nobody accepts now: the connection completes in the backlog and waits.
    const int fd = connect_tcp(*port);
    EXPECT_GE(fd, 0);
    send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    http::Server new_image(fast_limits());
    routes(new_image);
    new_image.resume(std::move(released));
    const int efd = ::eventfd(0, EFD_CLOEXEC);
    std::thread t([&] {
      Reader r(fd);
      if (auto got = r.response())
        reply = std::to_string(got->status) + (got->body.find("\"hello\":\"world\"") != std::string::npos ? " hello" : " " + got->body);
      unix_reply = run("curl -sS --unix-socket " + path + " http://localhost/hello");
      const std::uint64_t one = 1;
      (void)!::write(efd, &one, sizeof one);
    });
    std::uint64_t buf = 0;
    (void)co_await runtime::read(efd, std::as_writable_bytes(std::span(&buf, 1)));
    t.join();
    ::close(efd);
    ::close(fd);
    co_await new_image.stop(100ms);
  });
  EXPECT_EQ(reply, "200 hello");
  EXPECT_NE(unix_reply.find("\"unix\":true"), std::string::npos) << unix_reply;
  // The resumed server owns the path again and removes it at its stop.
  EXPECT_FALSE(std::filesystem::exists(path));
  std::filesystem::remove_all(dir);
}

TEST(Server, DestroyedWithoutStopWindsDownSafely) {
  // The actors share the server's state: destroying the Server mid-connection
  // cancels them, and they end without touching freed memory (ASan checks).
  std::atomic<bool> eof{false};
  std::thread t;
  run_loop([&]() -> Task<void> {
    std::uint16_t port = 0;
    {
      http::Server server(fast_limits());
      routes(server);
      port = server.listen_tcp("127.0.0.1", 0).value_or(0);
      t = std::thread([&eof, port] {
        const int fd = connect_tcp(port);
        Reader rd(fd);
        eof = rd.at_eof();
        ::close(fd);
      });
      EXPECT_TRUE(co_await eventually([&] { return server.stats().open_connections == 1; }));
    }
    EXPECT_TRUE(co_await eventually([&] { return eof.load(); }));
    // The listener is gone too.
    EXPECT_EQ(connect_tcp(port), -1);
  });
  t.join();
  EXPECT_TRUE(eof);
}
