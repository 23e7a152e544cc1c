// Hostile request heads (issue #15): trailers and chunk extensions against the header
// limit and never taken for headers, Host rules, field-name whitespace, obs-fold,
// absolute-form, transfer-codings and methods we do not implement, duplicated
// credentials, no "100 Continue" for a refused request, JSON nesting depth.
#include <cstring>

#include "harness.hpp"
#include "http/json_limits.hpp"
#include "http/parser.hpp"

using http::Request;
using http::RequestParser;
using http::Response;
using runtime::Task;
using namespace test;

namespace {

// Feeds `in` whole (and again byte by byte: a rule must not depend on how reads
// split the input) and returns the status it ends with: 0 when the message
// completed, else the parser's error status.
int verdict_of(const std::string& in, std::size_t max_header = 1024, Request* out = nullptr) {
  int result = -1;
  for (const bool bytewise : {false, true}) {
    RequestParser p(1000, max_header);
    std::size_t fed = 0;
    std::size_t avail = bytewise ? 1 : in.size();
    int got = -1;
    for (int guard = 0; guard < 100000 && got < 0; ++guard) {
      const auto st = p.feed(in.data() + fed, std::min(avail, in.size()) - fed);
      fed += st.consumed;
      if (st.event == RequestParser::Event::error) got = p.error_status();
      else if (st.event == RequestParser::Event::message_complete) got = 0;
      else if (st.event == RequestParser::Event::need_more) {
        if (avail >= in.size()) break;
        avail = bytewise ? avail + 1 : in.size();
      }
    }
    if (out && !bytewise && got == 0) *out = p.request();
    if (result >= 0 && got != result) return -2;  // the split changed the verdict
    result = got;
  }
  return result;
}

}  // namespace

TEST(Hardening, TrailersAreNeverHeaders) {
  Request req;
  EXPECT_EQ(verdict_of("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabc\r\n0\r\nAuthorization: Bearer sneaky-key-0123456789\r\nX-T: 1\r\n\r\n",
                       1024, &req),
            0);
  EXPECT_EQ(req.body, "abc");
  EXPECT_FALSE(req.headers.has("Authorization"));
  EXPECT_FALSE(req.headers.has("X-T"));
}

