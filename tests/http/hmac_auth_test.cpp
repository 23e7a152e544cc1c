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
