#include "server/server.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <stdlib.h>
#include <unistd.h>

#include <type_traits>

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
  o.auth_enabled = false;
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
  o.auth_enabled = false;
  auto root = Server::Create(o);
  ASSERT_TRUE(root.ok());
  EXPECT_EQ((*root)->base_path(), "");
}

TEST(ServerTest, MetadataIsACapabilityStatement) {
  auto s = MakeServer("");
  HttpResponse r;
  ASSERT_EQ(s->HandleFast(Get("/metadata"), &r), nullptr);
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
  ASSERT_EQ(s->HandleFast(req, &r), nullptr);
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(Header(r, "Allow"), "GET, HEAD");
}

TEST(ServerTest, UnknownRoutesAre404Outcomes) {
  auto s = MakeServer("");
  for (const char* path : {"", "/", "/nope", "/metadata/x", "/Patient"}) {
    HttpResponse r;
    ASSERT_EQ(s->HandleFast(Get(path), &r), nullptr) << path;
    EXPECT_EQ(r.status, 404) << path;
    auto d = Parse(r.body);
    EXPECT_STREQ(d["resourceType"].GetString(), "OperationOutcome");
    EXPECT_STREQ(d["issue"][0]["code"].GetString(), "not-found");
  }
}

TEST(ServerTest, HealthNeedsTheDatabase) {
  auto s = MakeServer("host=127.0.0.1 port=1 dbname=x connect_timeout=2");
  HttpResponse fast;
  auto pending = s->HandleFast(Get("/_health"), &fast);
  ASSERT_NE(pending, nullptr);
  EXPECT_EQ(pending->kind, PendingRequest::Kind::kHealth);
  HttpResponse r;
  s->Continue(*pending, &r);
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
  HttpResponse fast;
  auto pending = s->HandleFast(Get("/_health"), &fast);
  ASSERT_NE(pending, nullptr);
  HttpResponse r;
  s->Continue(*pending, &r);
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
  // Refusals of a request's form have their own codes: no status is chosen from a message.
  EXPECT_EQ(HttpStatusFor(Status::NotAcceptable("Accept: 'text/csv' ...")), 406);
  EXPECT_EQ(HttpStatusFor(Status::TooLarge("body: too large")), 413);
  EXPECT_EQ(HttpStatusFor(Status::UriTooLong("query: too large")), 414);
  EXPECT_EQ(HttpStatusFor(Status::InvalidArgument("Accept: anything")), 400);
}

TEST(OutcomeTest, OneChallengeOneRealm) {
  HttpResponse none = CredentialsRequiredResponse("a bearer token is required");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(Header(none, "WWW-Authenticate"), "Bearer realm=\"fhir-bulk\"");
  HttpResponse bad = StatusResponse(Status::Unauthenticated("invalid access token: expired"), 5);
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(Header(bad, "WWW-Authenticate"), "Bearer realm=\"fhir-bulk\", error=\"invalid_token\"");
  EXPECT_NE(bad.body.find("expired"), std::string::npos);
  HttpResponse scope = StatusResponse(Status::PermissionDenied("no Patient"), 5);
  EXPECT_EQ(scope.status, 403);
  EXPECT_EQ(Header(scope, "WWW-Authenticate"),
            "Bearer realm=\"fhir-bulk\", error=\"insufficient_scope\"");
  EXPECT_EQ(Header(StatusResponse(Status::NotFound("x"), 5), "WWW-Authenticate"), "");
}

TEST(ServerTest, DefaultsAreTheModulesDefaults) {
  // One definition (fhirbulk/defaults.h): the C++ defaults are nginx's, authorization on.
  ServerOptions o;
  EXPECT_TRUE(o.auth_enabled);
  EXPECT_EQ(o.retry_after_unavailable, FHIRBULK_DEFAULT_RETRY_AFTER);
  EXPECT_EQ(o.max_active_exports_per_client, FHIRBULK_DEFAULT_MAX_ACTIVE_EXPORTS);
  EXPECT_EQ(o.min_poll_interval_ms, FHIRBULK_DEFAULT_MIN_POLL_INTERVAL_MS);
  o.base_url = "http://h/fhir";
  auto s = Server::Create(o);
  ASSERT_FALSE(s.ok()) << "authorization on by default needs a token key file";
  EXPECT_NE(s.status().message().find("fhir_bulk_token_key_file"), std::string::npos);
}

