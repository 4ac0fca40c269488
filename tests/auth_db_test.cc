// The authorization layer against a real PostgreSQL (FHIRBULK_TEST_PG, see test_db.h): the
// client registry, the assertion replay cache, the token endpoint end to end (assertions
// signed here with OpenSSL; JWKS by value and by URL from a loopback HTTP server), JWKS
// fetching with its SSRF guard, and the audit trail.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cctype>

#include <atomic>
#include <chrono>
#include <ctime>
#include <functional>
#include <mutex>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "auth/access_token.h"
#include "auth/audit.h"
#include "auth/audit_query.h"
#include "auth/client_store.h"
#include "auth/jwks_fetcher.h"
#include "auth/key_ring.h"
#include "auth/token_endpoint.h"
#include "auth_test_keys.h"
#include "client/http_client.h"
#include "test_db.h"
#include "util/fhir_time.h"

namespace fhirbulk {
namespace {

using testkeys::EcJwk;
using testkeys::JwkSet;
using testkeys::RsaJwk;

int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

// ---- a loopback HTTP server serving one configurable answer ---------------------------------

class TinyHttpServer {
 public:
  TinyHttpServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(fd_, 16) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
      return;
    }
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~TinyHttpServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }

  // Answers after `ms` (a slow JWKS host).
  void Delay(int ms) { delay_ms_ = ms; }
  void Answer(int status, std::string body, std::string extra_headers = "") {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = status;
    body_ = std::move(body);
    extra_headers_ = std::move(extra_headers);
  }
  int hits() const { return hits_; }
  std::string last_request() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_request_;
  }
  std::string Url(const std::string& path = "/jwks.json") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int port() const { return port_; }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      if (delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_.load()));
      std::string resp;
      {
        std::lock_guard<std::mutex> lock(mu_);
        last_request_ = req;
        resp = "HTTP/1.1 " + std::to_string(status_) + " X\r\nContent-Type: application/json\r\n" +
               extra_headers_ + "Content-Length: " + std::to_string(body_.size()) +
               "\r\nConnection: close\r\n\r\n" + body_;
      }
      hits_++;
      size_t off = 0;
      while (off < resp.size()) {
        ssize_t n = ::send(c, resp.data() + off, resp.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      ::close(c);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> hits_{0};
  std::atomic<int> delay_ms_{0};
  std::thread thread_;
  std::mutex mu_;
  int status_ = 200;
  std::string body_ = "{}";
  std::string extra_headers_;
  std::string last_request_;
};

// ---- JwksMaxAge and FetchJwks (no database) ---------------------------------------------------

TEST(AuthJwksFetchTest, MaxAge) {
  EXPECT_EQ(JwksMaxAge(""), 300);
  EXPECT_EQ(JwksMaxAge(" max-age=60\r\n"), 60);
  EXPECT_EQ(JwksMaxAge("public, max-age=120"), 120);
  EXPECT_EQ(JwksMaxAge("MAX-AGE=30"), 30);
  EXPECT_EQ(JwksMaxAge("max-age=0"), 0);
  EXPECT_EQ(JwksMaxAge("no-store"), 0);
  EXPECT_EQ(JwksMaxAge("No-Cache, max-age=60"), 0);
  EXPECT_EQ(JwksMaxAge("max-age=3600"), 3600);
  EXPECT_EQ(JwksMaxAge("max-age=3601"), 3600);
  EXPECT_EQ(JwksMaxAge("max-age=99999999999999999999"), 3600);
  EXPECT_EQ(JwksMaxAge("max-age="), 300);
  EXPECT_EQ(JwksMaxAge("max-age=abc"), 300);
  EXPECT_EQ(JwksMaxAge("max-age=-5"), 300);
  EXPECT_EQ(JwksMaxAge("s-maxage=100"), 300);
  EXPECT_EQ(JwksMaxAge("public"), 300);
}

TEST(AuthJwksFetchTest, FetchesOverHttpWhenInsecureAllowed) {
  TinyHttpServer server;
  server.Answer(200, "{\"keys\":[]}", "Cache-Control: public, max-age=42\r\n");
  auto f = FetchJwks(server.Url(), true);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->body, "{\"keys\":[]}");
  EXPECT_EQ(f->max_age_seconds, 42);
  std::string req = server.last_request();
  EXPECT_EQ(req.rfind("GET /jwks.json HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_NE(req.find("Accept: application/json\r\n"), std::string::npos) << req;

  server.Answer(200, "{}");
  auto no_cc = FetchJwks(server.Url(), true);
  ASSERT_TRUE(no_cc.ok());
  EXPECT_EQ(no_cc->max_age_seconds, 300);
}

TEST(AuthJwksFetchTest, FailuresAreReported) {
  TinyHttpServer server;
  server.Answer(404, "nope");
  auto nf = FetchJwks(server.Url(), true);
  ASSERT_FALSE(nf.ok());
  EXPECT_EQ(nf.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(nf.status().message(), "JWKS fetch: HTTP 404");

  server.Answer(302, "", "Location: http://127.0.0.1:1/elsewhere\r\n");
  auto redirect = FetchJwks(server.Url(), true);
  ASSERT_FALSE(redirect.ok());
  EXPECT_EQ(redirect.status().message(), "JWKS fetch: HTTP 302");  // not followed

  server.Answer(200, std::string(64 * 1024 + 1, ' '));
  auto big = FetchJwks(server.Url(), true);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(big.status().message(), "JWKS larger than 64 KiB");

  server.Answer(200, std::string(size_t{64} * 1024, ' '));
  EXPECT_TRUE(FetchJwks(server.Url(), true).ok());
}

TEST(AuthJwksFetchTest, SsrfGuard) {
  TinyHttpServer server;
  server.Answer(200, "{}");
  // http:// is refused outright without allow_insecure.
  auto http = FetchJwks(server.Url(), false);
  ASSERT_FALSE(http.ok());
  EXPECT_EQ(http.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(http.status().message(), "JWKS URL scheme not allowed");
  for (const char* url : {"ftp://example.org/jwks", "file:///etc/passwd", "HTTP://example.org/",
                          "gopher://127.0.0.1/", ""}) {
    auto r = FetchJwks(url, false);
    ASSERT_FALSE(r.ok()) << url;
    EXPECT_EQ(r.status().message(), "JWKS URL scheme not allowed") << url;
  }
  // https to private, loopback, link-local... addresses: refused before connecting.
  const std::string port = std::to_string(server.port());
  for (const std::string& url : std::vector<std::string>{
           "https://127.0.0.1:" + port + "/jwks.json", "https://localhost:" + port + "/jwks.json",
           "https://127.1.2.3/jwks", "https://10.1.2.3/jwks", "https://172.16.0.1/jwks",
           "https://192.168.1.1/jwks", "https://169.254.169.254/latest/meta-data",
           "https://100.64.0.1/jwks", "https://0.0.0.0/jwks", "https://[::1]:" + port + "/jwks",
           "https://[::ffff:127.0.0.1]:" + port + "/jwks", "https://[fd00::1]/jwks",
           "https://[fe80::1]/jwks", "https://2130706433:" + port + "/jwks",
           // IPv6 forms that embed a private IPv4 address: IPv4-compatible, NAT64, 6to4.
           "https://[::127.0.0.1]:" + port + "/jwks", "https://[64:ff9b::7f00:1]:" + port + "/jwks",
           "https://[64:ff9b::a00:1]/jwks", "https://[64:ff9b:1::a00:1]/jwks",
           "https://[2002:7f00:1::]:" + port + "/jwks", "https://[2002:a9fe:a9fe::1]/jwks",
           "https://192.0.0.1/jwks", "https://198.18.0.1/jwks", "https://198.19.255.254/jwks"}) {
    auto r = FetchJwks(url, false);
    ASSERT_FALSE(r.ok()) << url;
    EXPECT_EQ(r.status().code(), Status::Code::kPermissionDenied)
        << url << ": " << r.status().ToString();
    EXPECT_EQ(r.status().message(), "JWKS URL resolves to a private address") << url;
  }
  EXPECT_EQ(server.hits(), 0);
  // The guard refuses by address, not wholesale: public addresses (here documentation ones
  // that lead nowhere, or the same embedded in 6to4) get as far as connecting.
  for (const char* url : {"https://192.0.2.1:9/jwks", "https://[2002:c000:201::1]:9/jwks"}) {
    auto r = FetchJwks(url, false);
    ASSERT_FALSE(r.ok()) << url;
    EXPECT_EQ(r.status().code(), Status::Code::kUnavailable)
        << url << ": " << r.status().ToString();
  }
}

// ---- the database fixture -------------------------------------------------------------------

const char* const kTokenUrl = "https://ehr.example.org/auth/token";
const char* const kJwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

class AuthDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FHIRBULK_REQUIRE_TEST_DB();
    Status s = schema_.Enter("auth_test");
    ASSERT_TRUE(s.ok()) << s.ToString();
    conn_ = ConnectTestDb();
    ASSERT_NE(conn_, nullptr);
    options_.token_url = kTokenUrl;
    options_.keys =
        std::make_shared<const KeyRing>(KeyRing::Parse("srv " + std::string(40, 's')).value());
  }
  void TearDown() override {
    conn_.reset();
    schema_.Leave();
  }

  PgResult Exec(const std::string& sql, const std::vector<PgParam>& params = {}) {
    auto r = conn_->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    return r.ok() ? std::move(r).value() : PgResult();
  }
  std::string Scalar(const std::string& sql, const std::vector<PgParam>& params = {}) {
    PgResult r = Exec(sql, params);
    return r.rows() > 0 ? r.str(0, 0) : "<no row>";
  }

  std::string MustAdd(const NewClient& c) {
    auto id = AddClient(conn_.get(), c);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : "";
  }
  std::string AddError(const NewClient& c) {
    auto id = AddClient(conn_.get(), c);
    if (id.ok()) return "added";
    EXPECT_EQ(id.status().code(), Status::Code::kInvalidArgument) << id.status().ToString();
    return id.status().message();
  }

  // A client registered by value with an EC key "ec1" and an RSA key "rsa1".
  std::string AddKeyClient(
      const std::string& scopes = "system/Patient.rs system/Observation.rs system/Group.rs") {
    NewClient c;
    c.name = "Acme";
    c.jwks = JwkSet(EcJwk(testkeys::P384(), "ec1") + "," + RsaJwk(testkeys::Rsa2048(), "rsa1"));
    c.allowed_scopes = scopes;
    return MustAdd(c);
  }

  struct Assertion {
    std::string alg = "ES384";
    std::string kid = "ec1";
    std::string typ = "\"JWT\"";  // raw JSON; empty: no typ member
    std::string jku;              // raw JSON string value when set
    std::string iss, sub;
    std::string aud = std::string("\"") + kTokenUrl + "\"";  // raw JSON
    std::string exp;                                         // raw JSON; default now + 240
    std::string jti = "\"" + RandomId() + "\"";              // raw JSON; empty: none
    std::string extra;                                       // raw claims, ",\"nbf\":1"
    EVP_PKEY* key = nullptr;                                 // default: by alg
  };

  std::string Sign(const Assertion& a) {
    std::string header = "{\"alg\":\"" + a.alg + "\"";
    if (!a.kid.empty()) header += ",\"kid\":\"" + a.kid + "\"";
    if (!a.typ.empty()) header += ",\"typ\":" + a.typ;
    if (!a.jku.empty()) header += ",\"jku\":\"" + a.jku + "\"";
    header += "}";
    std::string claims = "{";
    auto add = [&claims](const std::string& name, const std::string& raw) {
      if (raw.empty()) return;
      if (claims.size() > 1) claims += ",";
      claims += "\"" + name + "\":" + raw;
    };
    add("iss", a.iss.empty() ? "" : "\"" + a.iss + "\"");
    add("sub", a.sub.empty() ? "" : "\"" + a.sub + "\"");
    add("aud", a.aud);
    add("exp", a.exp.empty() ? std::to_string(Now() + 240) : a.exp);
    add("jti", a.jti);
    claims += a.extra + "}";
    EVP_PKEY* key = a.key;
    if (key == nullptr) key = a.alg == "ES384" ? testkeys::P384() : testkeys::Rsa2048();
    return testkeys::SignCompact(key, header, claims);
  }

  Assertion For(const std::string& client_id, const std::string& alg = "ES384") {
    Assertion a;
    a.alg = alg;
    a.kid = alg == "ES384" ? "ec1" : "rsa1";
    a.iss = a.sub = client_id;
    return a;
  }

  std::string Body(const std::string& assertion,
                   const std::string& scope = "system/Patient.rs system/Observation.rs") {
    return "grant_type=client_credentials&scope=" + client::PercentEncode(scope) +
           "&client_assertion_type=" + client::PercentEncode(kJwtBearer) +
           "&client_assertion=" + client::PercentEncode(assertion);
  }

  TokenResult Post(const std::string& body,
                   const std::string& content_type = "application/x-www-form-urlencoded") {
    auto r = HandleTokenRequest(conn_.get(), options_, content_type, body, Now());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : TokenResult();
  }

  // "<error>: <error_description>" of a refusal, "200" for a success.
  static std::string Verdict(const TokenResult& t) {
    if (t.response.status == 200) return "200";
    rapidjson::Document d;
    d.Parse(t.response.body.c_str());
    if (t.response.status != 400 || !d.IsObject() || !d.HasMember("error")) {
      return "unexpected response " + std::to_string(t.response.status) + " " + t.response.body;
    }
    return std::string(d["error"].GetString()) + ": " + d["error_description"].GetString();
  }
  std::string VerdictOf(const Assertion& a,
                        const std::string& scope = "system/Patient.rs system/Observation.rs") {
    return Verdict(Post(Body(Sign(a), scope)));
  }

  static std::string Header(const HttpResponse& r, const std::string& name) {
    for (const auto& h : r.headers) {
      if (h.first == name) return h.second;
    }
    return "<none>";
  }

  TestSchema schema_;
  std::unique_ptr<PgConnection> conn_;
  TokenEndpointOptions options_;
};

// ---- client_store ----------------------------------------------------------------------------

TEST_F(AuthDbTest, AddClientValidates) {
  NewClient good;
  good.name = "n";
  good.jwks = JwkSet(EcJwk(testkeys::P384(), "ec1"));

  NewClient c = good;
  c.name = "";
  EXPECT_EQ(AddError(c), "a client needs a name");
  c = good;
  c.jwks_url = "https://example.org/jwks";
  EXPECT_EQ(AddError(c), "give the client's public keys either as a JWK Set or a URL");
  c = good;
  c.jwks = "";
  EXPECT_EQ(AddError(c), "give the client's public keys either as a JWK Set or a URL");
  c = good;
  c.jwks = JwkSet(RsaJwk(testkeys::Rsa1024(), "small"));
  EXPECT_EQ(AddError(c), "JWK Set: key 1: RSA modulus has 1024 bits; at least 2048 are required");
  c = good;
  c.jwks = JwkSet(EcJwk(testkeys::P384(), "ec1", "P-384", ",\"d\":\"AQAB\""));
  EXPECT_NE(AddError(c).find("private member"), std::string::npos);
  for (const char* url : {"http://example.org/jwks", "https://", "ftp://example.org/jwks",
                          "example.org/jwks", "HTTPS://example.org/jwks"}) {
    c = good;
    c.jwks = "";
    c.jwks_url = url;
    EXPECT_EQ(AddError(c), "the JWKS URL must be an https:// URL") << url;
  }
  c = good;
  c.jwks = "";
  c.jwks_url = "http://127.0.0.1:1/jwks";
  c.allow_http = true;
  EXPECT_EQ(AddError(c), "added");
  c.jwks_url = "http://";
  EXPECT_EQ(AddError(c), "the JWKS URL must be an https:// URL");
  c = good;
  c.allowed_scopes = "system/Patient.rs patient/*.read";
  EXPECT_EQ(AddError(c),
            "scope 'patient/*.read': only system/ scopes are available to backend services");
  c.allowed_scopes = "  ";
  EXPECT_EQ(AddError(c), "a client needs at least one scope");
  c = good;
  c.allowed_groups = {"g1", "bad id!"};
  EXPECT_EQ(AddError(c), "'bad id!' is not a Group id");
  c.allowed_groups = {""};
  EXPECT_EQ(AddError(c), "'' is not a Group id");
  // Only the one valid http client was stored.
  EXPECT_EQ(Scalar("SELECT count(*) FROM auth_client"), "1");
}

// One id in 64 used to start with '-', and `fhir-bulk client disable <id>` read it as an option.
TEST(ClientIdTest, NeverStartsWithAPunctuationMark) {
  for (int i = 0; i < 5000; i++) {
    std::string id = NewClientId();
    ASSERT_EQ(id.size(), 22u);
    ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(id[0]))) << id;
  }
}

