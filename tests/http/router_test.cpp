// The pure pieces: URL decoding, query strings, the router, the llhttp wrapper,
// headers and response helpers. No sockets.
#include <gtest/gtest.h>

#include "http/parser.hpp"
#include "http/router.hpp"
#include "http/url.hpp"

using http::Request;
using http::Response;
using http::Router;
using Kind = http::Router::Match::Kind;

namespace {
runtime::Task<Response> ok(Request&) { co_return Response::text(200, "ok"); }
}  // namespace

TEST(Url, PercentDecode) {
  EXPECT_EQ(http::percent_decode("a%20b%2Fc").value(), "a b/c");
  EXPECT_EQ(http::percent_decode("a+b").value(), "a+b");
  EXPECT_EQ(http::percent_decode("a+b", true).value(), "a b");
  EXPECT_FALSE(http::percent_decode("%4"));
  EXPECT_FALSE(http::percent_decode("%zz"));
  EXPECT_FALSE(http::percent_decode("a%00b"));
}

TEST(Url, ParseQuery) {
  auto q = http::parse_query("tail=10&since=2024-01-01T00%3A00&follow&x=a+b&x=last&&");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->at("tail"), "10");
  EXPECT_EQ(q->at("since"), "2024-01-01T00:00");
  EXPECT_EQ(q->at("follow"), "");
  EXPECT_EQ(q->at("x"), "last");
  EXPECT_EQ(q->size(), 4u);
  EXPECT_FALSE(http::parse_query("a=%G0"));
}

TEST(Router, ParamsAndLiteralPrecedence) {
  Router r;
  r.get("/v1/services/{name}", ok);
  r.get("/v1/services/{name}/logs", ok);
  r.post("/v1/services/{name}/{action}", ok);
  r.post("/v1/services/reload/{action}", ok);
  auto m = r.match("GET", "/v1/services/web%20app/logs");
  ASSERT_EQ(m.kind, Kind::found);
  EXPECT_EQ(m.route->pattern, "/v1/services/{name}/logs");
  EXPECT_EQ(m.params.at("name"), "web app");
  m = r.match("POST", "/v1/services/reload/start");
  ASSERT_EQ(m.kind, Kind::found);
  EXPECT_EQ(m.route->pattern, "/v1/services/reload/{action}");
  m = r.match("POST", "/v1/services/web/start");
  ASSERT_EQ(m.kind, Kind::found);
  EXPECT_EQ(m.params.at("action"), "start");
  EXPECT_EQ(r.match("GET", "/v1/services").kind, Kind::not_found);
  EXPECT_EQ(r.match("GET", "/v1/services//logs").kind, Kind::not_found);
  EXPECT_EQ(r.match("GET", "/v1/services/a%2Fb").kind, Kind::bad_path);
  EXPECT_EQ(r.match("GET", "/v1/services/%zz").kind, Kind::bad_path);
}

TEST(Router, MethodNotAllowedListsAllow) {
  Router r;
  r.get("/x", ok);
  r.put("/x", ok);
  auto m = r.match("DELETE", "/x");
  EXPECT_EQ(m.kind, Kind::method_not_allowed);
  EXPECT_EQ(m.allow, "GET, HEAD, PUT");
}

TEST(Router, HeadFallsBackToGet) {
  Router r;
  r.get("/x", ok);
  auto m = r.match("HEAD", "/x");
  ASSERT_EQ(m.kind, Kind::found);
  EXPECT_EQ(m.route->method, "GET");
}

TEST(Router, BadPatternsThrow) {
  Router r;
  EXPECT_THROW(r.get("x", ok), std::invalid_argument);
  EXPECT_THROW(r.get("/a{b}", ok), std::invalid_argument);
  EXPECT_THROW(r.get("/{a}/{a}", ok), std::invalid_argument);
  r.get("/a", ok);
  EXPECT_THROW(r.get("/a", ok), std::invalid_argument);
}

TEST(Parser, PipelinedMessagesOneAtATime) {
  http::RequestParser p(100);
  const std::string in =
      "GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-Two: a\r\nx-two: b\r\n\r\n"
      "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
      "GET /c HTTP/1.0\r\n\r\n";
  std::size_t off = 0;
  std::vector<std::string> seen;
  // Not "while off < size": the last message completes on a feed of zero bytes.
  for (int guard = 0; guard < 20 && seen.size() < 3; ++guard) {
    auto st = p.feed(in.data() + off, in.size() - off);
    off += st.consumed;
    ASSERT_NE(st.event, http::RequestParser::Event::error);
    if (st.event == http::RequestParser::Event::message_complete) {
      seen.push_back(p.request().method + " " + p.request().target + " " + p.request().body + " " +
                     (p.keep_alive() ? "ka" : "close"));
      if (seen.size() == 1) {
        EXPECT_EQ(p.request().headers.get("x-TWO").value(), "a");
      }
      p.next();
    }
  }
  EXPECT_EQ(off, in.size());
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], "GET /a?x=1  ka");
  EXPECT_EQ(seen[1], "POST /b abc ka");
  EXPECT_EQ(seen[2], "GET /c  close");
}

TEST(Parser, ChunkedBodyDecodedAndLimited) {
  const std::string in = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  http::RequestParser p(100);
  auto st = p.feed(in.data(), in.size());
  ASSERT_EQ(st.event, http::RequestParser::Event::headers_complete);
  EXPECT_TRUE(p.chunked());
  st = p.feed(in.data() + st.consumed, in.size() - st.consumed);
  ASSERT_EQ(st.event, http::RequestParser::Event::message_complete);
  EXPECT_EQ(p.request().body, "abcde");

  http::RequestParser small(4);
  st = small.feed(in.data(), in.size());
  st = small.feed(in.data() + st.consumed, in.size() - st.consumed);
  EXPECT_EQ(st.event, http::RequestParser::Event::error);
  EXPECT_EQ(small.error_status(), 413);
}

TEST(Parser, MalformedIs400) {
  for (const char* bad : {"GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                          "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                          "GET / HTTP/7.1\r\n\r\n"}) {
    http::RequestParser p(100);
    auto st = p.feed(bad, std::strlen(bad));
    EXPECT_EQ(st.event, http::RequestParser::Event::error) << bad;
    EXPECT_EQ(p.error_status(), 400) << bad;
  }
}

TEST(Message, HeadersCaseInsensitiveAndTokens) {
  http::Headers h;
  h.add("Connection", "keep-alive, Upgrade");
  h.add("X-A", "1");
  EXPECT_EQ(h.get("x-a").value(), "1");
  EXPECT_TRUE(h.has_token("connection", "upgrade"));
  EXPECT_FALSE(h.has_token("connection", "close"));
  h.set("x-A", "2");
  EXPECT_EQ(h.size(), 2u);
  EXPECT_EQ(h.get("X-A").value(), "2");
}

TEST(Message, ErrorShape) {
  Response r = Response::error(404, "not found", {{"path", "/x"}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.headers.get("content-type").value(), "application/json");
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["error"], "not found");
  EXPECT_EQ(j["detail"]["path"], "/x");
  EXPECT_TRUE(nlohmann::json::parse(Response::error(400, "bad").body)["detail"].is_null());
  EXPECT_EQ(http::http_date().size(), 29u);  // "Sun, 06 Nov 1994 08:49:37 GMT"
}
