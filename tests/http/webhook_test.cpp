// Webhook verification per provider. Expected signatures were made with the openssl CLI (and,
// for standard-webhooks, match the example published with the spec), not with the code under test:
//   printf %s '{"ref":"refs/heads/main"}' | openssl dgst -sha256 -hmac gh-s3cret
//   key=$(printf %s MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw | base64 -d | xxd -p -c 256)
//   printf %s 'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}' |
//     openssl dgst -sha256 -mac HMAC -macopt hexkey:$key -binary | base64
#include <gtest/gtest.h>

#include <string>

#include "http/hmac_auth.hpp"
#include "http/webhook.hpp"

namespace w = http::webhook;

namespace {

constexpr const char* kGithubSig = "sha256=01d466331ebf4762e37243cf5ab79b6032332e89c299edbc6faedc3741442dea";
constexpr const char* kSwSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr const char* kSwSig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
constexpr std::int64_t kSwTs = 1614265330;

http::Request github(const char* sig, const char* body = R"({"ref":"refs/heads/main"})") {
  http::Request r;
  r.method = "POST";
  r.path = "/hooks/x";
  r.body = body;
  if (sig) r.headers.add("X-Hub-Signature-256", sig);
  r.headers.add("X-GitHub-Event", "push");
  r.headers.add("X-GitHub-Delivery", "d-1");
  return r;
}

http::Request standard(const char* sig, const char* body = R"({"test": 2432232314})") {
  http::Request r;
  r.method = "POST";
  r.path = "/triggers/sw";
  r.body = body;
  r.headers.add("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek");
  r.headers.add("webhook-timestamp", std::to_string(kSwTs));
  r.headers.add("webhook-signature", sig);
  return r;
}

}  // namespace

TEST(Webhook, GithubAcceptsTheCliSignature) {
  w::Verdict v = w::verify(w::Provider::github, "gh-s3cret", github(kGithubSig), 0);
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.delivery_id, "d-1");
  EXPECT_EQ(v.event, "push");
}

TEST(Webhook, GithubRefusals) {
  EXPECT_EQ(w::verify(w::Provider::github, "gh-s3cret", github(nullptr), 0).reason,
            "missing X-Hub-Signature-256 header");
  EXPECT_EQ(w::verify(w::Provider::github, "other", github(kGithubSig), 0).reason, "signature mismatch");
  EXPECT_EQ(w::verify(w::Provider::github, "gh-s3cret", github(kGithubSig, "{}"), 0).reason, "signature mismatch");
  w::Verdict v = w::verify(w::Provider::github, "gh-s3cret", github("sha1=abc"), 0);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.status, 401);
  EXPECT_FALSE(w::verify(w::Provider::github, "gh-s3cret", github("sha256=zz"), 0).ok);
}

TEST(Webhook, StandardWebhooksSpecVector) {
  w::Verdict v = w::verify(w::Provider::standard_webhooks, kSwSecret, standard(kSwSig), kSwTs);
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.delivery_id, "msg_p5jXN8AQM9LWM0D4loKWxJek");
  // Any one valid signature in the list is enough (key rotation).
  std::string list = std::string("v1,bm90IGl0 v2,xyz ") + kSwSig;
  EXPECT_TRUE(w::verify(w::Provider::standard_webhooks, kSwSecret, standard(list.c_str()), kSwTs).ok);
}

TEST(Webhook, StandardWebhooksWindowBothWays) {
  EXPECT_TRUE(w::verify(w::Provider::standard_webhooks, kSwSecret, standard(kSwSig), kSwTs + 300).ok);
  EXPECT_TRUE(w::verify(w::Provider::standard_webhooks, kSwSecret, standard(kSwSig), kSwTs - 300).ok);
  w::Verdict stale = w::verify(w::Provider::standard_webhooks, kSwSecret, standard(kSwSig), kSwTs + 301);
  EXPECT_EQ(stale.reason, "timestamp too old (outside the 5-minute window)");
  w::Verdict future = w::verify(w::Provider::standard_webhooks, kSwSecret, standard(kSwSig), kSwTs - 301);
  EXPECT_EQ(future.reason, "timestamp too far in the future (outside the 5-minute window)");
}

TEST(Webhook, StandardWebhooksRefusals) {
  EXPECT_EQ(w::verify(w::Provider::standard_webhooks, "whsec_b3RoZXI=", standard(kSwSig), kSwTs).reason,
            "signature mismatch");
  EXPECT_EQ(w::verify(w::Provider::standard_webhooks, kSwSecret, standard(kSwSig, "{}"), kSwTs).reason,
            "signature mismatch");
  // A v2 (asymmetric) signature with the same bytes is not a v1 one.
  std::string v2 = std::string("v2,") + (kSwSig + 3);
  EXPECT_FALSE(w::verify(w::Provider::standard_webhooks, kSwSecret, standard(v2.c_str()), kSwTs).ok);
  http::Request r = standard(kSwSig);
  r.headers.remove("webhook-id");
  EXPECT_EQ(w::verify(w::Provider::standard_webhooks, kSwSecret, r, kSwTs).status, 401);
}