TEST_F(AuthDbTest, AddFindList) {
  NewClient a;
  a.name = "Acme Analytics";
  a.jwks = JwkSet(EcJwk(testkeys::P384(), "ec1"));
  a.allowed_scopes = "system/Patient.rs system/*.read";
  std::string id_a = MustAdd(a);
  EXPECT_EQ(id_a.size(), 22u);

  NewClient b;
  b.name = "Beta";
  b.jwks_url = "https://beta.example.com/.well-known/jwks.json";
  b.allowed_groups = {"g1", "group-2"};
  std::string id_b = MustAdd(b);
  EXPECT_NE(id_a, id_b);

  auto fa = FindClient(conn_.get(), id_a);
  ASSERT_TRUE(fa.ok()) << fa.status().ToString();
  ASSERT_TRUE(fa->has_value());
  const ClientRecord& ra = **fa;
  EXPECT_EQ(ra.client_id, id_a);
  EXPECT_EQ(ra.name, "Acme Analytics");
  EXPECT_TRUE(ParseJwks(ra.jwks).ok()) << ra.jwks;
  EXPECT_EQ(ra.jwks_url, "");
  EXPECT_EQ(ra.allowed_scopes, "system/*.read system/Patient.rs");  // canonical
  EXPECT_FALSE(ra.group_restricted);
  EXPECT_TRUE(ra.allowed_groups.empty());
  EXPECT_TRUE(ra.enabled);
  EXPECT_TRUE(std::regex_match(ra.created_at, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << ra.created_at;
  EXPECT_EQ(ra.jwks_cache, "");
  EXPECT_FALSE(ra.jwks_cache_fresh);
  EXPECT_GE(ra.jwks_cache_age_seconds, 1e8);

  auto fb = FindClient(conn_.get(), id_b);
  ASSERT_TRUE(fb.ok() && fb->has_value());
  EXPECT_EQ((*fb)->jwks, "");
  EXPECT_EQ((*fb)->jwks_url, "https://beta.example.com/.well-known/jwks.json");
  EXPECT_EQ((*fb)->allowed_scopes, "system/*.read");  // the default
  EXPECT_TRUE((*fb)->group_restricted);
  EXPECT_EQ((*fb)->allowed_groups, (std::vector<std::string>{"g1", "group-2"}));

  auto missing = FindClient(conn_.get(), "no-such-client");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  auto list = ListClients(conn_.get());
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].client_id, id_a);  // by creation
  EXPECT_EQ((*list)[1].client_id, id_b);
}