TEST(Hardening, TrailersAndChunkExtensionsCountAgainstTheHeaderLimit) {
  const std::string head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  EXPECT_EQ(verdict_of(head + "0\r\nX-Big: " + std::string(2000, 'b') + "\r\n\r\n"), 431);
  EXPECT_EQ(verdict_of(head + "3;ext=" + std::string(2000, 'e') + "\r\nabc\r\n0\r\n\r\n"), 431);
  // Many small trailers add up.
  std::string many;
  for (int i = 0; i < 200; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(verdict_of(head + "0\r\n" + many + "\r\n"), 431);
  // Streamed without end: refused once past the limit, not after the stream ends.
  RequestParser p(1000, 1024);
  std::string in = head + "0\r\nX-Stream: ";
  auto st = p.feed(in.data(), in.size());
  ASSERT_EQ(st.event, RequestParser::Event::headers_complete);
  std::size_t off = st.consumed;
  std::size_t sent = 0;
  const std::string piece(4096, 's');
  for (; sent < (64u << 20); sent += piece.size()) {
    if (off < in.size()) {
      st = p.feed(in.data() + off, in.size() - off);
      off += st.consumed;
    } else {
      st = p.feed(piece.data(), piece.size());
    }
    if (st.event == RequestParser::Event::error) break;
  }
  EXPECT_EQ(p.error_status(), 431);
  EXPECT_LT(sent, 8192u);
}

TEST(Hardening, HostRules) {
  EXPECT_EQ(verdict_of("GET / HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(verdict_of("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
  for (const char* bad : {"a b", "a/b", "a@b", "[::1", "a:80x", "a:123456", "\"a\""})
    EXPECT_EQ(verdict_of(std::string("GET / HTTP/1.1\r\nHost: ") + bad + "\r\n\r\n"), 400) << bad;
  for (const char* ok : {"example.com", "example.com:8080", "127.0.0.1:3080", "[::1]:3080", "xn--d-fka.example", "a%41"})
    EXPECT_EQ(verdict_of(std::string("GET / HTTP/1.1\r\nHost: ") + ok + "\r\n\r\n"), 0) << ok;
  EXPECT_EQ(verdict_of("GET / HTTP/1.0\r\n\r\n"), 0);  // Host is optional in HTTP/1.0
}

TEST(Hardening, FieldSyntax) {
  EXPECT_EQ(verdict_of("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), 400);
  EXPECT_EQ(verdict_of("GET / HTTP/1.1\r\nHost: x\r\nX-A\t: 1\r\n\r\n"), 400);
  EXPECT_EQ(verdict_of("GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n"), 400);
  EXPECT_EQ(verdict_of("GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\tfolded\r\n\r\n"), 400);
  EXPECT_EQ(verdict_of("GET / HTTP/1.1\r\nHost: x\r\nX-A: one two\r\n\r\n"), 0);
  EXPECT_EQ(verdict_of("GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n"),
            400);
  EXPECT_EQ(verdict_of("GET / HTTP/1.1\r\nHost: x\r\nauthorization: Bearer a\r\nAUTHORIZATION: Bearer b\r\n\r\n"),
            400);
}

TEST(Hardening, AbsoluteFormTarget) {
  Request req;
  EXPECT_EQ(verdict_of("GET http://example.com:3080/v1/services?x=1 HTTP/1.1\r\nHost: example.com:3080\r\n\r\n",
                       1024, &req),
            0);
  EXPECT_EQ(req.target, "/v1/services?x=1");
  EXPECT_EQ(verdict_of("GET HTTP://h HTTP/1.1\r\nHost: h\r\n\r\n", 1024, &req), 0);
  EXPECT_EQ(req.target, "/");
  EXPECT_EQ(verdict_of("GET http://a b/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
}

TEST(Hardening, UnimplementedIs501) {
  EXPECT_EQ(verdict_of("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"), 501);
  EXPECT_EQ(verdict_of("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), 501);
  EXPECT_EQ(verdict_of("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"), 400);
  EXPECT_EQ(verdict_of("FOO / HTTP/1.1\r\nHost: x\r\n\r\n"), 501);
  EXPECT_EQ(verdict_of("get / HTTP/1.1\r\nHost: x\r\n\r\n"), 501);
  EXPECT_EQ(verdict_of("PROPFIND / HTTP/1.1\r\nHost: x\r\n\r\n"), 501);
  EXPECT_EQ(verdict_of("TRACE / HTTP/1.1\r\nHost: x\r\n\r\n"), 501);
  EXPECT_EQ(verdict_of("NOT HTTP AT ALL\r\n\r\n"), 400);
  EXPECT_EQ(verdict_of(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)), 400);
}

TEST(Hardening, JsonDepth) {
  EXPECT_TRUE(http::json_depth_within(R"({"a": [1, {"b": "[[[[[["}]})", 3));
  EXPECT_FALSE(http::json_depth_within("[[[[1]]]]", 3));
  EXPECT_TRUE(http::json_depth_within(R"(["\"[[[[[[[["])", 1));
  EXPECT_FALSE(http::json_depth_within(std::string(30000, '[') + std::string(30000, ']')));
  EXPECT_TRUE(http::json_depth_within(std::string(64, '{') + std::string(64, '}')));
}

namespace {
void gated(http::Server& s) {
  s.router().post("/echo", [](Request& r) -> Task<Response> { co_return Response::text(200, r.body); });
  s.router().get("/hello", [](Request&) -> Task<Response> { co_return Response::text(200, "hi"); });
  s.set_filter([](const Request& r, http::Headers&) -> std::optional<Response> {
    if (r.headers.get("Authorization") == "Bearer good") return std::nullopt;
    return Response::error(401, "no");
  });
}
}  // namespace

TEST(Hardening, NoContinueForARefusedRequest) {
  serve({}, gated, [](std::uint16_t port) {
    const int fd = connect_tcp(port);
    ASSERT_TRUE(send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
    Reader rd(fd);
    auto r = rd.response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401);
    ::close(fd);
    // With the key: 100, then the answer.
    const int ok = connect_tcp(port);
    ASSERT_TRUE(send_str(ok, "POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good\r\nContent-Length: 4\r\n"
                             "Expect: 100-continue\r\n\r\n"));
    Reader rd2(ok);
    auto cont = rd2.response();
    ASSERT_TRUE(cont);
    EXPECT_EQ(cont->status, 100);
    ASSERT_TRUE(send_str(ok, "body"));
    auto r2 = rd2.response();
    ASSERT_TRUE(r2);
    EXPECT_EQ(r2->status, 200);
    EXPECT_EQ(r2->body, "body");
    ::close(ok);
  });
}

TEST(Hardening, OverTheWire) {
  http::ServerLimits l;
  l.max_header_bytes = 1024;
  serve(l, gated, [](std::uint16_t port) {
    auto status_of = [&](const std::string& in) {
      const int fd = connect_tcp(port);
      (void)send_str(fd, in);
      Reader rd(fd);
      auto r = rd.response();
      ::close(fd);
      return r ? r->status : 0;
    };
    // A trailer's Authorization does not authenticate.
    EXPECT_EQ(status_of("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "3\r\nabc\r\n0\r\nAuthorization: Bearer good\r\n\r\n"),
              401);
    EXPECT_EQ(status_of("GET /hello HTTP/1.1\r\nAuthorization: Bearer good\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET http://x/hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good\r\n\r\n"), 200);
    EXPECT_EQ(status_of("BREW /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 501);
    // An endless trailer is cut off at the limit with 431, while it still streams.
    const int fd = connect_tcp(port);
    ASSERT_TRUE(send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n0\r\nX-Endless: "));
    const std::string piece(4096, 'e');
    for (int i = 0; i < 64 && send_str(fd, piece); ++i) {
    }
    Reader rd(fd);
    auto r = rd.response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 431);
    ::close(fd);
  });
}
