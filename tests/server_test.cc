#include "server/server.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "fhir/resource_types.h"
#include "fhirbulk/fhirbulk.h"
#include "http/outcome.h"
#include "test_db.h"

namespace fhirbulk {
namespace {

std::unique_ptr<Server> MakeServer(const std::string& conninfo) {
  ServerOptions o;
  o.base_url = "https://ehr.example.org/fhir/";
  o.conninfo = conninfo;
  o.retry_after_unavailable = 9;
  auto s = Server::Create(o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

HttpRequest Get(std::string_view path) {
  HttpRequest r;
  r.method = HttpMethod::kGet;
  r.path = path;
  return r;
}

rapidjson::Document Parse(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  EXPECT_FALSE(d.HasParseError()) << body;
  return d;
}

std::string Header(const HttpResponse& r, const std::string& name) {
  for (const auto& h : r.headers) {
    if (h.first == name) return h.second;
  }
  return "";
}

}  // namespace

TEST(ServerTest, RejectsBadBaseUrls) {
  for (const char* url : {"", "/fhir", "ftp://h/fhir", "http://", "http:///fhir",
                          "http://h/fhir?x=1", "http://h/fhir#f"}) {
    ServerOptions o;
    o.base_url = url;
    EXPECT_FALSE(Server::Create(o).ok()) << url;
  }
}

TEST(ServerTest, BasePathAndUrl) {
  auto s = MakeServer("");
  EXPECT_EQ(s->base_url(), "https://ehr.example.org/fhir");
  EXPECT_EQ(s->base_path(), "/fhir");
  ServerOptions o;
  o.base_url = "http://h:8080";
  auto root = Server::Create(o);
  ASSERT_TRUE(root.ok());
  EXPECT_EQ((*root)->base_path(), "");
}

TEST(ServerTest, MetadataIsACapabilityStatement) {
  auto s = MakeServer("");
  HttpResponse r;
  ASSERT_TRUE(s->HandleFast(Get("/metadata"), &r));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/fhir+json");
  auto d = Parse(r.body);
  EXPECT_STREQ(d["resourceType"].GetString(), "CapabilityStatement");
  EXPECT_STREQ(d["instantiates"][0].GetString(),
               "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data");
  EXPECT_STREQ(d["fhirVersion"].GetString(), "4.0.1");
  EXPECT_STREQ(d["implementation"]["url"].GetString(), "https://ehr.example.org/fhir");
}

TEST(ServerTest, WrongMethodIs405WithAllow) {
  auto s = MakeServer("");
  HttpRequest req = Get("/metadata");
  req.method = HttpMethod::kDelete;
  HttpResponse r;
  ASSERT_TRUE(s->HandleFast(req, &r));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(Header(r, "Allow"), "GET, HEAD");
}

TEST(ServerTest, UnknownRoutesAre404Outcomes) {
  auto s = MakeServer("");
  for (const char* path : {"", "/", "/nope", "/metadata/x", "/Patient"}) {
    HttpResponse r;
    ASSERT_TRUE(s->HandleFast(Get(path), &r)) << path;
    EXPECT_EQ(r.status, 404) << path;
    auto d = Parse(r.body);
    EXPECT_STREQ(d["resourceType"].GetString(), "OperationOutcome");
    EXPECT_STREQ(d["issue"][0]["code"].GetString(), "not-found");
  }
}

TEST(ServerTest, HealthNeedsTheDatabase) {
  auto s = MakeServer("host=127.0.0.1 port=1 dbname=x connect_timeout=2");
  HttpResponse fast;
  EXPECT_FALSE(s->HandleFast(Get("/_health"), &fast));
  HttpResponse r;
  s->HandleBlocking(Get("/_health"), &r);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Header(r, "Retry-After"), "9");
  auto d = Parse(r.body);
  EXPECT_STREQ(d["issue"][0]["code"].GetString(), "transient");
  // the client learns nothing about the database; the operator's log does
  EXPECT_EQ(r.body.find("127.0.0.1"), std::string::npos);
  EXPECT_NE(r.log_message.find("127.0.0.1"), std::string::npos);
}

TEST(ServerDbTest, HealthReportsSchemaVersion) {
  FHIRBULK_REQUIRE_TEST_DB();
  auto conn = ConnectTestDb();
  ASSERT_NE(conn, nullptr);
  auto s = MakeServer(TestConninfo());
  HttpResponse r;
  s->HandleBlocking(Get("/_health"), &r);
  EXPECT_EQ(r.status, 200) << r.body;
  auto d = Parse(r.body);
  EXPECT_EQ(d["schemaVersion"].GetInt(), BuiltinMigrations().back().version);
}

TEST(OutcomeTest, StatusMapping) {
  EXPECT_EQ(HttpStatusFor(Status::InvalidArgument("x")), 400);
  EXPECT_EQ(HttpStatusFor(Status::NotSupported("x")), 400);
  EXPECT_EQ(HttpStatusFor(Status::Unauthenticated("x")), 401);
  EXPECT_EQ(HttpStatusFor(Status::PermissionDenied("x")), 403);
  EXPECT_EQ(HttpStatusFor(Status::NotFound("x")), 404);
  EXPECT_EQ(HttpStatusFor(Status::ResourceExhausted("x")), 429);
  EXPECT_EQ(HttpStatusFor(Status::Unavailable("x")), 503);
  EXPECT_EQ(HttpStatusFor(Status::Internal("x")), 500);
  HttpResponse r = StatusResponse(Status::Internal("SELECT secret FROM t"), 5);
  EXPECT_EQ(r.body.find("secret"), std::string::npos);
  EXPECT_EQ(Header(r, "Retry-After"), "");
  HttpResponse bad = StatusResponse(Status::InvalidArgument("_since is in the future"), 5);
  EXPECT_NE(bad.body.find("_since is in the future"), std::string::npos);
}

TEST(OutcomeTest, JsonEscapesDiagnostics) {
  std::string json = OperationOutcomeJson({{"error", "invalid", "bad \"x\"\n", "_type"}});
  auto d = Parse(json);
  EXPECT_STREQ(d["issue"][0]["diagnostics"].GetString(), "bad \"x\"\n");
  EXPECT_STREQ(d["issue"][0]["expression"][0].GetString(), "_type");
}

TEST(CApiTest, RoundTripThroughTheCAbi) {
  fhirbulk_server_options_t o = {};
  o.base_url = {"http://h/fhir", 13};
  o.conninfo = {"", 0};
  char err[128] = "";
  fhirbulk_server_t* s = fhirbulk_server_create(&o, err, sizeof(err));
  ASSERT_NE(s, nullptr) << err;
  fhirbulk_str_t base = fhirbulk_server_base_path(s);
  EXPECT_EQ(std::string(base.data, base.len), "/fhir");
  fhirbulk_request_t req = {};
  req.method = FHIRBULK_METHOD_GET;
  req.path = {"/metadata", 9};
  fhirbulk_response_t resp = {};
  ASSERT_EQ(fhirbulk_handle_fast(s, &req, &resp), FHIRBULK_DONE);
  EXPECT_EQ(resp.status, 200);
  EXPECT_STREQ(resp.content_type, "application/fhir+json");
  EXPECT_GT(resp.body_len, 100u);
  fhirbulk_response_free(&resp);
  EXPECT_EQ(resp.body, nullptr);

  fhirbulk_error_response(503, "transient", "busy", 3, &resp);
  EXPECT_EQ(resp.status, 503);
  ASSERT_EQ(resp.nheaders, 1);
  EXPECT_STREQ(resp.headers[0].name, "Retry-After");
  EXPECT_STREQ(resp.headers[0].value, "3");
  fhirbulk_response_free(&resp);
  fhirbulk_server_destroy(s);

  o.base_url = {"nope", 4};
  EXPECT_EQ(fhirbulk_server_create(&o, err, sizeof(err)), nullptr);
  EXPECT_NE(std::string(err).find("absolute"), std::string::npos);
}

}  // namespace fhirbulk

namespace fhirbulk {

TEST(RoutesTest, MatchesTheExportRoutes) {
  EXPECT_EQ(MatchRoute("/metadata").kind, Route::kMetadata);
  EXPECT_EQ(MatchRoute("/_health").kind, Route::kHealth);
  Route sys = MatchRoute("/$export");
  EXPECT_EQ(sys.kind, Route::kExportKickoff);
  EXPECT_EQ(sys.level, ExportLevel::kSystem);
  EXPECT_EQ(MatchRoute("/Patient/$export").level, ExportLevel::kPatient);
  Route group = MatchRoute("/Group/aco-7.1/$export");
  EXPECT_EQ(group.kind, Route::kExportKickoff);
  EXPECT_EQ(group.level, ExportLevel::kGroup);
  EXPECT_EQ(group.group_id, "aco-7.1");
  Route status = MatchRoute("/$export-status/0a1b");
  EXPECT_EQ(status.kind, Route::kExportStatus);
  EXPECT_EQ(status.job_id, "0a1b");
  for (const char* path :
       {"/Group//$export", "/Group/a b/$export", "/Group/a/b/$export", "/$export-status/",
        "/$export-status/a/b", "/Patient/1/$export", "/$exports", "/Group/$export"}) {
    EXPECT_EQ(MatchRoute(path).kind, Route::kNotFound) << path;
  }
  EXPECT_EQ(StatusPath("abc"), "/$export-status/abc");
}

TEST(ResourceTypesTest, FhirIds) {
  EXPECT_TRUE(IsValidFhirId("a-B.9"));
  EXPECT_TRUE(IsValidFhirId(std::string(64, 'a')));
  EXPECT_FALSE(IsValidFhirId(std::string(65, 'a')));
  EXPECT_FALSE(IsValidFhirId(""));
  EXPECT_FALSE(IsValidFhirId("a/b"));
  EXPECT_FALSE(IsValidFhirId("a_b"));
}

}  // namespace fhirbulk