TEST_F(AuthDbTest, DisableEnableRemove) {
  std::string id = AddKeyClient();
  NewClient g;
  g.name = "grouped";
  g.jwks = JwkSet(EcJwk(testkeys::P384(), "ec1"));
  g.allowed_groups = {"g7"};
  std::string gid = MustAdd(g);

  auto pol = EnabledClientPolicy(conn_.get(), id);
  ASSERT_TRUE(pol.ok() && pol->has_value());
  EXPECT_FALSE((*pol)->group_restricted);
  auto gpol = EnabledClientPolicy(conn_.get(), gid);
  ASSERT_TRUE(gpol.ok() && gpol->has_value());
  EXPECT_TRUE((*gpol)->group_restricted);
  EXPECT_EQ((*gpol)->allowed_groups, (std::vector<std::string>{"g7"}));

  ASSERT_TRUE(SetClientEnabled(conn_.get(), id, false).ok());
  EXPECT_FALSE((*FindClient(conn_.get(), id))->enabled);
  auto off = EnabledClientPolicy(conn_.get(), id);
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->has_value());
  ASSERT_TRUE(SetClientEnabled(conn_.get(), id, false).ok());  // idempotent
  ASSERT_TRUE(SetClientEnabled(conn_.get(), id, true).ok());
  EXPECT_TRUE((*FindClient(conn_.get(), id))->enabled);
  EXPECT_TRUE(EnabledClientPolicy(conn_.get(), id)->has_value());

  Status unknown = SetClientEnabled(conn_.get(), "nobody", true);
  EXPECT_EQ(unknown.code(), Status::Code::kNotFound);
  EXPECT_EQ(unknown.message(), "no client nobody");

  ASSERT_TRUE(RemoveClient(conn_.get(), id).ok());
  EXPECT_FALSE(FindClient(conn_.get(), id)->has_value());
  EXPECT_FALSE(EnabledClientPolicy(conn_.get(), id)->has_value());
  EXPECT_EQ(RemoveClient(conn_.get(), id).code(), Status::Code::kNotFound);
  EXPECT_EQ(ListClients(conn_.get())->size(), 1u);
}

TEST_F(AuthDbTest, JwksCache) {
  NewClient c;
  c.name = "url";
  c.jwks_url = "https://example.org/jwks";
  std::string id = MustAdd(c);
  std::string set = JwkSet(EcJwk(testkeys::P384(), "ec1"));
  ASSERT_TRUE(StoreJwksCache(conn_.get(), id, set, 60).ok());
  auto r = FindClient(conn_.get(), id);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_TRUE((*r)->jwks_cache_fresh);
  EXPECT_LT((*r)->jwks_cache_age_seconds, 5);
  EXPECT_TRUE(ParseJwks((*r)->jwks_cache).ok());
  ASSERT_TRUE(StoreJwksCache(conn_.get(), id, set, 0).ok());
  EXPECT_FALSE((*FindClient(conn_.get(), id))->jwks_cache_fresh);
  EXPECT_FALSE(StoreJwksCache(conn_.get(), id, "not json", 60).ok());
}

// ---- RememberJti -----------------------------------------------------------------------------

TEST_F(AuthDbTest, RememberJtiDetectsReplays) {
  const int64_t now = Now();
  auto remember = [&](const std::string& client, const std::string& jti, int64_t exp) {
    auto r = RememberJti(conn_.get(), client, jti, exp);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && *r;
  };
  EXPECT_TRUE(remember("c1", "j1", now + 300));
  EXPECT_FALSE(remember("c1", "j1", now + 300));
  EXPECT_FALSE(remember("c1", "j1", now + 10));  // a different exp is still a replay
  EXPECT_TRUE(remember("c2", "j1", now + 300));  // per client
  EXPECT_TRUE(remember("c1", "j2", now + 300));

  // An entry whose window has passed may be used again (its assertion is refused for its exp).
  EXPECT_TRUE(remember("c1", "old", now - 10));
  EXPECT_TRUE(remember("c1", "old", now + 300));
  EXPECT_FALSE(remember("c1", "old", now + 300));
}

TEST_F(AuthDbTest, RememberJtiPurgesExpiredEntries) {
  Exec(
      "INSERT INTO auth_jti SELECT 'c', 'x' || g, now() - interval '1 hour' "
      "FROM generate_series(1, 150) g");
  Exec("INSERT INTO auth_jti VALUES ('c', 'live', now() + interval '1 hour')");
  auto r = RememberJti(conn_.get(), "c", "new", Now() + 300);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(Scalar("SELECT count(*) FROM auth_jti WHERE expires_at < now()"), "50");  // 100 a call
  ASSERT_TRUE(RememberJti(conn_.get(), "c", "new2", Now() + 300).ok());
  EXPECT_EQ(Scalar("SELECT count(*) FROM auth_jti WHERE expires_at < now()"), "0");
  EXPECT_EQ(Scalar("SELECT string_agg(jti, ',' ORDER BY jti) FROM auth_jti"), "live,new,new2");
}

// ---- the token endpoint ----------------------------------------------------------------------

