// The auth gate's decisions and the keys' sources, without a server: requests are
// plain values. The HMAC vectors are the openssl CLI's (see hmac_auth_test.cpp):
//   printf 'GET\n/v1/services\n1700000000\n%s' "$(printf '' | openssl dgst -sha256 -r | cut -d' ' -f1)" |
//     openssl dgst -sha256 -hmac s3cret-s3cret-s3cret -binary | base64
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "http/auth.hpp"
#include "http/auth_keys.hpp"

namespace a = http::auth;
namespace fs = std::filesystem;

namespace {

constexpr const char* kKey = "bearer-key-0123456789";

http::Request request(std::string method, std::string path, std::string auth = "") {
  http::Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.target = r.path;
  r.headers.add("Host", "127.0.0.1:3080");
  r.local = "127.0.0.1:3080";  // the listener the client reached
  if (!auth.empty()) r.headers.add("Authorization", std::move(auth));
  return r;
}

a::Gate gate(a::Policy p = {}) {
  a::Gate g;
  g.set_keys({{"k", kKey, true}, {"h", "s3cret-s3cret-s3cret", false}});
  g.set_policy(std::move(p));
  return g;
}

std::string reason(const std::optional<http::Response>& r) {
  if (!r) return "passed";
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (r->status != 401) return std::to_string(r->status);
  return j["detail"]["reason"].get<std::string>();
}

std::string check(const a::Gate& g, const http::Request& req, std::int64_t now = 1700000000) {
  http::Headers extra;
  return reason(g.check(req, now, extra));
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("dockless-auth-" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& text, mode_t mode) {
    const fs::path p = path / name;
    std::ofstream(p) << text;
    ::chmod(p.c_str(), mode);
    return p.string();
  }
};

}  // namespace

TEST(AuthGate, BearerKeys) {
  const a::Gate g = gate();
  EXPECT_EQ(check(g, request("GET", "/v1/services")), "missing_key");
  EXPECT_EQ(check(g, request("GET", "/v1/services", std::string("Bearer ") + kKey)), "passed");
  EXPECT_EQ(check(g, request("GET", "/v1/services", std::string("bearer  ") + kKey)), "passed");
  EXPECT_EQ(check(g, request("GET", "/v1/services", "Bearer wrong")), "unknown_key");
  EXPECT_EQ(check(g, request("GET", "/v1/services", "Bearer ")), "malformed_header");
  // An HMAC-only secret is no bearer key.
  EXPECT_EQ(check(g, request("GET", "/v1/services", "Bearer s3cret-s3cret-s3cret")), "unknown_key");
  // A bare key (no scheme) is refused without being echoed.
  http::Headers extra;
  auto r = g.check(request("GET", "/metrics", kKey), 0, extra);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->body.find(kKey), std::string::npos);
  EXPECT_TRUE(r->headers.has("WWW-Authenticate"));
}

TEST(AuthGate, HmacWithTheOpensslVectors) {
  const a::Gate g = gate();
  const std::string by_secret = "HMAC-SHA256 timestamp=1700000000,signature=wfgC1RVfQzWQOxECYEk/gwHattwylk+brloXPciWDhQ=";
  const std::string by_key = "HMAC-SHA256 timestamp=1700000000,signature=VB2YLWZcLdfx3DvP+lJkhKivjgGuBo7G4KK48Qet3uA=";
  EXPECT_EQ(check(g, request("GET", "/v1/services", by_secret)), "passed");
  EXPECT_EQ(check(g, request("GET", "/v1/services", by_key)), "passed");  // bearer keys sign too
  // A signature is single-use (ReplayedSignaturesAreRefused): the window is tried on a fresh gate.
  EXPECT_EQ(check(gate(), request("GET", "/v1/services", by_secret), 1700000000 + 299), "passed");
  EXPECT_EQ(check(g, request("GET", "/v1/services", by_secret), 1700000000 + 301), "stale_timestamp");
  EXPECT_EQ(check(g, request("GET", "/v1/services", by_secret), 1700000000 - 301), "future_timestamp");
  EXPECT_EQ(check(g, request("HEAD", "/v1/services", by_secret)), "bad_signature");
  EXPECT_EQ(check(g, request("GET", "/v1/services/x", by_secret)), "bad_signature");
  http::Request with_body = request("GET", "/v1/services", by_secret);
  with_body.body = "x";
  EXPECT_EQ(check(g, with_body), "bad_signature");
  EXPECT_EQ(check(g, request("GET", "/v1/services", "HMAC-SHA256 timestamp=1700000000")), "malformed_header");
}

