// Streaming responses: chunks arrive as written (curl -N), a client leaving
// mid-stream is noticed (write error, stop token, actor freed), back-pressure
// from a client that does not read, HEAD, respond() instead of a stream, and
// server stop ending a stream cleanly.
#include "harness.hpp"
#include "http/stream.hpp"

using http::Request;
using http::Response;
using http::ResponseStream;
using runtime::Task;
using namespace test;

namespace {

struct Probe {
  std::atomic<int> write_error{0};
  std::atomic<bool> stop_seen{false};
  std::atomic<bool> handler_done{false};
  std::atomic<std::size_t> bytes_written{0};
};

void routes(http::Server& s, Probe& probe) {
  s.router().add_stream("GET", "/ticks", [](Request& r, ResponseStream& out) -> Task<void> {
    out.header("Content-Type", "text/plain");
    const int n = std::stoi(std::string(r.query_param("n").value_or("5")));
    for (int i = 1; i <= n; ++i) {
      const std::string line = "tick " + std::to_string(i) + "\n";
      if (!co_await out.write(line)) co_return;
      (void)co_await runtime::sleep_for(50ms).stop_on(out.stop_token());
    }
  });
  s.router().add_stream("GET", "/follow", [&probe](Request&, ResponseStream& out) -> Task<void> {
    for (int i = 0; i < 100000; ++i) {
      const std::string chunk(std::size_t{16384}, 'x');
      auto r = co_await out.write(chunk);
      if (!r) {
        probe.write_error = r.error();
        break;
      }
      probe.bytes_written += chunk.size();
      (void)co_await runtime::sleep_for(5ms).stop_on(out.stop_token());
      if (out.stop_token().stop_requested()) break;
    }
    probe.stop_seen = out.stop_token().stop_requested();
    probe.handler_done = true;
  });
  s.router().add_stream("GET", "/logs/{name}", [](Request& r, ResponseStream& out) -> Task<void> {
    if (r.param("name") != "web") {
      out.respond(Response::error(404, "no such service", std::string(r.param("name"))));
      co_return;
    }
    (void)co_await out.write("line\n");
    // Follows until told to stop (the server stopping, or the client leaving).
    (void)co_await runtime::sleep_for(10s).stop_on(out.stop_token());
    (void)co_await out.write("bye\n");
  });
}

http::ServerLimits limits() {
  http::ServerLimits l;
  l.header_timeout = 2000ms;
  l.idle_timeout = 2000ms;
  l.write_timeout = 300ms;
  return l;
}

}  // namespace

TEST(Stream, CurlSeesChunksAsTheyAreWritten) {
  Probe probe;
  std::vector<std::pair<std::string, Clock::time_point>> lines;
  serve(limits(), [&](http::Server& s) { routes(s, probe); }, [&](std::uint16_t port) {
    FILE* p = ::popen(("timeout 10 curl -sS -N '" + url(port, "/ticks?n=5") + "'").c_str(), "r");
    ASSERT_NE(p, nullptr);
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) lines.emplace_back(buf, Clock::now());
    EXPECT_EQ(::pclose(p), 0);
  }, [](http::Server& s) -> Task<void> {
    EXPECT_TRUE(co_await eventually([&] { return s.stats().open_streams == 0; }));
  });
  ASSERT_EQ(lines.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(lines[i].first, "tick " + std::to_string(i + 1) + "\n");
  // Written 50 ms apart (200 ms first to last): a buffered body would arrive at once.
  EXPECT_GE(lines.back().second - lines.front().second, 100ms);
}