TEST_F(AuthDbTest, TokenForEs384AndRs384) {
  std::string id = AddKeyClient();
  for (const char* alg : {"ES384", "RS384"}) {
    TokenResult t = Post(Body(Sign(For(id, alg)), "system/Patient.rs system/Observation.rs"));
    ASSERT_EQ(t.response.status, 200) << alg << ": " << t.response.body << " / " << t.detail;
    EXPECT_EQ(t.client_id, id);
    EXPECT_EQ(t.detail, "system/Observation.rs system/Patient.rs");
    EXPECT_EQ(t.response.content_type, "application/json");
    EXPECT_EQ(Header(t.response, "Cache-Control"), "no-store");
    EXPECT_EQ(Header(t.response, "Pragma"), "no-cache");
    rapidjson::Document d;
    d.Parse(t.response.body.c_str());
    ASSERT_TRUE(d.IsObject()) << t.response.body;
    EXPECT_STREQ(d["token_type"].GetString(), "bearer");
    EXPECT_EQ(d["expires_in"].GetInt(), 300);
    EXPECT_STREQ(d["scope"].GetString(), "system/Observation.rs system/Patient.rs");
    EXPECT_FALSE(d.HasMember("refresh_token"));
    auto p = VerifyAccessToken(*options_.keys, d["access_token"].GetString(), Now());
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_EQ(p->client_id, id);
    EXPECT_EQ(p->scopes.ToString(), "system/Observation.rs system/Patient.rs");
    EXPECT_LE(p->expires_at, Now() + 300);
  }
  EXPECT_EQ(Scalar("SELECT count(*) FROM auth_jti WHERE client_id = $1", {id}), "2");
}

TEST_F(AuthDbTest, TokenLifetime) {
  std::string id = AddKeyClient();
  auto expires_in = [&](int lifetime) {
    options_.token_lifetime_seconds = lifetime;
    TokenResult t = Post(Body(Sign(For(id))));
    rapidjson::Document d;
    d.Parse(t.response.body.c_str());
    return d.IsObject() && d.HasMember("expires_in") ? d["expires_in"].GetInt() : -1;
  };
  EXPECT_EQ(expires_in(120), 120);
  EXPECT_EQ(expires_in(3600), 300);
  EXPECT_EQ(expires_in(0), 1);
}

TEST_F(AuthDbTest, ScopeIntersection) {
  std::string id = AddKeyClient("system/Patient.rs system/Observation.r system/Group.rs");
  auto granted = [&](const std::string& requested) {
    TokenResult t = Post(Body(Sign(For(id)), requested));
    return t.response.status == 200 ? t.detail : Verdict(t);
  };
  EXPECT_EQ(granted("system/*.rs"), "system/Group.rs system/Observation.r system/Patient.rs");
  EXPECT_EQ(granted("system/*.read"), "system/Group.read system/Observation.r system/Patient.read");
  EXPECT_EQ(granted("system/Patient.read"), "system/Patient.read");
  EXPECT_EQ(granted("system/Observation.rs system/Condition.rs"), "system/Observation.r");
  EXPECT_EQ(granted("system/Condition.rs"),
            "invalid_scope: none of the requested scopes is allowed for this client");
  EXPECT_EQ(granted("system/Observation.s"),
            "invalid_scope: none of the requested scopes is allowed for this client");
  EXPECT_EQ(granted("system/Patient.rs openid"),
            "invalid_scope: scope 'openid': not a SMART "
            "system scope");
  EXPECT_EQ(granted("system/Patient.cruds"),
            "invalid_scope: scope 'system/Patient.cruds': write access (c, u, d) is not "
            "available (this server only exports)");
}

// Step 1: the form.
TEST_F(AuthDbTest, RefusesMalformedRequests) {
  std::string id = AddKeyClient();
  std::string jwt = Sign(For(id));
  std::string ct = "application/x-www-form-urlencoded";
  EXPECT_EQ(Verdict(Post(Body(jwt), "application/json")),
            "invalid_request: Content-Type must be application/x-www-form-urlencoded");
  EXPECT_EQ(Verdict(Post(Body(jwt), "")),
            "invalid_request: Content-Type must be application/x-www-form-urlencoded");
  EXPECT_EQ(Verdict(Post(Body(jwt), "application/x-www-form-urlencodedX")),
            "invalid_request: Content-Type must be application/x-www-form-urlencoded");
  const std::string full = Body(jwt);
  for (const char* name : {"grant_type", "client_assertion_type", "client_assertion", "scope"}) {
    // Remove the parameter, then give it an empty value (empty counts as omitted, but for
    // scope: present and empty is invalid_scope, issue 13).
    std::string without;
    std::string empty;
    size_t i = 0;
    while (i <= full.size()) {
      size_t amp = full.find('&', i);
      if (amp == std::string::npos) amp = full.size();
      std::string part = full.substr(i, amp - i);
      if (part.rfind(std::string(name) + "=", 0) == 0) {
        empty += (empty.empty() ? "" : "&") + std::string(name) + "=";
      } else {
        without += (without.empty() ? "" : "&") + part;
        empty += (empty.empty() ? "" : "&") + part;
      }
      i = amp + 1;
    }
    EXPECT_EQ(Verdict(Post(without)), std::string("invalid_request: missing parameter ") + name);
    EXPECT_EQ(Verdict(Post(empty)),
              std::string(name) == "scope"
                  ? std::string("invalid_scope: the scope parameter is empty")
                  : std::string("invalid_request: missing parameter ") + name);
  }
  EXPECT_EQ(Verdict(Post(full + "&scope=+%20")), "invalid_scope: the scope parameter is empty");
  EXPECT_EQ(Verdict(Post(full + "&scope=system%2FGroup.rs")),
            "invalid_request: parameter scope is repeated");
  EXPECT_EQ(Verdict(Post(full + "&grant_type=client_credentials")),
            "invalid_request: parameter grant_type is repeated");
  EXPECT_EQ(Verdict(Post(full + "&x=%zz")), "invalid_request: the form body is malformed");
  EXPECT_EQ(Verdict(Post("=1&" + full)), "invalid_request: the form body is malformed");
  // Case-insensitive media type with parameters is fine.
  EXPECT_EQ(Verdict(Post(Body(Sign(For(id))), "Application/X-WWW-Form-Urlencoded; charset=UTF-8")),
            "200");
  // The same checks without the database.
  auto pre = PrecheckTokenRequest("application/json", full);
  ASSERT_TRUE(pre.has_value());
  EXPECT_EQ(Verdict(*pre),
            "invalid_request: Content-Type must be application/x-www-form-urlencoded");
  EXPECT_FALSE(PrecheckTokenRequest(ct, full).has_value());
}

// Steps 2 and 3.
TEST_F(AuthDbTest, RefusesOtherGrantsAndAssertionTypes) {
  std::string id = AddKeyClient();
  std::string jwt = Sign(For(id));
  std::string base = "scope=system%2FPatient.rs&client_assertion=" + client::PercentEncode(jwt);
  EXPECT_EQ(Verdict(Post(base + "&grant_type=authorization_code&client_assertion_type=" +
                         client::PercentEncode(kJwtBearer))),
            "unsupported_grant_type: only client_credentials is supported");
  // Step 2 comes before step 3.
  EXPECT_EQ(Verdict(Post(base + "&grant_type=password&client_assertion_type=x")),
            "unsupported_grant_type: only client_credentials is supported");
  EXPECT_EQ(Verdict(Post(
                base + "&grant_type=client_credentials&client_assertion_type=" +
                client::PercentEncode("urn:ietf:params:oauth:client-assertion-type:saml2-bearer"))),
            std::string("invalid_client: client_assertion_type must be ") + kJwtBearer);
  // Nothing was recorded: refused before the signature.
  EXPECT_EQ(Scalar("SELECT count(*) FROM auth_jti"), "0");
}

// Step 4: the JWS header.
TEST_F(AuthDbTest, RefusesBadAssertionHeaders) {
  std::string id = AddKeyClient();
  EXPECT_EQ(Verdict(Post(Body("not-a-jwt"))), "invalid_client: client_assertion is not a JWT");
  for (const char* alg : {"none", "HS256", "RS256", "PS384", "ES256", "ES512"}) {
    Assertion a = For(id);
    a.alg = alg;
    EXPECT_EQ(VerdictOf(a), "invalid_client: client_assertion must be signed with RS384 or ES384")
        << alg;
  }
  Assertion no_kid = For(id);
  no_kid.kid = "";
  EXPECT_EQ(VerdictOf(no_kid), "invalid_client: client_assertion header has no kid");
  for (const char* typ : {"", "\"JOSE\"", "\"at+jwt\"", "1", "null"}) {
    Assertion a = For(id);
    a.typ = typ;
    EXPECT_EQ(VerdictOf(a), "invalid_client: client_assertion header typ must be JWT") << typ;
  }
  Assertion lower = For(id);
  lower.typ = "\"jwt\"";
  EXPECT_EQ(VerdictOf(lower), "200");  // case-insensitive
}