TEST(AuthGate, ReplayedSignaturesAreRefused) {
  const a::Gate g = gate();
  const std::string by_secret = "HMAC-SHA256 timestamp=1700000000,signature=wfgC1RVfQzWQOxECYEk/gwHattwylk+brloXPciWDhQ=";
  // Judging the head alone records nothing: the same request, body read, still passes once.
  http::Request head = request("GET", "/v1/services", by_secret);
  head.body_pending = true;
  EXPECT_EQ(check(g, head), "passed");
  EXPECT_EQ(check(g, request("GET", "/v1/services", by_secret)), "passed");
  EXPECT_EQ(check(g, request("GET", "/v1/services", by_secret), 1700000000 + 60), "replayed_signature");
  EXPECT_EQ(check(g, head), "replayed_signature");  // refused before any 100 Continue
  // A forged signature is never recorded, so it cannot fill the cache or block the real one.
  const a::Gate g2 = gate();
  EXPECT_EQ(check(g2, request("GET", "/v1/services/x", by_secret)), "bad_signature");
  EXPECT_EQ(check(g2, request("GET", "/v1/services", by_secret)), "passed");
  // Bearer keys are not single-use.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(check(g, request("GET", "/v1/services", std::string("Bearer ") + kKey)), "passed");
}

TEST(AuthGate, HmacV2SignsTheQueryAndV1RefusesOne) {
  const a::Gate g = gate();
  const std::string secret = "s3cret-s3cret-s3cret";
  auto with_target = [](std::string target, std::string auth) {
    http::Request r = request("GET", target.substr(0, target.find('?')), std::move(auth));
    r.target = std::move(target);
    return r;
  };
  const std::string v2 = http::hmac_auth::authorization(secret, "GET", "/v1/events?limit=5", 1700000000, "");
  EXPECT_EQ(check(g, with_target("/v1/events?limit=500", v2)), "bad_signature");
  EXPECT_EQ(check(g, with_target("/v1/events", v2)), "bad_signature");
  EXPECT_EQ(check(g, with_target("/v1/events?limit=5", v2)), "passed");
  // v1 (no query line): only on a request without a query.
  const std::string v1 = "HMAC-SHA256 timestamp=1700000000,signature=" +
                         http::hmac_auth::sign(secret, "GET", "/v1/services", "1700000000", "");
  EXPECT_EQ(check(g, with_target("/v1/services?limit=1", v1)), "query_unsigned");
  EXPECT_EQ(check(g, with_target("/v1/services", v1)), "passed");
}

TEST(AuthGate, PublicPathsUnixSocketAndPublicRead) {
  const a::Gate g = gate();
  for (const char* p : {"/health", "/healthz", "/readyz", "/", "/assets/app.js"})
    EXPECT_EQ(check(g, request("GET", p)), "passed") << p;
  EXPECT_EQ(check(g, request("POST", "/")), "missing_key");
  EXPECT_EQ(check(g, request("GET", "/metrics")), "missing_key");
  http::Request unix_req = request("POST", "/v1/services/web/restart");
  unix_req.via_unix = true;
  EXPECT_EQ(check(g, unix_req), "passed");

  a::Policy p;
  p.public_read = true;
  const a::Gate pr = gate(p);
  EXPECT_EQ(check(pr, request("GET", "/v1/services")), "passed");
  EXPECT_EQ(check(pr, request("HEAD", "/metrics")), "passed");
  EXPECT_EQ(check(pr, request("POST", "/v1/services/web/restart")), "missing_key");
}

// Issue #15: handlers withhold secrets from public readers by the principal the gate
// records, so the gate must tell a reader, a key (by name) and the unix socket apart.
TEST(AuthGate, RecordsWhoIsAsking) {
  using Access = http::Principal::Access;
  a::Policy p;
  p.public_read = true;
  const a::Gate g = gate(p);
  auto who = [&](const http::Request& req, std::string* verdict = nullptr) {
    http::Headers extra;
    http::Principal principal;
    principal.access = Access::local;  // overwritten by every check
    const auto answer = g.check(req, 1700000000, extra, &principal);
    if (verdict) *verdict = reason(answer);
    return principal;
  };
  std::string verdict;
  EXPECT_EQ(who(request("GET", "/v1/services"), &verdict).access, Access::reader);
  EXPECT_EQ(verdict, "passed");
  EXPECT_EQ(who(request("GET", "/health")).access, Access::reader);
  const http::Principal bearer = who(request("GET", "/v1/services", std::string("Bearer ") + kKey), &verdict);
  EXPECT_EQ(verdict, "passed");
  EXPECT_EQ(bearer.access, Access::key);
  EXPECT_EQ(bearer.key_name, "k");
  const std::string by_secret = "HMAC-SHA256 timestamp=1700000000,signature=wfgC1RVfQzWQOxECYEk/gwHattwylk+brloXPciWDhQ=";
  const http::Principal hmac = who(request("GET", "/v1/services", by_secret), &verdict);
  EXPECT_EQ(verdict, "passed");
  EXPECT_EQ(hmac.access, Access::key);
  EXPECT_EQ(hmac.key_name, "h");
  http::Request unix_req = request("GET", "/v1/services");
  unix_req.via_unix = true;
  EXPECT_EQ(who(unix_req).access, Access::local);
  // A public read carrying a wrong key is judged by it, not let through as a reader.
  EXPECT_EQ(who(request("GET", "/v1/services", "Bearer wrong-key-0123456789"), &verdict).access, Access::reader);
  EXPECT_EQ(verdict, "unknown_key");
}