// The blocking half takes the fast half's result and nothing else: it has no way to see the
// raw request, so it cannot route, authenticate or parse it again.
// (The last parameter, the metric tag, is optional for callers; a member pointer names it.)
static_assert(!std::is_invocable_v<decltype(&Server::Continue), const Server&, const HttpRequest&,
                                   HttpResponse*, fhirbulk_metric_tag_t*>);
static_assert(std::is_invocable_v<decltype(&Server::Continue), const Server&, const PendingRequest&,
                                  HttpResponse*, fhirbulk_metric_tag_t*>);
static_assert(std::is_same_v<decltype(&fhirbulk_pending_run),
                             void (*)(const fhirbulk_pending_t*, fhirbulk_response_t*)>);

TEST(ServerTest, FastHalfHandsOverTheParsedKickoff) {
  ServerOptions o;
  o.base_url = "https://ehr.example.org/fhir";
  o.auth_enabled = false;
  o.export_dir = "/nonexistent-export-dir";
  auto s = Server::Create(o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  // The raw request lives in buffers the caller reuses once the fast half returns (nginx's
  // request pool, here strings that are overwritten).
  std::string path = "/Group/g1/$export";
  std::string query = "_type=Patient,Observation&_since=2020-01-01T00:00:00Z";
  std::string accept = "application/fhir+json";
  std::string prefer = "respond-async";
  std::string addr = "192.0.2.7";
  HttpRequest req;
  req.method = HttpMethod::kGet;
  req.path = path;
  req.query = query;
  req.accept = accept;
  req.prefer = prefer;
  req.remote_addr = addr;
  HttpResponse r;
  std::unique_ptr<PendingRequest> pending = (*s)->HandleFast(req, &r);
  ASSERT_NE(pending, nullptr) << r.status << " " << r.body;
  for (std::string* buf : {&path, &query, &accept, &prefer, &addr}) buf->assign(buf->size(), 'x');
  EXPECT_EQ(pending->kind, PendingRequest::Kind::kKickoff);
  EXPECT_EQ(pending->principal.client_id, "anonymous");
  EXPECT_EQ(pending->export_request.level, ExportLevel::kGroup);
  EXPECT_EQ(pending->export_request.group_id, "g1");
  EXPECT_EQ(pending->export_request.types, (std::vector<std::string>{"Patient", "Observation"}));
  EXPECT_TRUE(pending->export_request.since_us.has_value());
  EXPECT_EQ(pending->target, "/Group/g1/$export");
  EXPECT_EQ(pending->remote_addr, "192.0.2.7");

  // A status poll carries the job id and the caller; a bad kick-off never gets a pending.
  HttpRequest poll = Get("/$export-status/0f8fad5b-d9cb-469f-a165-70867728950e");
  pending = (*s)->HandleFast(poll, &r);
  ASSERT_NE(pending, nullptr);
  EXPECT_EQ(pending->kind, PendingRequest::Kind::kStatus);
  EXPECT_EQ(pending->job_id, "0f8fad5b-d9cb-469f-a165-70867728950e");
  poll.method = HttpMethod::kDelete;
  pending = (*s)->HandleFast(poll, &r);
  ASSERT_NE(pending, nullptr);
  EXPECT_EQ(pending->kind, PendingRequest::Kind::kCancel);
  HttpRequest bad = req;
  std::string csv = "text/csv";
  std::string good_path = "/$export";
  bad.path = good_path;
  bad.query = "";
  bad.accept = csv;
  bad.prefer = "respond-async";
  EXPECT_EQ((*s)->HandleFast(bad, &r), nullptr);
  EXPECT_EQ(r.status, 406);
}

TEST(ServerDbTest, BlockingHalfCreatesTheJobFromThePendingRequest) {
  FHIRBULK_REQUIRE_TEST_DB();
  TestSchema schema;
  ASSERT_TRUE(schema.Enter("server_test").ok());
  auto conn = ConnectTestDb();
  ASSERT_NE(conn, nullptr);
  char dir[] = "/tmp/fhirbulk-server-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  ServerOptions o;
  o.base_url = "https://ehr.example.org/fhir";
  // Its own conninfo: the server's per-thread connection of an earlier test is in another
  // schema.
  o.conninfo = TestConninfo() + " application_name=server_test_pending";
  o.auth_enabled = false;
  o.export_dir = dir;
  o.min_free_bytes = 0;
  o.min_free_percent = 0;
  auto s = Server::Create(o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  HttpRequest req;
  req.method = HttpMethod::kGet;
  req.path = "/$export";
  req.query = "_type=Patient";
  req.accept = "application/fhir+json";
  req.prefer = "respond-async";
  HttpResponse r;
  auto pending = (*s)->HandleFast(req, &r);
  ASSERT_NE(pending, nullptr) << r.body;
  // Were the blocking half to parse the raw request again, the job would export Patient.
  pending->export_request.types = {"Condition"};
  (*s)->Continue(*pending, &r);
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string location = Header(r, "Content-Location");
  const std::string job_id = location.substr(location.rfind('/') + 1);
  auto job = GetJob(conn.get(), job_id, "anonymous");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  auto stored = ExportRequestFromJson(job->request_json);
  ASSERT_TRUE(stored.ok()) << job->request_json;
  EXPECT_EQ(stored->types, (std::vector<std::string>{"Condition"}));
  conn.reset();
  schema.Leave();
  rmdir(dir);
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
  fhirbulk_pending_t* pending = nullptr;
  ASSERT_EQ(fhirbulk_handle_fast(s, &req, &resp, &pending), FHIRBULK_DONE);
  EXPECT_EQ(pending, nullptr);
  EXPECT_EQ(resp.status, 200);
  EXPECT_STREQ(resp.content_type, "application/fhir+json");
  EXPECT_GT(resp.body_len, 100u);
  fhirbulk_response_free(&resp);
  EXPECT_EQ(resp.body, nullptr);

  // A request that needs the database comes back as a pending object; freeing it unrun is
  // what the module does for a client that went away.
  req.path = {"/_health", 8};
  ASSERT_EQ(fhirbulk_handle_fast(s, &req, &resp, &pending), FHIRBULK_NEEDS_BLOCKING);
  ASSERT_NE(pending, nullptr);
  EXPECT_EQ(resp.body, nullptr);
  fhirbulk_pending_free(pending);
  fhirbulk_pending_free(nullptr);

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

TEST(CApiTest, FilePathsUseTheCoresGrammar) {
  auto split = [](std::string rel) -> std::string {
    fhirbulk_str_t job = {}, file = {};
    if (!fhirbulk_files_split_path({rel.data(), rel.size()}, &job, &file)) return "refused";
    return std::string(job.data, job.len) + " | " + std::string(file.data, file.len);
  };
  const std::string id = "0f8fad5b-d9cb-469f-a165-70867728950e";
  EXPECT_EQ(split(id + "/Patient.1.2.ndjson"), id + " | Patient.1.2.ndjson");
  EXPECT_EQ(split(id + "/OperationOutcome.0.0.ndjson"), id + " | OperationOutcome.0.0.ndjson");
  for (const std::string& rel :
       {id, id + "/", id + "/Patient.ndjson", id + "/x.ndjson", id + "/Patient.1.2.ndjson.gz",
        id + "/Patient.1.2.ndjson.tmp.w1", id + "/.owner", id + "/Pa-tient.1.2.ndjson",
        id + "/a/b.1.2.ndjson", id + "/../x.1.2.ndjson", id + "/Patient.1.2.ndjsonx",
        id.substr(1) + "/Patient.1.2.ndjson",
        std::string("0F8FAD5B-D9CB-469F-A165-70867728950E/P.1.2.ndjson"),
        id + "/" + std::string(200, 'A') + ".1.2.ndjson", std::string("")}) {
    EXPECT_EQ(split(rel), "refused") << rel;
  }
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