// Step 5: who claims to call.
TEST_F(AuthDbTest, RefusesBadIdentityClaims) {
  std::string id = AddKeyClient();
  const std::string incomplete =
      "invalid_client: client_assertion needs iss, sub, aud, exp and jti";
  Assertion a = For(id);
  a.iss = "";
  EXPECT_EQ(VerdictOf(a), incomplete);
  a = For(id);
  a.sub = "";
  EXPECT_EQ(VerdictOf(a), incomplete);
  a = For(id);
  a.aud = "";
  EXPECT_EQ(VerdictOf(a), incomplete);
  a = For(id);
  a.jti = "";
  EXPECT_EQ(VerdictOf(a), incomplete);
  a = For(id);
  a.jti = "\"\"";
  EXPECT_EQ(VerdictOf(a), incomplete);
  a = For(id);
  a.exp = "\"soon\"";
  EXPECT_EQ(VerdictOf(a), incomplete);
  a = For(id);
  a.sub = "someone-else";
  EXPECT_EQ(VerdictOf(a), "invalid_client: client_assertion iss and sub differ");
  a = For(id);
  a.jti = "\"" + std::string(257, 'j') + "\"";
  EXPECT_EQ(VerdictOf(a), "invalid_client: client_assertion jti too long");
  a = For(id);
  a.jti = "\"" + std::string(256, 'j') + "\"";
  EXPECT_EQ(VerdictOf(a), "200");

  // A form client_id must be the assertion's iss.
  std::string body = Body(Sign(For(id)));
  EXPECT_EQ(Verdict(Post(body + "&client_id=other")),
            "invalid_client: client_id does not match the assertion's iss");
  EXPECT_EQ(Verdict(Post(Body(Sign(For(id))) + "&client_id=" + id)), "200");

  TokenResult unknown = Post(Body(Sign(For("no-such-client"))));
  EXPECT_EQ(Verdict(unknown), "invalid_client: unknown client");
  EXPECT_EQ(unknown.client_id, "");
  EXPECT_EQ(unknown.detail, "invalid_client: unknown client no-such-client");

  ASSERT_TRUE(SetClientEnabled(conn_.get(), id, false).ok());
  TokenResult disabled = Post(Body(Sign(For(id))));
  EXPECT_EQ(Verdict(disabled), "invalid_client: client is disabled");
  EXPECT_EQ(disabled.client_id, id);
  ASSERT_TRUE(SetClientEnabled(conn_.get(), id, true).ok());
  EXPECT_EQ(VerdictOf(For(id)), "200");
}

// Claims that PostgreSQL cannot store as text (NUL, invalid UTF-8) are the client's error,
// not a database failure.
TEST_F(AuthDbTest, RefusesClaimsThatAreNotText) {
  std::string id = AddKeyClient();
  const std::string refusal =
      "invalid_client: client_assertion iss, sub and jti must be UTF-8 text";
  // "<id>\u0000x" would be looked up (and granted) as <id>.
  Assertion nul = For(id);
  nul.iss = nul.sub = id + "\\u0000x";
  EXPECT_EQ(VerdictOf(nul), refusal);
  Assertion bad_utf8 = For(id);
  bad_utf8.iss = bad_utf8.sub = "\xff\xfe";
  EXPECT_EQ(VerdictOf(bad_utf8), refusal);
  Assertion jti = For(id);
  jti.jti = "\"a\\u0000b\"";
  EXPECT_EQ(VerdictOf(jti), refusal);
  Assertion jti_utf8 = For(id);
  jti_utf8.jti = "\"\xc3\x28\"";
  EXPECT_EQ(VerdictOf(jti_utf8), refusal);
  EXPECT_EQ(Scalar("SELECT count(*) FROM auth_jti"), "0");
  // Non-ASCII UTF-8 is text.
  Assertion accented = For(id);
  accented.jti = "\"j\xc3\xa9-\\u00e9\"";
  EXPECT_EQ(VerdictOf(accented), "200");
}

// Steps 6 and 7.
TEST_F(AuthDbTest, RefusesWrongAudienceAndTimes) {
  std::string id = AddKeyClient();
  const int64_t now = Now();
  Assertion a = For(id);
  a.aud = "\"https://ehr.example.org/auth/token/\"";
  EXPECT_EQ(VerdictOf(a), std::string("invalid_client: client_assertion aud must be ") + kTokenUrl);
  a.aud = "\"https://evil.example.org/auth/token\"";
  EXPECT_EQ(VerdictOf(a), std::string("invalid_client: client_assertion aud must be ") + kTokenUrl);
  a.aud = "[\"https://other\",\"" + std::string(kTokenUrl) + "\"]";
  EXPECT_EQ(VerdictOf(a), "200");
  a = For(id);
  a.aud = "[\"https://other\"]";
  EXPECT_EQ(VerdictOf(a), std::string("invalid_client: client_assertion aud must be ") + kTokenUrl);
  a.aud = "42";
  EXPECT_EQ(VerdictOf(a), std::string("invalid_client: client_assertion aud must be ") + kTokenUrl);

  // exp: now - skew < exp <= now + 300 + skew (skew 60).
  a = For(id);
  a.exp = std::to_string(now - 61);
  EXPECT_EQ(VerdictOf(a), "invalid_client: client_assertion expired");
  a = For(id);
  a.exp = std::to_string(now - 30);  // within the skew
  EXPECT_EQ(VerdictOf(a), "200");
  a = For(id);
  a.exp = std::to_string(now + 400);
  EXPECT_EQ(VerdictOf(a), "invalid_client: client_assertion exp is more than 5 minutes ahead");
  a = For(id);
  a.exp = std::to_string(now + 355);
  EXPECT_EQ(VerdictOf(a), "200");
  a = For(id);
  a.exp = std::to_string(now + 100) + ".75";  // NumericDate may have a fraction
  EXPECT_EQ(VerdictOf(a), "200");
  // Numbers beyond int64 (undefined behaviour to convert) still compare as far away.
  for (const char* huge : {"1e300", "18446744073709551615", "9223372036854775807", "1e19"}) {
    a = For(id);
    a.exp = huge;
    EXPECT_EQ(VerdictOf(a), "invalid_client: client_assertion exp is more than 5 minutes ahead")
        << huge;
  }
  for (const char* tiny : {"-1e300", "-9223372036854775808", "-1e19", "0"}) {
    a = For(id);
    a.exp = tiny;
    EXPECT_EQ(VerdictOf(a), "invalid_client: client_assertion expired") << tiny;
  }
  a = For(id);
  a.extra = ",\"nbf\":1e300";
  EXPECT_EQ(VerdictOf(a), "invalid_client: client_assertion not valid yet (nbf)");
  a = For(id);
  a.extra = ",\"iat\":18446744073709551615";
  EXPECT_EQ(VerdictOf(a), "invalid_client: client_assertion issued in the future (iat)");

  a = For(id);
  a.extra = ",\"nbf\":" + std::to_string(now + 120);
  EXPECT_EQ(VerdictOf(a), "invalid_client: client_assertion not valid yet (nbf)");
  a = For(id);
  a.extra = ",\"nbf\":" + std::to_string(now + 30);
  EXPECT_EQ(VerdictOf(a), "200");
  a = For(id);
  a.extra = ",\"iat\":" + std::to_string(now + 120);
  EXPECT_EQ(VerdictOf(a), "invalid_client: client_assertion issued in the future (iat)");
  a = For(id);
  a.extra = ",\"iat\":" + std::to_string(now);
  EXPECT_EQ(VerdictOf(a), "200");
}

