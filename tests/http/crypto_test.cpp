// Known-answer tests: FIPS 180-2 (SHA-256), RFC 4231 (HMAC-SHA256), RFC 4648 (base64).
#include <gtest/gtest.h>

#include "http/crypto.hpp"

namespace c = http::crypto;

TEST(Crypto, Sha256KnownAnswer) {
  EXPECT_EQ(c::hex(c::sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(c::hex(c::sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Crypto, HmacSha256Rfc4231) {
  EXPECT_EQ(c::hex(c::hmac_sha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(c::hex(c::hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // A key longer than the block size is hashed first (case 6).
  EXPECT_EQ(c::hex(c::hmac_sha256(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(Crypto, HexRoundTripAndRejects) {
  EXPECT_EQ(c::unhex("00ff10Ab").value(), std::string("\x00\xff\x10\xab", 4));
  EXPECT_FALSE(c::unhex("abc"));
  EXPECT_FALSE(c::unhex("zz"));
  EXPECT_EQ(c::unhex("").value(), "");
}

TEST(Crypto, Base64Rfc4648) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, coded] : vectors) {
    EXPECT_EQ(c::base64(plain), coded);
    EXPECT_EQ(c::unbase64(coded).value(), plain) << coded;
  }
  EXPECT_EQ(c::unbase64("AP8=").value(), std::string("\x00\xff", 2));
}

TEST(Crypto, Base64RejectsMalformed) {
  for (const char* bad : {"Zg=", "Zg", "Z===", "Zm9v\n", " Zm9v", "Zm=v", "Zm9-", "Zm9_", "=Zm9"})
    EXPECT_FALSE(c::unbase64(bad)) << bad;
}

TEST(Crypto, ConstantTimeEqual) {
  EXPECT_TRUE(c::equal_constant_time("secret", "secret"));
  EXPECT_FALSE(c::equal_constant_time("secret", "secreT"));
  EXPECT_FALSE(c::equal_constant_time("secret", "secret2"));
  EXPECT_TRUE(c::equal_constant_time("", ""));
}

TEST(Crypto, RandomBytes) {
  const std::string a = c::random_bytes(32), b = c::random_bytes(32);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
}
