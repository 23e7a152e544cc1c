// The canonical HMAC request signature. Expected signatures were made with the
// openssl CLI, not with the code under test:
//   bh=$(printf '%s' "$body" | openssl dgst -sha256 -r | cut -d' ' -f1)
//   printf 'POST\n/v1/services/web/signal\n1700000000\n%s' "$bh" |
//     openssl dgst -sha256 -hmac s3cret -binary | base64
#include <gtest/gtest.h>

#include "http/hmac_auth.hpp"

namespace h = http::hmac_auth;

namespace {
constexpr const char* kPostSig = "IDF/A1ROegEcEtHaaE64GPTDn4n+9FvtGOEoziqWAeU=";
constexpr const char* kGetSig = "4G2z/wJYjnlAAl9pgVsKYZOWPb0qgYAqSpdfhl8TxRM=";
constexpr std::int64_t kTs = 1700000000;

h::Credentials parsed(const std::string& header) {
  std::string why;
  auto c = h::parse(header, &why);
  EXPECT_TRUE(c) << header << ": " << why;
  return c.value_or(h::Credentials{});
}
}  // namespace

TEST(HmacAuth, SignMatchesOpensslCli) {
  EXPECT_EQ(h::sign("s3cret", "POST", "/v1/services/web/signal", "1700000000", R"({"signal":"HUP"})"), kPostSig);
  EXPECT_EQ(h::sign("s3cret", "get", "/v1/services", "1700000000", ""), kGetSig);  // method uppercased
}

TEST(HmacAuth, VerifyAcceptsTheCliSignature) {
  const auto c = parsed(std::string("HMAC-SHA256 timestamp=1700000000,signature=") + kPostSig);
  EXPECT_EQ(c.timestamp, kTs);
  EXPECT_EQ(h::verify("s3cret", c, "POST", "/v1/services/web/signal", R"({"signal":"HUP"})", kTs + 10), h::Verdict::ok);
  // Spaces after the comma and a lowercase scheme are accepted.
  const auto spaced = parsed(std::string("hmac-sha256 timestamp=1700000000, signature=") + kGetSig);
  EXPECT_EQ(h::verify("s3cret", spaced, "GET", "/v1/services", "", kTs), h::Verdict::ok);
}

TEST(HmacAuth, VerifyRefusesEveryAlteration) {
  const auto c = parsed(std::string("HMAC-SHA256 timestamp=1700000000,signature=") + kPostSig);
  const std::string body = R"({"signal":"HUP"})";
  EXPECT_EQ(h::verify("s3cret!", c, "POST", "/v1/services/web/signal", body, kTs), h::Verdict::bad_signature);
  EXPECT_EQ(h::verify("s3cret", c, "PUT", "/v1/services/web/signal", body, kTs), h::Verdict::bad_signature);
  EXPECT_EQ(h::verify("s3cret", c, "POST", "/v1/services/db/signal", body, kTs), h::Verdict::bad_signature);
  EXPECT_EQ(h::verify("s3cret", c, "POST", "/v1/services/web/signal", R"({"signal":"KILL"})", kTs),
            h::Verdict::bad_signature);
}

TEST(HmacAuth, TimestampWindowIsFiveMinutesEachWay) {
  const auto c = parsed(std::string("HMAC-SHA256 timestamp=1700000000,signature=") + kGetSig);
  EXPECT_EQ(h::verify("s3cret", c, "GET", "/v1/services", "", kTs + 300), h::Verdict::ok);
  EXPECT_EQ(h::verify("s3cret", c, "GET", "/v1/services", "", kTs + 301), h::Verdict::stale);
  EXPECT_EQ(h::verify("s3cret", c, "GET", "/v1/services", "", kTs - 300), h::Verdict::ok);
  EXPECT_EQ(h::verify("s3cret", c, "GET", "/v1/services", "", kTs - 301), h::Verdict::future);
}

