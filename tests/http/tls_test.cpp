// HTTPS on the server's own reactor: large bodies both ways through the memory
// BIOs (many records, partial sends, back-pressure), pipelined requests in one
// record, a context swap that new connections see and open ones do not, and
// the load errors. Certificates are made by the openssl CLI; the client is a
// plain blocking OpenSSL client on the harness's client thread.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdlib>

#include "harness.hpp"
#include "http/tls.hpp"

using http::Request;
using http::Response;
using http::TlsContext;
using runtime::Task;
using namespace test;

namespace {

namespace fs = std::filesystem;

struct Certs {
  fs::path dir;
  std::string cert_a, key_a, cert_b, key_b;
};

bool make_cert(const std::string& cert, const std::string& key, const std::string& cn) {
  const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
                          " -subj /CN=" + cn + " -addext subjectAltName=IP:127.0.0.1 -keyout " + key +
                          " -out " + cert + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

// Made once for the whole program (key generation is the slow part), removed at exit.
struct OwnedCerts {
  std::optional<Certs> certs;
  ~OwnedCerts() {
    if (certs) fs::remove_all(certs->dir);
  }
};

const Certs* certs() {
  static OwnedCerts c{[]() -> std::optional<Certs> {
    char tmpl[] = "/tmp/dockless-tls-XXXXXX";
    if (!::mkdtemp(tmpl)) return std::nullopt;
    Certs out{tmpl, "", "", "", ""};
    out.cert_a = (out.dir / "a.crt").string();
    out.key_a = (out.dir / "a.key").string();
    out.cert_b = (out.dir / "b.crt").string();
    out.key_b = (out.dir / "b.key").string();
    if (!make_cert(out.cert_a, out.key_a, "a") || !make_cert(out.cert_b, out.key_b, "b")) {
      fs::remove_all(out.dir);
      return std::nullopt;
    }
    return out;
  }()};
  return c.certs ? &*c.certs : nullptr;
}

std::shared_ptr<const TlsContext> load(const std::string& cert, const std::string& key) {
  TlsContext::Loaded l = TlsContext::load(cert, key);
  EXPECT_TRUE(l.context) << l.error;
  return l.context;
}

// A blocking TLS client trusting exactly `ca`.
class Client {
 public:
  Client(std::uint16_t port, const std::string& ca) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    fd_ = connect_tcp(port);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    ok_ = fd_ >= 0 && SSL_connect(ssl_) == 1;
  }
  ~Client() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
    ERR_clear_error();
  }
  bool ok() const { return ok_; }
  std::string peer_subject() const {
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (!cert) return "";
    char buf[256] = {};
    X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
    X509_free(cert);
    return buf;
  }
  bool send(std::string_view s) {
    while (!s.empty()) {
      const int n = SSL_write(ssl_, s.data(), static_cast<int>(s.size()));
      if (n <= 0) return false;
      s.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  // One Content-Length response: (status, body); status 0 on failure.
  std::pair<int, std::string> response() {
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!fill()) return {0, ""};
    const std::string head = lower(buf_.substr(0, end));
    buf_.erase(0, end + 4);
    const int status = std::stoi(head.substr(9, 3));
    const auto cl = head.find("content-length: ");
    const std::size_t n = cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 16));
    while (buf_.size() < n)
      if (!fill()) return {0, ""};
    std::string body = buf_.substr(0, n);
    buf_.erase(0, n);
    return {status, body};
  }

 private:
  bool fill() {
    char b[16384];
    const int n = SSL_read(ssl_, b, sizeof b);
    if (n <= 0) return false;
    buf_.append(b, static_cast<std::size_t>(n));
    return true;
  }
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool ok_ = false;
  std::string buf_;
};

void routes(http::Server& s) {
  s.router().get("/big", [](Request& r) -> Task<Response> {
    const std::size_t n = std::stoul(std::string(r.query_param("n").value_or("1000")));
    std::string body(n, 'x');
    for (std::size_t i = 0; i < n; i += 997) body[i] = static_cast<char>('a' + (i / 997) % 26);
    co_return Response::text(200, std::move(body));
  });
  s.router().post("/len", [](Request& r) -> Task<Response> {
    co_return Response::text(200, std::to_string(r.body.size()) + ":" + std::to_string(r.body.back()));
  });
}

std::string expected_big(std::size_t n) {
  std::string body(n, 'x');
  for (std::size_t i = 0; i < n; i += 997) body[i] = static_cast<char>('a' + (i / 997) % 26);
  return body;
}