// Step 8 (key resolution) and 9 (signature), JWKS by value.
TEST_F(AuthDbTest, RefusesUnresolvableKeysAndBadSignatures) {
  std::string id = AddKeyClient();
  Assertion a = For(id);
  a.kid = "unknown";
  TokenResult t = Post(Body(Sign(a)));
  EXPECT_EQ(Verdict(t), "invalid_client: no usable key for client_assertion");
  EXPECT_EQ(t.detail, "invalid_client: no key with kid 'unknown' for ES384");
  // ES384 naming the RSA key's kid: the kty does not suit the alg.
  a = For(id);
  a.kid = "rsa1";
  EXPECT_EQ(VerdictOf(a), "invalid_client: no usable key for client_assertion");
  a = For(id, "RS384");
  a.kid = "ec1";
  EXPECT_EQ(VerdictOf(a), "invalid_client: no usable key for client_assertion");
  // jku with a client registered by value: nothing to match.
  a = For(id);
  a.jku = "https://acme.example.com/jwks.json";
  t = Post(Body(Sign(a)));
  EXPECT_EQ(Verdict(t), "invalid_client: no usable key for client_assertion");
  EXPECT_EQ(t.detail, "invalid_client: jku does not match the registered JWKS URL");

  // Signed by another key under the registered kid.
  a = For(id);
  a.key = testkeys::P384Other();
  t = Post(Body(Sign(a)));
  EXPECT_EQ(Verdict(t), "invalid_client: client_assertion signature invalid");
  EXPECT_EQ(t.detail, "invalid_client: signature does not verify");
  a = For(id, "RS384");
  a.key = testkeys::Rsa2048Other();
  EXPECT_EQ(VerdictOf(a), "invalid_client: client_assertion signature invalid");
  // A DER ECDSA signature where R||S is required.
  a = For(id);
  std::string jwt = Sign(a);
  std::string input = jwt.substr(0, jwt.rfind('.'));
  std::string der = testkeys::SignSha384(testkeys::P384(), input);
  EXPECT_EQ(Verdict(Post(Body(input + "." + testkeys::B64(der)))),
            "invalid_client: client_assertion signature invalid");
  EXPECT_EQ(Scalar("SELECT count(*) FROM auth_jti"), "0");
}

// Step 10.
TEST_F(AuthDbTest, ReplayedAssertionsAreRefused) {
  std::string id = AddKeyClient();
  std::string jwt = Sign(For(id));
  EXPECT_EQ(Verdict(Post(Body(jwt))), "200");
  EXPECT_EQ(Verdict(Post(Body(jwt))), "invalid_client: client_assertion jti already used");
  // Another scope does not make it new.
  EXPECT_EQ(Verdict(Post(Body(jwt, "system/Group.rs"))),
            "invalid_client: client_assertion jti already used");

  // A forged assertion does not burn the jti it names.
  Assertion forged = For(id);
  forged.jti = "\"chosen-jti\"";
  forged.key = testkeys::P384Other();
  EXPECT_EQ(VerdictOf(forged), "invalid_client: client_assertion signature invalid");
  Assertion genuine = For(id);
  genuine.jti = "\"chosen-jti\"";
  EXPECT_EQ(VerdictOf(genuine), "200");
  EXPECT_EQ(VerdictOf(genuine), "invalid_client: client_assertion jti already used");

  // The replay check runs before the scope check: a replay with a bad scope is a replay.
  EXPECT_EQ(VerdictOf(genuine, "system/Condition.rs"),
            "invalid_client: client_assertion jti already used");
}

// The order of the checks: the earliest failing step is reported.
TEST_F(AuthDbTest, ChecksRunInOrder) {
  std::string id = AddKeyClient();
  Assertion a = For(id);
  a.alg = "HS256";
  a.kid = "";
  a.aud = "\"x\"";
  EXPECT_EQ(VerdictOf(a), "invalid_client: client_assertion must be signed with RS384 or ES384");
  a = For(id);
  a.kid = "";
  a.sub = "x";
  EXPECT_EQ(VerdictOf(a), "invalid_client: client_assertion header has no kid");
  a = For(id);
  a.sub = "x";
  a.aud = "\"x\"";
  EXPECT_EQ(VerdictOf(a), "invalid_client: client_assertion iss and sub differ");
  ASSERT_TRUE(SetClientEnabled(conn_.get(), id, false).ok());
  a = For(id);
  a.aud = "\"x\"";
  EXPECT_EQ(VerdictOf(a), "invalid_client: client is disabled");
  ASSERT_TRUE(SetClientEnabled(conn_.get(), id, true).ok());
  a = For(id);
  a.aud = "\"x\"";
  a.exp = std::to_string(Now() - 1000);
  EXPECT_EQ(VerdictOf(a), std::string("invalid_client: client_assertion aud must be ") + kTokenUrl);
  a = For(id);
  a.exp = std::to_string(Now() - 1000);
  a.kid = "unknown";
  EXPECT_EQ(VerdictOf(a), "invalid_client: client_assertion expired");
  a = For(id);
  a.kid = "unknown";
  a.key = testkeys::P384Other();
  EXPECT_EQ(VerdictOf(a), "invalid_client: no usable key for client_assertion");
  a = For(id);
  a.key = testkeys::P384Other();
  EXPECT_EQ(VerdictOf(a, "openid"), "invalid_client: client_assertion signature invalid");
}

TEST_F(AuthDbTest, ErrorResponseShape) {
  std::string id = AddKeyClient();
  TokenResult t = Post(Body(Sign(For("nobody"))));
  EXPECT_EQ(t.response.status, 400);
  EXPECT_EQ(t.response.content_type, "application/json");
  EXPECT_EQ(t.response.body,
            "{\"error\":\"invalid_client\",\"error_description\":\"unknown client\"}");
  EXPECT_EQ(Header(t.response, "Cache-Control"), "no-store");
  EXPECT_EQ(Header(t.response, "Pragma"), "no-cache");
  // The description never echoes the assertion.
  Assertion a = For(id);
  a.alg = "HS256";
  std::string jwt = Sign(a);
  TokenResult hs = Post(Body(jwt));
  EXPECT_EQ(hs.response.body.find(jwt.substr(0, 20)), std::string::npos);
  EXPECT_EQ(hs.detail, "invalid_client: alg 'HS256' not allowed");
}

// JWKS by URL, served from a loopback server (allow_insecure_jwks).
TEST_F(AuthDbTest, JwksUrlFetchCacheAndRotation) {
  TinyHttpServer server;
  server.Answer(200, JwkSet(EcJwk(testkeys::P384(), "ec1")), "Cache-Control: max-age=600\r\n");
  options_.allow_insecure_jwks = true;
  options_.jwks_min_fetch_interval_seconds = 0;  // the rate limit has its own test
  NewClient c;
  c.name = "by-url";
  c.jwks_url = server.Url();
  c.allow_http = true;
  c.allowed_scopes = "system/*.rs";
  std::string id = MustAdd(c);

  EXPECT_EQ(VerdictOf(For(id)), "200");
  EXPECT_EQ(server.hits(), 1);
  auto rec = FindClient(conn_.get(), id);
  ASSERT_TRUE(rec.ok() && rec->has_value());
  EXPECT_TRUE((*rec)->jwks_cache_fresh);
  EXPECT_EQ(Scalar("SELECT round(extract(epoch FROM jwks_cache_expires - jwks_fetched_at)) "
                   "FROM auth_client WHERE client_id = $1",
                   {id}),
            "600");

  // Cached: no second fetch. A matching jku is fine.
  Assertion with_jku = For(id);
  with_jku.jku = server.Url();
  EXPECT_EQ(VerdictOf(with_jku), "200");
  EXPECT_EQ(server.hits(), 1);
  Assertion bad_jku = For(id);
  bad_jku.jku = server.Url("/other.json");
  TokenResult t = Post(Body(Sign(bad_jku)));
  EXPECT_EQ(Verdict(t), "invalid_client: no usable key for client_assertion");
  EXPECT_EQ(t.detail, "invalid_client: jku does not match the registered JWKS URL");

  // The client rotates in a new key. A fresh cache younger than 10 s is not re-fetched...
  server.Answer(200, JwkSet(EcJwk(testkeys::P384Other(), "ec2")), "Cache-Control: max-age=600\r\n");
  Assertion rotated = For(id);
  rotated.kid = "ec2";
  rotated.key = testkeys::P384Other();
  EXPECT_EQ(VerdictOf(rotated), "invalid_client: no usable key for client_assertion");
  EXPECT_EQ(server.hits(), 1);
  // ... an older one is, once, on an unknown kid.
  Exec(
      "UPDATE auth_client SET jwks_fetched_at = now() - interval '20 seconds' "
      "WHERE client_id = $1",
      {id});
  rotated.jti = "\"" + RandomId() + "\"";
  EXPECT_EQ(VerdictOf(rotated), "200");
  EXPECT_EQ(server.hits(), 2);
  // The old key is gone from the new set.
  EXPECT_EQ(VerdictOf(For(id)), "invalid_client: no usable key for client_assertion");

  // An expired cache is fetched again; a failing fetch refuses.
  Exec(
      "UPDATE auth_client SET jwks_cache_expires = now() - interval '1 second' "
      "WHERE client_id = $1",
      {id});
  server.Answer(500, "oops");
  rotated.jti = "\"" + RandomId() + "\"";
  t = Post(Body(Sign(rotated)));
  EXPECT_EQ(Verdict(t), "invalid_client: no usable key for client_assertion");
  EXPECT_EQ(t.detail, "invalid_client: cannot fetch the client's JWKS: JWKS fetch: HTTP 500");
  EXPECT_EQ(server.hits(), 3);
}

