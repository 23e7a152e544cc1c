// Limits and hostile clients: oversize bodies and headers, malformed requests,
// slowloris, idle keep-alive, the connection cap, and the drain deadline.
#include "harness.hpp"

using http::Request;
using http::Response;
using runtime::Task;
using namespace test;

namespace {

void routes(http::Server& s) {
  s.router().post("/echo", [](Request& r) -> Task<Response> { co_return Response::text(200, r.body); });
  s.router().get("/hello", [](Request&) -> Task<Response> { co_return Response::text(200, "hi"); });
  s.router().get("/forever", [](Request& r) -> Task<Response> {
    // Ignores everything but a hard kill: what the drain deadline is for.
    (void)co_await runtime::sleep_for(10s).stop_on(r.stop);
    co_return Response::text(200, "late");
  });
}

http::ServerLimits small_limits() {
  http::ServerLimits l;
  l.max_body_bytes = 1000;
  l.max_header_bytes = 1024;
  l.header_timeout = 300ms;
  l.body_timeout = 300ms;
  l.idle_timeout = 200ms;
  return l;
}

}  // namespace

TEST(Limits, DeclaredOversizeBodyIs413BeforeTheBodyIsSent) {
  serve(small_limits(), routes, [](std::uint16_t port) {
    const int fd = connect_tcp(port);
    // Only the head: a 413 that waited for the body would never come.
    ASSERT_TRUE(send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n"));
    Reader rd(fd);
    auto r = rd.response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_EQ(nlohmann::json::parse(r->body)["error"], "request body too large");
    EXPECT_TRUE(rd.at_eof());
    ::close(fd);
  }, [](http::Server& s) -> Task<void> {
    EXPECT_EQ(s.stats().rejected.at(413), 1u);
    co_return;
  });
}

TEST(Limits, ChunkedBodyCutOffAtTheLimit) {
  serve(small_limits(), routes, [](std::uint16_t port) {
    const int fd = connect_tcp(port);
    std::string req = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; ++i) req += "190\r\n" + std::string(400, 'a') + "\r\n";  // 1200 > 1000
    ASSERT_TRUE(send_str(fd, req));
    Reader rd(fd);
    auto r = rd.response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    ::close(fd);
  });
}

TEST(Limits, OversizeHeaderIs431) {
  serve(small_limits(), routes, [](std::uint16_t port) {
    const int fd = connect_tcp(port);
    ASSERT_TRUE(send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'b') + "\r\n\r\n"));
    Reader rd(fd);
    auto r = rd.response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 431);
    ::close(fd);
    // Just under the limit is fine.
    const int ok = connect_tcp(port);
    ASSERT_TRUE(send_str(ok, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(900, 'b') + "\r\n\r\n"));
    Reader rd2(ok);
    auto r2 = rd2.response();
    ASSERT_TRUE(r2);
    EXPECT_EQ(r2->status, 200);
    ::close(ok);
  });
}

TEST(Limits, MalformedRequestIs400JsonAndClose) {
  serve(small_limits(), routes, [](std::uint16_t port) {
    for (const char* bad : {"NOT HTTP AT ALL\r\n\r\n", "GET /hello HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
                            "GET /hello?x=%zz HTTP/1.1\r\nConnection: close\r\n\r\n"}) {
      const int fd = connect_tcp(port);
      ASSERT_TRUE(send_str(fd, bad));
      Reader rd(fd);
      auto r = rd.response();
      ASSERT_TRUE(r) << bad;
      EXPECT_EQ(r->status, 400) << bad;
      EXPECT_FALSE(nlohmann::json::parse(r->body)["error"].get<std::string>().empty());
      EXPECT_TRUE(rd.at_eof()) << bad;
      ::close(fd);
    }
  });
}