TEST(Webhook, ProviderNames) {
  EXPECT_EQ(w::provider_from("github"), w::Provider::github);
  EXPECT_EQ(w::provider_from("standard-webhooks"), w::Provider::standard_webhooks);
  EXPECT_EQ(w::provider_from("hmac"), w::Provider::hmac);
  EXPECT_FALSE(w::provider_from("gitlab"));
}

TEST(WebhookReplay, GithubWithoutADeliveryIdIsRefused) {
  http::Request r = github(kGithubSig);
  r.headers.remove("X-GitHub-Delivery");
  const w::Verdict v = w::verify(w::Provider::github, "gh-s3cret", r, 0);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.status, 400);
  EXPECT_EQ(v.reason, "missing X-GitHub-Delivery header");
}

TEST(WebhookReplay, TheVerifiedSignatureComesBackSoANewIdIsNoNewDelivery) {
  http::Request a = github(kGithubSig);
  http::Request b = github(kGithubSig);
  b.headers.set("X-GitHub-Delivery", "d-2");
  const w::Verdict va = w::verify(w::Provider::github, "gh-s3cret", a, 0);
  const w::Verdict vb = w::verify(w::Provider::github, "gh-s3cret", b, 0);
  ASSERT_TRUE(va.ok && vb.ok);
  EXPECT_EQ(va.signature.size(), 32u);
  EXPECT_EQ(va.signature, vb.signature);
  EXPECT_NE(va.delivery_id, vb.delivery_id);
  const w::Verdict sw = w::verify(w::Provider::standard_webhooks, kSwSecret, standard(kSwSig), kSwTs);
  ASSERT_TRUE(sw.ok) << sw.reason;
  EXPECT_EQ(sw.signature.size(), 32u);
}

// Ids and event names are stored and handed to jobs: a long one or one with control
// characters is refused, even with a good signature (GitHub does not sign its headers).
TEST(WebhookReplay, LongOrControlIdsAndEventsAreRefused) {
  http::Request at_limit = github(kGithubSig);
  at_limit.headers.set("X-GitHub-Delivery", std::string(200, 'a'));
  EXPECT_TRUE(w::verify(w::Provider::github, "gh-s3cret", at_limit, 0).ok);
  http::Request long_id = github(kGithubSig);
  long_id.headers.set("X-GitHub-Delivery", std::string(201, 'a'));
  w::Verdict v = w::verify(w::Provider::github, "gh-s3cret", long_id, 0);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.status, 400);
  EXPECT_EQ(v.reason, "delivery id is longer than 200 bytes or holds control characters");
  http::Request control = github(kGithubSig);
  control.headers.set("X-GitHub-Delivery", std::string("d\x01-1"));
  EXPECT_EQ(w::verify(w::Provider::github, "gh-s3cret", control, 0).status, 400);
  http::Request long_event = github(kGithubSig);
  long_event.headers.set("X-GitHub-Event", std::string(300, 'e'));
  v = w::verify(w::Provider::github, "gh-s3cret", long_event, 0);
  EXPECT_EQ(v.status, 400);
  EXPECT_EQ(v.reason, "event name is longer than 200 bytes or holds control characters");
}

TEST(WebhookReplay, HmacSignsTheQuery) {
  const std::int64_t now = 1700000000;
  http::Request r;
  r.method = "POST";
  r.path = "/triggers/h";
  r.target = "/triggers/h?env=prod";
  r.body = "{}";
  r.headers.add("Authorization", http::hmac_auth::authorization("s", "POST", r.target, now, r.body));
  w::Verdict v = w::verify(w::Provider::hmac, "s", r, now);
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.signature.size(), 32u);
  r.target = "/triggers/h?env=dev";
  EXPECT_EQ(w::verify(w::Provider::hmac, "s", r, now).reason, "signature mismatch");
  // v1 covers no query: refused on a request that has one.
  r.headers.set("Authorization", "HMAC-SHA256 timestamp=1700000000,signature=" +
                                     http::hmac_auth::sign("s", "POST", "/triggers/h", "1700000000", "{}"));
  v = w::verify(w::Provider::hmac, "s", r, now);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.reason.find("v1 signature does not cover the query"), std::string::npos) << v.reason;
}