TEST_F(AuthDbTest, JwksUrlSsrfGuardAtTheTokenEndpoint) {
  TinyHttpServer server;
  server.Answer(200, JwkSet(EcJwk(testkeys::P384(), "ec1")));
  NewClient c;
  c.name = "local";
  c.jwks_url = server.Url();
  c.allow_http = true;
  std::string id = MustAdd(c);
  options_.allow_insecure_jwks = false;
  TokenResult t = Post(Body(Sign(For(id)), "system/*.read"));
  EXPECT_EQ(Verdict(t), "invalid_client: no usable key for client_assertion");
  EXPECT_EQ(t.detail,
            "invalid_client: cannot fetch the client's JWKS: JWKS URL scheme not allowed");

  NewClient https_local;
  https_local.name = "https-local";
  https_local.jwks_url = "https://127.0.0.1:" + std::to_string(server.port()) + "/jwks.json";
  std::string id2 = MustAdd(https_local);
  t = Post(Body(Sign(For(id2)), "system/*.read"));
  EXPECT_EQ(t.detail,
            "invalid_client: cannot fetch the client's JWKS: JWKS URL resolves to a private "
            "address");
  EXPECT_EQ(server.hits(), 0);
}

// A JWKS served by URL that the server cannot use at all: the client's problem (invalid_client),
// not a server failure, whatever the body is.
TEST_F(AuthDbTest, JwksUrlServingGarbage) {
  TinyHttpServer server;
  options_.allow_insecure_jwks = true;
  options_.jwks_min_fetch_interval_seconds = 0;
  NewClient c;
  c.name = "garbage";
  c.jwks_url = server.Url();
  c.allow_http = true;
  std::string id = MustAdd(c);
  server.Answer(200, "{\"keys\":\"nope\"}");
  TokenResult t = Post(Body(Sign(For(id)), "system/*.read"));
  EXPECT_EQ(Verdict(t), "invalid_client: no usable key for client_assertion");
  EXPECT_EQ(t.detail,
            "invalid_client: the client's JWKS is unusable: JWK Set has no \"keys\" array");
  // That set is cached (it is JSON); expire it for each of the next bodies.
  for (const char* body : {"<html>maintenance</html>", "", "{\"keys\":[", "\"\\u0000\""}) {
    Exec(
        "UPDATE auth_client SET jwks_cache_expires = now() - interval '1 second' "
        "WHERE client_id = $1",
        {id});
    server.Answer(200, body);
    auto r = HandleTokenRequest(conn_.get(), options_, "application/x-www-form-urlencoded",
                                Body(Sign(For(id)), "system/*.read"), Now());
    ASSERT_TRUE(r.ok()) << body << ": " << r.status().ToString();
    EXPECT_EQ(Verdict(*r), "invalid_client: no usable key for client_assertion") << body;
    EXPECT_EQ(r->detail,
              "invalid_client: the client's JWKS is unusable: JWK Set is not a JSON object")
        << body;
  }
}

// ---- the audit trail -------------------------------------------------------------------------

TEST_F(AuthDbTest, AuditLogWritesEvents) {
  const int kEvents = 4500;  // more than one batch (audit.cc: kMaxBatch)
  {
    AuditLog log(TestConninfo());
    for (int i = 0; i < kEvents; i++) {
      AuditEvent e;
      e.at_us = 1717520400000000 + i;
      e.client_id = i % 2 == 0 ? "client-" + std::to_string(i) : "";
      e.action = "download";
      e.target = "job/" + std::to_string(i);
      e.result = 200 + i % 3;
      e.detail = i == 7 ? "quote \" backslash \\ comma , brace } done" : "";
      e.remote_addr = "192.0.2.1";
      log.Submit(std::move(e));
    }
    ASSERT_TRUE(log.Flush(std::chrono::seconds(20)));
    EXPECT_EQ(Scalar("SELECT count(*) FROM audit_event"), std::to_string(kEvents));
    PgResult r = Exec(
        "SELECT coalesce(client_id, '<null>'), action, target, result, coalesce(detail, "
        "'<null>'), remote_addr, (extract(epoch FROM at) * 1000000)::bigint FROM audit_event "
        "WHERE target IN ('job/6', 'job/7') ORDER BY target");
    ASSERT_EQ(r.rows(), 2);
    EXPECT_EQ(r.str(0, 0), "client-6");
    EXPECT_EQ(r.str(0, 1), "download");
    EXPECT_EQ(r.str(0, 2), "job/6");
    EXPECT_EQ(r.str(0, 3), "200");
    EXPECT_EQ(r.str(0, 4), "<null>");
    EXPECT_EQ(r.str(0, 5), "192.0.2.1");
    EXPECT_EQ(r.str(0, 6), "1717520400000006");
    EXPECT_EQ(r.str(1, 0), "<null>");
    EXPECT_EQ(r.str(1, 3), "201");
    EXPECT_EQ(r.str(1, 4), "quote \" backslash \\ comma , brace } done");

    // Events without a time get the current one.
    AuditEvent now;
    now.action = "token";
    now.result = 400;
    log.Submit(now);
    ASSERT_TRUE(log.Flush(std::chrono::seconds(10)));
    EXPECT_EQ(Scalar("SELECT count(*) FROM audit_event WHERE action = 'token' AND "
                     "at > now() - interval '1 minute' AND target IS NULL"),
              "1");
  }
}

// sql/0020: a download row pays two index entries, and every search still has an index: the
// newest events by the primary key (at, event_id) with no sort, a rare action by the partial
// action index, a client by the client index, downloads by the time order.
TEST_F(AuthDbTest, AuditSearchesReadTheIndexMeantForThem) {
  Exec(
      "INSERT INTO audit_event (at, client_id, action, target, result) "
      "SELECT timestamptz '2026-01-01 00:00:00+00' + (i / 2) * interval '1 second', "
      "CASE WHEN i % 997 = 0 THEN 'rare-client' ELSE 'client-' || (i % 7) END, "
      "CASE WHEN i % 1000 = 0 THEN 'token' ELSE 'download' END, 'job/' || i, 200 "
      "FROM generate_series(1, 40000) i");
  Exec("ANALYZE audit_event");
  const auto plan = [&](AuditQuery q) {
    q.limit = 20;
    auto p = ExplainAuditSearch(conn_.get(), q);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? *p : std::string();
  };
  AuditQuery newest;
  std::string p = plan(newest);
  EXPECT_NE(p.find("Index Scan Backward using audit_event_pkey"), std::string::npos) << p;
  EXPECT_EQ(p.find("Sort Key"), p.rfind("Sort Key")) << p;  // only the outer sort of 20 rows
  AuditQuery token;
  token.action = "token";
  p = plan(token);
  EXPECT_NE(p.find("audit_event_action"), std::string::npos) << p;
  AuditQuery client;
  client.client = "rare-client";
  p = plan(client);
  EXPECT_NE(p.find("audit_event_client"), std::string::npos) << p;
  AuditQuery downloads;
  downloads.action = "download";
  p = plan(downloads);
  EXPECT_NE(p.find("Index Scan Backward using audit_event_pkey"), std::string::npos) << p;

  // The answers themselves: the 40 token events, newest first, ties in `at` by event_id.
  token.limit = 100;
  token.newest_first = true;
  auto r = SearchAudit(conn_.get(), token);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->rows(), 40);
  EXPECT_EQ(r->str(0, 4), "job/40000");
  EXPECT_EQ(r->str(39, 4), "job/1000");
  AuditQuery tie;
  tie.since = "2026-01-01T00:00:01Z";
  tie.until = "2026-01-01T00:00:02Z";
  tie.newest_first = true;
  r = SearchAudit(conn_.get(), tie);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->rows(), 2);  // i = 2 and 3 share their second
  EXPECT_EQ(r->str(0, 4), "job/3");
  EXPECT_EQ(r->str(1, 4), "job/2");
}