TEST(Limits, SlowlorisDroppedWhileOthersAreServed) {
  std::atomic<long> slow_lived_ms{0};
  std::atomic<int> served{0};
  std::atomic<long> worst_ms{0};
  serve(small_limits(), routes, [&](std::uint16_t port) {
    std::thread loris([&] {
      const auto t0 = Clock::now();
      const int fd = connect_tcp(port);
      const std::string req = "GET /hello HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(40, 'p') + "\r\n\r\n";
      for (char c : req) {
        if (!send_str(fd, std::string_view(&c, 1))) break;
        std::this_thread::sleep_for(50ms);
        char b;
        if (::recv(fd, &b, 1, MSG_DONTWAIT | MSG_PEEK) >= 0) break;  // answered (408) or closed
      }
      Reader rd(fd);
      auto r = rd.response();
      if (r) {
        EXPECT_EQ(r->status, 408);
      }
      slow_lived_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
      ::close(fd);
    });
    // Meanwhile, ordinary clients are answered at once.
    for (int i = 0; i < 10; ++i) {
      const auto t0 = Clock::now();
      const int fd = connect_tcp(port);
      send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      Reader rd(fd);
      auto r = rd.response();
      if (r && r->status == 200) ++served;
      worst_ms = std::max<long>(worst_ms, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
      ::close(fd);
      std::this_thread::sleep_for(30ms);
    }
    loris.join();
  }, [](http::Server& s) -> Task<void> {
    EXPECT_GE(s.stats().timeouts, 1u);
    co_return;
  });
  EXPECT_EQ(served, 10);
  EXPECT_LT(worst_ms, 250);  // far below the 300 ms the slow client holds its connection
  EXPECT_GE(slow_lived_ms, 250);  // header_timeout 300 ms from accept
  EXPECT_LT(slow_lived_ms, 1500);
}

TEST(Limits, IdleKeepAliveConnectionClosed) {
  serve(small_limits(), routes, [](std::uint16_t port) {
    const int fd = connect_tcp(port);
    ASSERT_TRUE(send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    Reader rd(fd);
    ASSERT_TRUE(rd.response());
    const auto t0 = Clock::now();
    EXPECT_TRUE(rd.at_eof());  // the server closes after idle_timeout (200 ms)
    const auto waited = Clock::now() - t0;
    EXPECT_GE(waited, 100ms);  // the idle clock started when the server sent the response
    EXPECT_LT(waited, 1500ms);
    ::close(fd);
  });
}

TEST(Limits, ConnectionCapAnswers503) {
  http::ServerLimits l = small_limits();
  l.max_connections = 2;
  l.header_timeout = 5000ms;
  serve(l, routes, [](std::uint16_t port) {
    const int a = connect_tcp(port), b = connect_tcp(port);
    std::this_thread::sleep_for(50ms);  // both accepted and counted
    const int c = connect_tcp(port);
    Reader rc(c);
    auto r = rc.response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);
    EXPECT_EQ(r->header("retry-after"), "1");
    ::close(c);
    // The two admitted ones are served normally; once one leaves, room again.
    ASSERT_TRUE(send_str(a, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    Reader ra(a);
    auto ok = ra.response();
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
    ::close(a);
    std::this_thread::sleep_for(50ms);
    const int d = connect_tcp(port);
    ASSERT_TRUE(send_str(d, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    Reader rd(d);
    auto ok2 = rd.response();
    ASSERT_TRUE(ok2);
    EXPECT_EQ(ok2->status, 200);
    ::close(d);
    ::close(b);
  }, [](http::Server& s) -> Task<void> {
    EXPECT_EQ(s.stats().rejected.at(503), 1u);
    co_return;
  });
}

TEST(Limits, DrainDeadlineCancelsStuckHandlers) {
  run_loop([&]() -> Task<void> {
    http::Server server(small_limits());
    routes(server);
    auto port = server.listen_tcp("127.0.0.1", 0);
    std::atomic<bool> eof{false};
    std::thread t([&, p = *port] {
      const int fd = connect_tcp(p);
      send_str(fd, "GET /forever HTTP/1.1\r\nHost: x\r\n\r\n");
      Reader rd(fd);
      auto r = rd.response();  // the cancelled handler still answers, then the connection closes
      eof = !r || rd.at_eof();
      ::close(fd);
    });
    EXPECT_TRUE(co_await eventually([&] { return server.stats().open_connections == 1; }));
    (void)co_await runtime::sleep_for(50ms);
    const auto t0 = Clock::now();
    co_await server.stop(100ms);
    const auto took = Clock::now() - t0;
    EXPECT_GE(took, 90ms);
    EXPECT_LT(took, 1000ms);
    EXPECT_EQ(server.stats().open_connections, 0u);
    // The client thread blocks in recv until the server closes; join off-loop is fine now.
    t.join();
    EXPECT_TRUE(eof);
  });
}

// One address holding every slot it may have is refused (429) while another
// address on the same host is still served; a slot freed is a slot again.
TEST(Limits, PerClientCapAnswers429AndSparesOtherClients) {
  http::ServerLimits l = small_limits();
  l.max_connections_per_client = 3;
  l.header_timeout = 5000ms;
  serve(l, routes, [](std::uint16_t port) {
    std::vector<int> held;
    held.reserve(3);
    for (int i = 0; i < 3; ++i) held.push_back(connect_tcp(port, 5000ms, "127.0.0.1"));
    for (int fd : held) ASSERT_GE(fd, 0);
    std::this_thread::sleep_for(50ms);  // all accepted and counted
    const int over = connect_tcp(port, 5000ms, "127.0.0.1");
    ASSERT_GE(over, 0);
    Reader ro(over);
    auto r = ro.response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 429);
    EXPECT_EQ(r->header("retry-after"), "1");
    ::close(over);

    const int other = connect_tcp(port, 5000ms, "127.0.0.2");
    ASSERT_GE(other, 0) << "bind 127.0.0.2";
    ASSERT_TRUE(send_str(other, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    Reader rother(other);
    auto ok = rother.response();
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
    ::close(other);

    ::close(held[0]);
    held.erase(held.begin());
    std::this_thread::sleep_for(100ms);
    const int again = connect_tcp(port, 5000ms, "127.0.0.1");
    ASSERT_TRUE(send_str(again, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    Reader ra(again);
    auto ok2 = ra.response();
    ASSERT_TRUE(ok2);
    EXPECT_EQ(ok2->status, 200);
    ::close(again);
    for (int fd : held) ::close(fd);
  }, [](http::Server& s) -> Task<void> {
    EXPECT_EQ(s.stats().rejected.at(429), 1u);
    co_return;
  });
}
