// The operator API's event-loop half (server/ops_api.h): paths, parameters and their limits,
// the scope each route needs, operator scopes in ScopeSet, and the Server's gates (off unless
// configured, 401 without a token, 403 without the route's operator scope) — all before any
// database. The database half runs in t/61-operator-api.t against real nginx and PostgreSQL.

#include "server/ops_api.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "auth/access_token.h"
#include "auth/key_ring.h"
#include "auth/scopes.h"
#include "server/server.h"
#include "util/fhir_time.h"

namespace fhirbulk {
namespace {

Status Query(const std::string& path, const std::string& query, OpsCall* call = nullptr) {
  OpsCall local;
  OpsCall* c = call ? call : &local;
  bool post = false;
  Status s = MatchOpsPath(path, c, &post);
  if (!s.ok()) return s;
  return ParseOpsQuery(query, c);
}

TEST(OpsApiTest, Paths) {
  OpsCall c;
  bool post = true;
  ASSERT_TRUE(MatchOpsPath("jobs", &c, &post).ok());
  EXPECT_EQ(c.op, OpsCall::Op::kJobs);
  EXPECT_FALSE(post);
  ASSERT_TRUE(MatchOpsPath("clients/Ab-_.~9/disable", &c, &post).ok());
  EXPECT_EQ(c.op, OpsCall::Op::kDisableClient);
  EXPECT_EQ(c.client, "Ab-_.~9");
  EXPECT_TRUE(post);
  ASSERT_TRUE(MatchOpsPath("clients/x/enable", &c, &post).ok());
  EXPECT_EQ(c.op, OpsCall::Op::kEnableClient);
  for (const char* bad : {"", "job", "jobs/", "clients/", "clients//disable", "clients/x/remove",
                          "clients/a b/disable", "clients/x/y/disable", "../jobs"}) {
    EXPECT_EQ(MatchOpsPath(bad, &c, &post).code(), Status::Code::kNotFound) << bad;
  }
  EXPECT_FALSE(MatchOpsPath("clients/" + std::string(129, 'a') + "/disable", &c, &post).ok());
}

TEST(OpsApiTest, ParametersAndLimits) {
  OpsCall c;
  ASSERT_TRUE(Query("history", "client=abc&outcome=failed&limit=500&offset=100000", &c).ok());
  EXPECT_EQ(c.client, "abc");
  EXPECT_EQ(c.state, "failed");
  EXPECT_EQ(c.limit, 500);
  EXPECT_EQ(c.offset, 100000);
  ASSERT_TRUE(Query("stats", "days=366", &c).ok());
  EXPECT_EQ(c.days, 366);
  for (const char* bad : {"limit=0", "limit=501", "limit=", "limit=1e3", "limit=-1",
                          "limit=99999999", "offset=100001", "state=bogus", "outcome=completed",
                          "client=", "client=a%20b", "limit=1&limit=2", "x=1", "=1"}) {
    EXPECT_EQ(Query("jobs", bad).code(), Status::Code::kInvalidArgument) << bad;
  }
  for (const char* bad : {"days=0", "days=367", "limit=5"}) {
    EXPECT_EQ(Query("stats", bad).code(), Status::Code::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(Query("clients", "limit=5").ok());
  std::string many;
  for (int i = 0; i < 17; i++) many += "a" + std::to_string(i) + "=1&";
  EXPECT_FALSE(Query("jobs", many).ok());
  EXPECT_FALSE(Query("audit", "target=" + std::string(4100, 'x')).ok());
}

TEST(OpsApiTest, AuditFilters) {
  OpsCall c;
  ASSERT_TRUE(
      Query("audit",
            "action=download&result=206&target=job%2Ffile&since=2026-01-31&until=2026-01-31", &c)
          .ok());
  EXPECT_EQ(c.audit.action, "download");
  EXPECT_EQ(c.audit.result, "206");
  EXPECT_EQ(c.audit.target, "job/file");
  EXPECT_EQ(c.audit.since, "2026-01-31T00:00:00Z");
  EXPECT_EQ(c.audit.until, "2026-02-01T00:00:00Z");  // a date until covers its day
  EXPECT_TRUE(c.audit.newest_first);
  EXPECT_EQ(c.audit.limit, 50);
  for (const char* bad : {"action=bogus", "result=99", "result=600", "result=20x",
                          "since=yesterday", "since=2026-02-30", "until=2026-01-01T10:00",
                          "since=2026-01-02&until=2026-01-01", "target=%01", "target="}) {
    EXPECT_EQ(Query("audit", bad).code(), Status::Code::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(Query("audit", "target=" + std::string(513, 'x')).ok());
  EXPECT_TRUE(Query("audit", "target=" + std::string(512, 'x')).ok());
}

TEST(OpsApiTest, ScopesPerRoute) {
  EXPECT_EQ(OpsScopeNeeded(OpsCall::Op::kJobs), kOperatorJobsRead);
  EXPECT_EQ(OpsScopeNeeded(OpsCall::Op::kHistory), kOperatorJobsRead);
  EXPECT_EQ(OpsScopeNeeded(OpsCall::Op::kClients), kOperatorClientsRead);
  EXPECT_EQ(OpsScopeNeeded(OpsCall::Op::kDisableClient), kOperatorClientsWrite);
  EXPECT_EQ(OpsScopeNeeded(OpsCall::Op::kEnableClient), kOperatorClientsWrite);
  EXPECT_EQ(OpsScopeNeeded(OpsCall::Op::kAudit), kOperatorAuditRead);
  EXPECT_EQ(OpsScopeNeeded(OpsCall::Op::kStats), kOperatorStatsRead);
}

TEST(OperatorScopeTest, ParseIntersectFormat) {
  auto all = ScopeSet::Parse("operator/*.read operator/clients.write");
  ASSERT_TRUE(all.ok());
  EXPECT_FALSE(all->empty());
  EXPECT_TRUE(all->scopes().empty());  // no resource access
  EXPECT_FALSE(all->CanReadAll());
  EXPECT_TRUE(all->GrantsOperator(kOperatorAllRead | kOperatorClientsWrite));
  EXPECT_EQ(all->ToString(), "operator/*.read operator/clients.write");
  auto jobs = ScopeSet::Parse("system/*.read operator/jobs.read");
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(jobs->ToString(), "system/*.read operator/jobs.read");
  EXPECT_TRUE(ScopeSet::Intersect(*jobs, *all).GrantsOperator(kOperatorJobsRead));
  EXPECT_FALSE(ScopeSet::Intersect(*jobs, *all).GrantsOperator(kOperatorAuditRead));
  // an export client's registration has none: asking gives nothing
  auto exporter = ScopeSet::Parse("system/*.read");
  EXPECT_TRUE(ScopeSet::Intersect(*all, *exporter).empty());
  for (const char* bad : {"operator/*.write", "operator/jobs.r", "operator/", "operator/x.read",
                          "operator/clients.read?x=1"}) {
    EXPECT_FALSE(ScopeSet::Parse(bad).ok()) << bad;
  }
}

class OpsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_file_ = "/tmp/fhirbulk_ops_test_" + std::to_string(::getpid()) + ".keys";
    std::ofstream(key_file_) << kKeys;
    ring_ = KeyRing::Parse(kKeys).value();
  }
  void TearDown() override { std::remove(key_file_.c_str()); }

  std::unique_ptr<Server> Make(bool operator_api, bool auth = true) {
    ServerOptions o;
    o.base_url = "https://ehr.example.org/fhir";
    o.conninfo = "";
    o.auth_enabled = auth;
    o.token_key_file = key_file_;
    o.operator_api = operator_api;
    auto s = Server::Create(o);
    if (!s.ok()) return nullptr;
    return std::move(s).value();
  }

  HttpResponse Fast(const Server& s, const std::string& path, const std::string& scopes,
                    bool* pending) {
    HttpRequest r;
    r.method = HttpMethod::kGet;
    const size_t q = path.find('?');
    r.path = std::string_view(path).substr(0, q);
    if (q != std::string::npos) r.query = std::string_view(path).substr(q + 1);
    std::string auth;
    if (!scopes.empty()) {
      auth = "Bearer " + IssueAccessToken(ring_, "op1", ScopeSet::Parse(scopes).value(),
                                          NowMicros() / 1000000, 300);
    }
    r.authorization = auth;
    HttpResponse resp;
    *pending = s.HandleFast(r, &resp) != nullptr;
    return resp;
  }

  static constexpr const char* kKeys = "t1 tttttttttttttttttttttttttttttttttttttttt\n";
  std::string key_file_;
  KeyRing ring_;
};

TEST_F(OpsServerTest, OffUnlessConfiguredAndNeedsAuth) {
  EXPECT_EQ(Make(true, false), nullptr);  // the operator API needs authorization
  auto off = Make(false);
  ASSERT_NE(off, nullptr);
  bool pending = true;
  EXPECT_EQ(Fast(*off, "/_ops/api/jobs", "operator/*.read", &pending).status, 404);
  EXPECT_FALSE(pending);
}

TEST_F(OpsServerTest, TokenAndScopeGates) {
  auto s = Make(true);
  ASSERT_NE(s, nullptr);
  bool pending = true;
  EXPECT_EQ(Fast(*s, "/_ops/api/jobs", "", &pending).status, 401);
  EXPECT_FALSE(pending);
  EXPECT_EQ(Fast(*s, "/_ops/api/jobs", "system/*.read", &pending).status, 403);
  EXPECT_EQ(Fast(*s, "/_ops/api/audit", "operator/jobs.read", &pending).status, 403);
  EXPECT_EQ(Fast(*s, "/_ops/api/jobs?limit=0", "operator/jobs.read", &pending).status, 400);
  EXPECT_FALSE(pending);
  Fast(*s, "/_ops/api/jobs?limit=10", "operator/jobs.read", &pending);
  EXPECT_TRUE(pending);  // on to the database half
  EXPECT_EQ(Fast(*s, "/_ops/api/nope", "operator/*.read", &pending).status, 404);
}

}  // namespace
}  // namespace fhirbulk