// An event whose text PostgreSQL cannot store (an attacker-chosen "iss" in a token request's
// detail can carry NUL or invalid UTF-8) must not block the trail.
TEST_F(AuthDbTest, AuditLogSurvivesUnstorableText) {
  AuditLog log(TestConninfo());
  AuditEvent bad;
  bad.action = "token";
  bad.result = 400;
  bad.detail = std::string("invalid_client: unknown client a\0b", 34) + "\xff\xfe";
  bad.client_id = "c\xc3";
  log.Submit(bad);
  AuditEvent good;
  good.action = "kickoff";
  good.result = 202;
  good.target = "after";
  log.Submit(good);
  ASSERT_TRUE(log.Flush(std::chrono::seconds(10)));
  EXPECT_EQ(Scalar("SELECT count(*) FROM audit_event WHERE target = 'after'"), "1");
  EXPECT_EQ(Scalar("SELECT count(*) FROM audit_event WHERE action = 'token' AND "
                   "detail LIKE 'invalid_client: unknown client a%'"),
            "1");
}

// Issue 11 row 13: a JWKS host that says no-cache, fails or answers slowly cannot make every
// token request fetch again, nor hold more than a few pool threads.
TEST_F(AuthDbTest, JwksFetchesAreCachedRateLimitedAndCapped) {
  TinyHttpServer server;
  server.Answer(200, JwkSet(EcJwk(testkeys::P384(), "ec1")), "Cache-Control: no-cache\r\n");
  options_.allow_insecure_jwks = true;
  auto by_url = [&](const std::string& url) {
    NewClient c;
    c.name = "by-url";
    c.jwks_url = url;
    c.allow_http = true;
    c.allowed_scopes = "system/*.rs";
    return MustAdd(c);
  };
  std::string id = by_url(server.Url());
  EXPECT_EQ(VerdictOf(For(id)), "200");
  EXPECT_EQ(server.hits(), 1);
  // no-cache: kept for the minimum cache time anyway.
  EXPECT_EQ(Scalar("SELECT round(extract(epoch FROM jwks_cache_expires - jwks_fetched_at)) "
                   "FROM auth_client WHERE client_id = $1",
                   {id}),
            "60");
  for (int i = 0; i < 5; i++) EXPECT_EQ(VerdictOf(For(id)), "200");
  EXPECT_EQ(server.hits(), 1);
  // Cache expired (another node's clock, say): within 10 s of the last fetch this process
  // reuses that fetch instead of asking the host again.
  Exec(
      "UPDATE auth_client SET jwks_cache_expires = now() - interval '1 second' "
      "WHERE client_id = $1",
      {id});
  EXPECT_EQ(VerdictOf(For(id)), "200");
  EXPECT_EQ(server.hits(), 1);

  // A failing host: one fetch per interval, the failure repeated in between.
  TinyHttpServer failing;
  failing.Answer(500, "oops");
  std::string bad = by_url(failing.Url());
  for (int i = 0; i < 4; i++) {
    TokenResult t = Post(Body(Sign(For(bad))));
    EXPECT_EQ(t.detail, "invalid_client: cannot fetch the client's JWKS: JWKS fetch: HTTP 500");
  }
  EXPECT_EQ(failing.hits(), 1);

  // A slow host: at most 2 fetches at once per process; the third client is answered at
  // once with 503 temporarily_unavailable + Retry-After instead of holding a thread.
  TinyHttpServer slow;
  slow.Delay(1000);
  slow.Answer(200, JwkSet(EcJwk(testkeys::P384(), "ec1")), "Cache-Control: no-cache\r\n");
  std::vector<std::string> ids = {by_url(slow.Url()), by_url(slow.Url()), by_url(slow.Url())};
  std::vector<TokenResult> results(ids.size());
  std::vector<double> seconds(ids.size());
  std::vector<std::string> bodies;
  bodies.reserve(ids.size());
  for (const std::string& c : ids) bodies.push_back(Body(Sign(For(c))));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ids.size(); i++) {
    threads.emplace_back([&, i] {
      std::this_thread::sleep_for(std::chrono::milliseconds(100 * i));
      auto conn = ConnectTestDb();
      auto start = std::chrono::steady_clock::now();
      auto r = HandleTokenRequest(conn.get(), options_, "application/x-www-form-urlencoded",
                                  bodies[i], Now());
      seconds[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (r.ok()) results[i] = std::move(r).value();
    });
  }
  for (auto& t : threads) t.join();
  // Which two fetch depends on scheduling; exactly one is refused, at once.
  int ok = 0, refused = 0;
  size_t refused_index = 0;
  for (size_t i = 0; i < results.size(); i++) {
    if (results[i].response.status == 200) ok++;
    if (results[i].response.status == 503) {
      refused++;
      refused_index = i;
    }
  }
  EXPECT_EQ(ok, 2);
  ASSERT_EQ(refused, 1);
  const TokenResult& busy = results[refused_index];
  EXPECT_EQ(busy.detail,
            "temporarily_unavailable: the client's JWK Set is being fetched or fetches are at "
            "their limit; retry shortly");
  EXPECT_EQ(Header(busy.response, "Retry-After"), "5");
  EXPECT_LT(seconds[refused_index], 0.5) << "the refused request did not wait for the slow host";
  EXPECT_EQ(slow.hits(), 2);
  // Once the fetches are done, the refused client gets its token.
  EXPECT_EQ(VerdictOf(For(ids[refused_index])), "200");
  EXPECT_EQ(slow.hits(), 3);
}

// Issue 11 row 4: client-chosen text in a refusal's detail (alg, kid, iss) is escaped, so the
// error log and the audit trail never get a forged line.
TEST_F(AuthDbTest, RefusalDetailsEscapeClientText) {
  std::string id = AddKeyClient();
  Assertion a = For(id);
  a.alg = "RS384\\n2026/12/07 04:00:00 [emerg] 1#1: FAKE";
  TokenResult t = Post(Body(Sign(a)));
  EXPECT_EQ(t.detail,
            "invalid_client: alg 'RS384\\x0A2026/12/07 04:00:00 [emerg] 1#1: FAKE' not allowed");
  Assertion k = For(id);
  k.kid = "ec9\\r\\n[emerg] FAKE";
  t = Post(Body(Sign(k)));
  EXPECT_EQ(t.detail, "invalid_client: no key with kid 'ec9\\x0D\\x0A[emerg] FAKE' for ES384");
  Assertion u = For("nobody\\n[emerg] FAKE");
  t = Post(Body(Sign(u)));
  EXPECT_EQ(t.detail, "invalid_client: unknown client nobody\\x0A[emerg] FAKE");
  // Long values are cut.
  Assertion l = For(id);
  l.alg = std::string(5000, 'A');
  t = Post(Body(Sign(l)));
  EXPECT_EQ(t.detail, "invalid_client: alg '" + std::string(64, 'A') + "...' not allowed");
  // A scope that does not parse is named escaped.
  t = Post(Body(Sign(For(id)), "system/Patient.rs\x01x"));
  EXPECT_EQ(t.detail.find('\x01'), std::string::npos) << t.detail;
}

TEST_F(AuthDbTest, AuditLogEscapesControlBytes) {
  AuditLog log(TestConninfo());
  AuditEvent e;
  e.action = "token";
  e.result = 400;
  e.client_id = "c\n1";
  e.target = "t\r\n[emerg] FAKE";
  e.detail = "invalid_client: x\n2026/12/07 [emerg] 1#1: FAKE " + std::string(5000, 'd');
  log.Submit(e);
  ASSERT_TRUE(log.Flush(std::chrono::seconds(10)));
  EXPECT_EQ(Scalar("SELECT client_id FROM audit_event"), "c\\x0A1");
  EXPECT_EQ(Scalar("SELECT target FROM audit_event"), "t\\x0D\\x0A[emerg] FAKE");
  EXPECT_EQ(Scalar("SELECT left(detail, 49) FROM audit_event"),
            "invalid_client: x\\x0A2026/12/07 [emerg] 1#1: FAKE");
  EXPECT_EQ(Scalar("SELECT length(detail) FROM audit_event"),
            "2054");  // cut at 2048, the newline is 4 bytes
  EXPECT_EQ(Scalar("SELECT count(*) FROM audit_event WHERE detail ~ '[\\n\\r]' OR "
                   "target ~ '[\\n\\r]' OR client_id ~ '[\\n\\r]'"),
            "0");
}

}  // namespace
}  // namespace fhirbulk