TEST(Stream, ChunkedFramingAndKeepAliveAfterTheStream) {
  Probe probe;
  serve(limits(), [&](http::Server& s) { routes(s, probe); }, [&](std::uint16_t port) {
    const int fd = connect_tcp(port);
    ASSERT_TRUE(send_str(fd, "GET /ticks?n=3 HTTP/1.1\r\nHost: x\r\n\r\nGET /logs/nope HTTP/1.1\r\nHost: x\r\n\r\n"));
    Reader rd(fd);
    auto r = rd.response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header("transfer-encoding"), "chunked");
    EXPECT_EQ(r->header("connection"), "keep-alive");
    EXPECT_EQ(r->body, "tick 1\ntick 2\ntick 3\n");
    auto nf = rd.response();  // respond() instead of a stream: a plain 404
    ASSERT_TRUE(nf);
    EXPECT_EQ(nf->status, 404);
    EXPECT_EQ(nlohmann::json::parse(nf->body)["detail"], "nope");
    // HEAD of a stream: the head only, and the handler is told to stop.
    ASSERT_TRUE(send_str(fd, "HEAD /ticks?n=1000 HTTP/1.1\r\nHost: x\r\n\r\nGET /ticks?n=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto h = rd.response(true);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 200);
    auto after = rd.response();
    ASSERT_TRUE(after);
    EXPECT_EQ(after->body, "tick 1\n");
    ::close(fd);
  });
}

TEST(Stream, ClientLeavingMidStreamFreesTheConnection) {
  Probe probe;
  serve(limits(), [&](http::Server& s) { routes(s, probe); }, [&](std::uint16_t port) {
    const int fd = connect_tcp(port);
    ASSERT_TRUE(send_str(fd, "GET /follow HTTP/1.1\r\nHost: x\r\n\r\n"));
    Reader rd(fd);
    ASSERT_TRUE(rd.need(20000));  // the head and the first chunk or so
    ::close(fd);
  }, [&](http::Server& s) -> Task<void> {
    EXPECT_TRUE(co_await eventually([&] { return probe.handler_done.load(); }));
    EXPECT_TRUE(probe.stop_seen);
    EXPECT_TRUE(co_await eventually([&] { return s.stats().open_connections == 0; }));
    EXPECT_EQ(s.stats().open_streams, 0u);
    EXPECT_LT(probe.bytes_written, std::size_t{100} * 16384) << "the stream went on long after the client left";
  });
}

TEST(Stream, WriteErrorWhenTheClientIsGone) {
  // The handler writes without waiting on the stop token: its write must fail.
  Probe probe;
  serve(limits(), [&](http::Server& s) {
    s.router().add_stream("GET", "/blast", [&probe](Request&, ResponseStream& out) -> Task<void> {
      const std::string chunk(std::size_t{4096}, 'y');
      for (int i = 0; i < 100000; ++i) {
        auto r = co_await out.write(chunk);
        if (!r) {
          probe.write_error = r.error();
          break;
        }
        (void)co_await runtime::sleep_for(2ms);
      }
      probe.stop_seen = out.stop_token().stop_requested();
      probe.handler_done = true;
    });
  }, [&](std::uint16_t port) {
    const int fd = connect_tcp(port);
    ASSERT_TRUE(send_str(fd, "GET /blast HTTP/1.1\r\nHost: x\r\n\r\n"));
    Reader rd(fd);
    ASSERT_TRUE(rd.need(5000));
    ::close(fd);
  }, [&](http::Server& s) -> Task<void> {
    EXPECT_TRUE(co_await eventually([&] { return probe.handler_done.load(); }));
    EXPECT_EQ(probe.write_error, EPIPE);
    EXPECT_TRUE(probe.stop_seen);
    EXPECT_TRUE(co_await eventually([&] { return s.stats().open_connections == 0; }));
  });
}

TEST(Stream, BackPressureThenWriteTimeoutForAClientThatDoesNotRead) {
  Probe probe;
  serve(limits(), [&](http::Server& s) { routes(s, probe); }, [&](std::uint16_t port) {
    const int fd = connect_tcp(port);
    const int small = 4096;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    ASSERT_TRUE(send_str(fd, "GET /follow HTTP/1.1\r\nHost: x\r\n\r\n"));
    // Never read: the server's writes block, then time out (write_timeout 300 ms).
    for (int i = 0; i < 300 && !probe.handler_done; ++i) std::this_thread::sleep_for(10ms);
    ::close(fd);
  }, [&](http::Server& s) -> Task<void> {
    EXPECT_TRUE(co_await eventually([&] { return probe.handler_done.load(); }));
    EXPECT_EQ(probe.write_error, ETIME);
    // Bounded by the socket buffers, not by how long the handler ran.
    EXPECT_LT(probe.bytes_written, std::size_t{8} * 1024 * 1024);
    EXPECT_GE(s.stats().timeouts, 1u);
  });
}

TEST(Stream, ServerStopEndsStreamsCleanly) {
  Probe probe;
  std::string body;
  run_loop([&]() -> Task<void> {
    http::Server server(limits());
    routes(server, probe);
    auto port = server.listen_tcp("127.0.0.1", 0);
    std::thread t([&, p = *port] {
      const int fd = connect_tcp(p);
      send_str(fd, "GET /logs/web HTTP/1.1\r\nHost: x\r\n\r\n");
      Reader rd(fd);
      auto r = rd.response();  // complete only with the terminating chunk
      if (r) body = r->body + (rd.at_eof() ? "|eof" : "|open");
      ::close(fd);
    });
    EXPECT_TRUE(co_await eventually([&] { return server.stats().open_streams == 1; }));
    (void)co_await runtime::sleep_for(20ms);
    const auto t0 = Clock::now();
    co_await server.stop(2000ms);
    EXPECT_LT(Clock::now() - t0, 500ms);
    t.join();
  });
  EXPECT_EQ(body, "line\nbye\n|eof");
}

TEST(Stream, Http10StreamIsCloseDelimited) {
  Probe probe;
  serve(limits(), [&](http::Server& s) { routes(s, probe); }, [&](std::uint16_t port) {
    const int fd = connect_tcp(port);
    ASSERT_TRUE(send_str(fd, "GET /ticks?n=2 HTTP/1.0\r\n\r\n"));
    Reader rd(fd);
    auto r = rd.response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header("transfer-encoding"), "");
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_EQ(r->body, "tick 1\ntick 2\n");
    ::close(fd);
  });
}