#define NEED_CERTS()                                         \
  if (!certs()) GTEST_SKIP() << "openssl CLI unavailable";  \
  const Certs& c = *certs()

TEST(Tls, LargeBodiesBothWaysAndPipelining) {
  NEED_CERTS();
  auto ctx = load(c.cert_a, c.key_a);
  serve({}, [&](http::Server& s) { routes(s); s.set_tls(ctx); }, [&](std::uint16_t port) {
    Client cl(port, c.cert_a);
    ASSERT_TRUE(cl.ok());
    EXPECT_EQ(cl.peer_subject(), "/CN=a");
    // 3 MiB out: ~200 records through the write BIO; the small answer too.
    for (std::size_t n : {std::size_t{3} << 20, std::size_t{100}, std::size_t{16 * 1024 + 1}}) {
      ASSERT_TRUE(cl.send("GET /big?n=" + std::to_string(n) + " HTTP/1.1\r\nHost: x\r\n\r\n"));
      auto [status, body] = cl.response();
      EXPECT_EQ(status, 200);
      EXPECT_TRUE(body == expected_big(n)) << "body of " << n << " bytes differs (got " << body.size() << ")";
    }
    // 2 MiB in, in many records.
    std::string big(2u << 20, 'y');
    big.back() = 'z';
    ASSERT_TRUE(cl.send("POST /len HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(big.size()) +
                        "\r\n\r\n" + big));
    auto [status, body] = cl.response();
    EXPECT_EQ(status, 200);
    EXPECT_EQ(body, std::to_string(big.size()) + ":" + std::to_string(int{'z'}));
    // Three requests in one record: answered in order.
    ASSERT_TRUE(cl.send("GET /big?n=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                        "GET /big?n=2 HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(cl.response().second, "a");
    EXPECT_EQ(cl.response().first, 404);
    EXPECT_EQ(cl.response().second, "ax");
  });
}

TEST(Tls, NewContextForNewConnectionsOnly) {
  NEED_CERTS();
  auto a = load(c.cert_a, c.key_a);
  auto b = load(c.cert_b, c.key_b);
  auto setup = [&](http::Server& s) {
    routes(s);
    s.set_tls(a);
    // The swap runs on the reactor, as a reload does.
    s.router().post("/swap", [&s, b](Request&) -> Task<Response> {
      s.set_tls(b);
      co_return Response::text(200, "swapped");
    });
  };
  serve({}, setup, [&](std::uint16_t port) {
    Client old_conn(port, c.cert_a);
    ASSERT_TRUE(old_conn.ok());
    ASSERT_TRUE(old_conn.send("POST /swap HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
    EXPECT_EQ(old_conn.response().second, "swapped");
    Client fresh(port, c.cert_b);
    ASSERT_TRUE(fresh.ok());
    EXPECT_EQ(fresh.peer_subject(), "/CN=b");
    Client wrong_ca(port, c.cert_a);
    EXPECT_FALSE(wrong_ca.ok());
    // The connection made before the swap keeps working on its own context.
    ASSERT_TRUE(old_conn.send("GET /big?n=3 HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(old_conn.response().second, "axx");
    EXPECT_EQ(old_conn.peer_subject(), "/CN=a");
    ASSERT_TRUE(fresh.send("GET /big?n=3 HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(fresh.response().second, "axx");
  });
  // The old context lives on only in our copy: every connection has released it.
  EXPECT_EQ(a.use_count(), 1);
}

TEST(Tls, LoadErrorsNameTheFileAndTheReason) {
  NEED_CERTS();
  auto err = [](const std::string& cert, const std::string& key) { return TlsContext::load(cert, key).error; };
  EXPECT_NE(err(c.cert_a, c.key_b).find("does not match"), std::string::npos) << err(c.cert_a, c.key_b);
  EXPECT_NE(err(c.dir / "none.crt", c.key_a).find("cannot read certificate"), std::string::npos);
  EXPECT_NE(err(c.cert_a, c.dir / "none.key").find("No such file"), std::string::npos);
  EXPECT_NE(err(c.key_a, c.key_a).find("invalid certificate"), std::string::npos) << err(c.key_a, c.key_a);
  EXPECT_NE(err(c.cert_a, c.cert_a).find("invalid key"), std::string::npos) << err(c.cert_a, c.cert_a);
  EXPECT_EQ(err(c.cert_a, c.key_a), "");
}

}  // namespace