// Issue #15: no refusal quotes the Authorization value (a client that sends its key in
// the wrong scheme or parameter would read it back, and webhook refusals are journaled).
TEST(AuthGate, RefusalsNeverEchoTheHeader) {
  const a::Gate g = gate();
  const std::string secret = "SeCrEt-TOKEN-4c1d9e";
  for (const std::string& value :
       {"HMAC-SHA256 " + secret, "HMAC-SHA256 " + secret + "=1", "HMAC-SHA256 timestamp=" + secret + ",signature=AAAA",
        "HMAC-SHA256 timestamp=1700000000,signature=" + secret, "Basic " + secret, "Token " + secret,
        "Bearer " + secret, secret}) {
    http::Headers extra;
    const auto answer = g.check(request("POST", "/v1/reload", value), 1700000000, extra);
    ASSERT_TRUE(answer) << value;
    EXPECT_EQ(answer->status, 401) << value;
    EXPECT_EQ(answer->body.find("4c1d9e"), std::string::npos) << value << " → " << answer->body;
    for (const auto& [k, v] : answer->headers.items()) EXPECT_EQ(v.find("4c1d9e"), std::string::npos) << k;
  }
}

TEST(AuthGate, PublicMatcherHook) {
  a::Gate g = gate();
  EXPECT_EQ(check(g, request("POST", "/triggers/deploy")), "missing_key");
  g.set_public_matcher([](std::string_view method, std::string_view path) {
    return method == "POST" && path.starts_with("/triggers/");
  });
  EXPECT_EQ(check(g, request("POST", "/triggers/deploy")), "passed");
  EXPECT_EQ(check(g, request("GET", "/triggers/deploy")), "missing_key");
}

TEST(AuthGate, OriginsAndPreflight) {
  a::Policy p;
  p.allowed_origins = {"https://ops.example"};
  const a::Gate g = gate(p);
  const std::string auth = std::string("Bearer ") + kKey;
  auto with_origin = [&](std::string method, std::string origin) {
    http::Request r = request(std::move(method), "/v1/services/web/restart", auth);
    r.headers.add("Origin", std::move(origin));
    return r;
  };
  EXPECT_EQ(check(g, with_origin("POST", "http://evil.example")), "403");
  EXPECT_EQ(check(g, with_origin("POST", "http://127.0.0.1:3080")), "passed");  // same origin
  EXPECT_EQ(check(g, with_origin("POST", "http://localhost:3080")), "passed");  // loopback's name
  EXPECT_EQ(check(g, with_origin("POST", "https://127.0.0.1:3080")), "403");    // another scheme
  EXPECT_EQ(check(g, with_origin("POST", "http://127.0.0.1:3081")), "403");     // another port
  {
    http::Request r = with_origin("POST", "http://127.0.0.1:3080");
    r.local = "[::ffff:127.0.0.1]:3080";  // a dual-stack listener
    EXPECT_EQ(check(g, r), "passed");
    r.local = "[::1]:3080";
    r.headers.set("Origin", "http://[::1]:3080");
    EXPECT_EQ(check(g, r), "passed");
  }
  {
    // DNS rebinding: evil.example resolves to 127.0.0.1, so the browser sends a Host
    // that matches its Origin; the listener is still 127.0.0.1, so it is foreign.
    http::Request r = with_origin("POST", "http://evil.example:3080");
    r.headers.set("Host", "evil.example:3080");
    EXPECT_EQ(check(g, r), "403");
  }
  {
    // The machine's own name (and its mDNS .local) is this listener: a Pi's dashboard
    // opened as http://HOSTNAME.local:3080 may restart a service.
    char host[256] = {};
    ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
    if (std::string(host) != "localhost") {
      EXPECT_EQ(check(g, with_origin("POST", std::string("http://") + host + ":3080")), "passed");
      EXPECT_EQ(check(g, with_origin("POST", std::string("http://") + host + ".local:3080")), "passed");
      EXPECT_EQ(check(g, with_origin("POST", std::string("http://") + host + ".evil.example:3080")), "403");
      EXPECT_EQ(check(g, with_origin("POST", std::string("http://") + host + ".local:3081")), "403");
    }
  }
  EXPECT_EQ(check(g, with_origin("GET", "http://evil.example")), "403");  // outside the list, whatever the method
  {
    // No list: any origin, with CORS headers (issue 14: the orchestrator design's rule).
    const a::Gate open = gate(a::Policy{});
    http::Headers h;
    EXPECT_FALSE(open.check(with_origin("POST", "http://evil.example"), 0, h));
    EXPECT_EQ(h.get("Access-Control-Allow-Origin"), "http://evil.example");
  }
  http::Headers extra;
  EXPECT_FALSE(g.check(with_origin("POST", "https://ops.example/"), 0, extra));
  EXPECT_EQ(extra.get("Access-Control-Allow-Origin"), "https://ops.example/");

  http::Request pre = with_origin("OPTIONS", "https://ops.example");
  pre.headers.remove("Authorization");
  pre.headers.add("Access-Control-Request-Method", "POST");
  auto r = g.check(pre, 0, extra);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204);
  EXPECT_EQ(r->headers.get("Access-Control-Allow-Origin"), "https://ops.example");
  EXPECT_NE(r->headers.get("Access-Control-Allow-Headers").value_or("").find("Authorization"), std::string::npos);
  EXPECT_EQ(r->headers.get("Vary"), "Origin");
  pre.headers.set("Origin", "http://evil.example");
  r = g.check(pre, 0, extra);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
}