TEST(HmacAuth, ParseRejectsMalformedHeaders) {
  for (const char* bad : {"", "Bearer abc", "HMAC-SHA256", "HMAC-SHA256 ", "HMAC-SHA256 timestamp=1",
                          "HMAC-SHA256 signature=AAAA", "HMAC-SHA256 timestamp=x,signature=AAAA",
                          "HMAC-SHA256 timestamp=-5,signature=AAAA", "HMAC-SHA256 timestamp=1,signature=!!!!",
                          "HMAC-SHA256 timestamp=1,timestamp=2,signature=AAAA",
                          "HMAC-SHA256 timestamp=1,signature=AAAA,extra=1", "HMAC-SHA256 timestamp=1 signature=AAAA",
                          "HMAC-SHA256X timestamp=1,signature=AAAA", "HMAC-SHA256 timestamp=99999999999999999999,signature=AAAA"}) {
    std::string why;
    EXPECT_FALSE(h::parse(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
}

// v2 adds the raw query as a third line. Vectors by the openssl CLI:
//   printf 'POST\n/v1/services/web/signal\nforce=1&x=a%%20b\n1700000000\n%s' "$bh" |
//     openssl dgst -sha256 -hmac s3cret -binary | base64
namespace {
constexpr const char* kPostV2Sig = "9pJqb8zZPWRnlcHlxp5RieuXdXzWYqNmFTOqbr+Jh4U=";
constexpr const char* kGetV2Sig = "b2InDwvHt+TnvkrrzlVV2dfSlMEqI7cptbWA0dNgXv4=";  // empty query line
constexpr const char* kQuery = "force=1&x=a%20b";
}  // namespace

TEST(HmacAuthV2, CanonicalStringCarriesTheQueryLine) {
  EXPECT_EQ(h::canonical_string_v2("post", "/p", "a=1", "5", ""),
            "POST\n/p\na=1\n5\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(h::canonical_string("post", "/p", "5", ""),
            "POST\n/p\n5\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(h::query_of("/v1/x?a=1&b"), "a=1&b");
  EXPECT_EQ(h::query_of("/v1/x"), "");
  EXPECT_EQ(h::query_of("/v1/x?"), "");
}

TEST(HmacAuthV2, SignMatchesOpensslCli) {
  EXPECT_EQ(h::sign_v2("s3cret", "POST", "/v1/services/web/signal", kQuery, "1700000000", R"({"signal":"HUP"})"),
            kPostV2Sig);
  EXPECT_EQ(h::sign_v2("s3cret", "GET", "/v1/services", "", "1700000000", ""), kGetV2Sig);
  EXPECT_EQ(h::authorization("s3cret", "POST", std::string("/v1/services/web/signal?") + kQuery, kTs,
                             R"({"signal":"HUP"})"),
            std::string("HMAC-SHA256 v=2,timestamp=1700000000,signature=") + kPostV2Sig);
}

TEST(HmacAuthV2, ParsesTheVersion) {
  EXPECT_EQ(parsed(std::string("HMAC-SHA256 timestamp=1700000000,signature=") + kGetSig).version, 1);
  EXPECT_EQ(parsed(std::string("HMAC-SHA256 v=1,timestamp=1700000000,signature=") + kGetSig).version, 1);
  EXPECT_EQ(parsed(std::string("HMAC-SHA256 v=2,timestamp=1700000000,signature=") + kGetSig).version, 2);
  EXPECT_EQ(parsed(std::string("HMAC-SHA256 timestamp=1700000000, signature=") + kGetSig + ", v=2").version, 2);
  for (const char* bad : {"HMAC-SHA256 v=3,timestamp=1,signature=AAAA", "HMAC-SHA256 v=,timestamp=1,signature=AAAA",
                          "HMAC-SHA256 v=2,v=2,timestamp=1,signature=AAAA", "HMAC-SHA256 v=02,timestamp=1,signature=AAAA",
                          "HMAC-SHA256 v=2"}) {
    std::string why;
    EXPECT_FALSE(h::parse(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
}

TEST(HmacAuthV2, TheQueryIsSignedAndV1NeverCoversOne) {
  const std::string body = R"({"signal":"HUP"})";
  const auto v2 = parsed(std::string("HMAC-SHA256 v=2,timestamp=1700000000,signature=") + kPostV2Sig);
  EXPECT_EQ(h::verify("s3cret", v2, "POST", "/v1/services/web/signal", kQuery, body, kTs), h::Verdict::ok);
  EXPECT_EQ(h::verify("s3cret", v2, "POST", "/v1/services/web/signal", "force=0&x=a%20b", body, kTs),
            h::Verdict::bad_signature);
  EXPECT_EQ(h::verify("s3cret", v2, "POST", "/v1/services/web/signal", "", body, kTs), h::Verdict::bad_signature);
  // A v2 signature over no query is not a v1 one (the empty line is signed).
  const auto get2 = parsed(std::string("HMAC-SHA256 v=2,timestamp=1700000000,signature=") + kGetV2Sig);
  EXPECT_EQ(h::verify("s3cret", get2, "GET", "/v1/services", "", "", kTs), h::Verdict::ok);
  const auto get1 = parsed(std::string("HMAC-SHA256 timestamp=1700000000,signature=") + kGetSig);
  EXPECT_EQ(h::verify("s3cret", get1, "GET", "/v1/services", "", "", kTs), h::Verdict::ok);
  EXPECT_EQ(h::verify("s3cret", get1, "GET", "/v1/services", "limit=1", "", kTs), h::Verdict::query_unsigned);
  EXPECT_FALSE(h::to_string(h::Verdict::query_unsigned).empty());
}

TEST(HmacAuthV2, TheWorkedExampleOfDocsApiMd) {
  EXPECT_EQ(h::canonical_string_v2("GET", "/v1/events", "service=web&since=10", "1700000000", ""),
            "GET\n/v1/events\nservice=web&since=10\n1700000000\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(h::authorization("s3cret-s3cret-s3cret", "GET", "/v1/events?service=web&since=10", kTs, ""),
            "HMAC-SHA256 v=2,timestamp=1700000000,signature=B+l1pXr5YnfwrwDHYQF3lgCErLFhXQo7P9wGmbXEarQ=");
}