TEST(AuthKeys, KeysFileFormat) {
  std::string err;
  auto keys = a::parse_keys_file("# admins\nalice alice-key-0123456789  # laptop\n\n  bare-key-0123456789abc\n",
                                 "keys", &err);
  ASSERT_TRUE(keys) << err;
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].name, "alice");
  EXPECT_EQ((*keys)[0].secret, "alice-key-0123456789");
  EXPECT_EQ((*keys)[1].name, "keys:4");
  EXPECT_EQ((*keys)[1].secret, "bare-key-0123456789abc");
  EXPECT_FALSE(a::parse_keys_file("short\n", "keys", &err));
  EXPECT_EQ(err.rfind("keys:1: a key must be at least 16", 0), 0u) << err;
  EXPECT_FALSE(a::parse_keys_file("a b-key-0123456789abcdef c\n", "keys", &err));
  EXPECT_EQ(err, "keys:1: expected \"KEY\" or \"NAME KEY\"");
}

TEST(AuthKeys, SecretFileModes) {
  TempDir d;
  std::string err;
  EXPECT_TRUE(a::check_secret_file(d.write("a", "k\n", 0600), &err)) << err;
  EXPECT_TRUE(a::check_secret_file(d.write("b", "k\n", 0640), &err)) << err;
  for (mode_t m : {0644, 0604, 0620, 0666, 0601}) {
    EXPECT_FALSE(a::check_secret_file(d.write("c", "k\n", m), &err)) << std::oct << m;
    EXPECT_NE(err.find("chmod 600"), std::string::npos) << err;
  }
  fs::create_symlink(d.path / "a", d.path / "link");
  EXPECT_FALSE(a::check_secret_file((d.path / "link").string(), &err));
  EXPECT_NE(err.find("not a regular file"), std::string::npos) << err;
}

TEST(AuthKeys, FirstBootKeyCreatedOnceAndReused) {
  TempDir d;
  a::KeySource src;
  src.data_dir = d.path.string();
  std::string err;
  auto first = a::load_keys(src, &err);
  ASSERT_TRUE(first) << err;
  EXPECT_TRUE(first->created);
  ASSERT_EQ(first->keys.size(), 1u);
  EXPECT_EQ(first->keys[0].secret.size(), 64u);
  struct stat st {};
  ASSERT_EQ(::stat((d.path / "api-key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(first->where.find(first->keys[0].secret), std::string::npos);
  auto again = a::load_keys(src, &err);
  ASSERT_TRUE(again) << err;
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->keys[0].secret, first->keys[0].secret);
  // Configured keys: no first-boot key is consulted or made.
  src.env_keys = "env-key-0123456789abcdef, other-key-0123456789ab";
  src.env_hmac = "hmac-secret-0123456789";
  auto env = a::load_keys(src, &err);
  ASSERT_TRUE(env) << err;
  ASSERT_EQ(env->keys.size(), 3u);
  EXPECT_FALSE(env->keys[2].bearer);
  src.env_keys = "tooshort";
  EXPECT_FALSE(a::load_keys(src, &err));
  EXPECT_NE(err.find("DOCKLESS_API_KEYS[1]"), std::string::npos) << err;
}
