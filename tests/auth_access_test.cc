// Access control of the export API by scopes (server/access.h) and of file downloads
// (server/file_access.h) with a real export directory, real key files and real tokens.

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "auth/access_token.h"
#include "auth/key_ring.h"
#include "auth/scopes.h"
#include "auth/signed_url.h"
#include "export/job_dir.h"
#include "fhir/resource_types.h"
#include "server/access.h"
#include "server/file_access.h"
#include "worker/planner.h"

namespace fhirbulk {
namespace {

namespace fs = std::filesystem;
using Types = std::vector<std::string>;

ScopeSet Scopes(const std::string& text) {
  auto s = ScopeSet::Parse(text);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : ScopeSet();
}

ExportRequest Request(ExportLevel level, Types types = {}, std::string group = "") {
  ExportRequest r;
  r.level = level;
  r.types = std::move(types);
  r.group_id = std::move(group);
  return r;
}

// "OK" or the PermissionDenied message.
std::string Kickoff(const std::string& scopes, ExportRequest* r, bool narrow = true) {
  Status s = AuthorizeKickoff(Scopes(scopes), r, narrow);
  if (s.ok()) return "OK";
  EXPECT_EQ(s.code(), Status::Code::kPermissionDenied) << s.ToString();
  return s.message();
}

// ---- AuthorizeKickoff -----------------------------------------------------------------------

TEST(AuthKickoffTest, ReadAllNeedsNoNarrowing) {
  for (ExportLevel level : {ExportLevel::kSystem, ExportLevel::kPatient, ExportLevel::kGroup}) {
    ExportRequest r = Request(level);
    EXPECT_EQ(Kickoff("system/*.r", &r), "OK");
    EXPECT_TRUE(r.types.empty());
    EXPECT_EQ(Kickoff("system/*.read", &r), "OK");
    EXPECT_TRUE(r.types.empty());
  }
}

TEST(AuthKickoffTest, SystemLevelNarrowsToReadableTypes) {
  ExportRequest r = Request(ExportLevel::kSystem);
  EXPECT_EQ(
      Kickoff("system/Patient.rs system/Observation.r system/Condition.s system/Group.read", &r),
      "OK");
  // In R4ResourceTypes order; Group is a system-level type; "s" alone is not reading.
  EXPECT_EQ(r.types, (Types{"Group", "Observation", "Patient"}));

  ExportRequest lib = Request(ExportLevel::kSystem);
  EXPECT_EQ(Kickoff("system/Library.r system/Parameters.r", &lib), "OK");
  EXPECT_EQ(lib.types, (Types{"Library", "Parameters"}));
}

TEST(AuthKickoffTest, PatientLevelDefaults) {
  ExportRequest r = Request(ExportLevel::kPatient);
  EXPECT_EQ(Kickoff("system/Patient.r system/Observation.r system/Group.r system/Organization.r "
                    "system/Practitioner.rs system/Library.r system/Condition.s",
                    &r),
            "OK");
  // Group is excluded by default; Organization and Practitioner are supporting types; Library
  // is neither compartment nor supporting.
  EXPECT_EQ(r.types, (Types{"Observation", "Organization", "Patient", "Practitioner"}));
}

TEST(AuthKickoffTest, PatientLevelNeedsPatient) {
  ExportRequest r = Request(ExportLevel::kPatient);
  EXPECT_EQ(Kickoff("system/Observation.r system/Patient.s", &r),
            "a Patient-level export needs read access to Patient");
  EXPECT_TRUE(r.types.empty());
  ExportRequest typed = Request(ExportLevel::kPatient, {"Observation"});
  EXPECT_EQ(Kickoff("system/Observation.r", &typed),
            "a Patient-level export needs read access to Patient");
}

TEST(AuthKickoffTest, GroupAtPatientLevelOnlyWhenAsked) {
  ExportRequest r = Request(ExportLevel::kPatient, {"Group", "Patient"});
  EXPECT_EQ(Kickoff("system/Patient.r system/Group.r", &r), "OK");
  EXPECT_EQ(r.types, (Types{"Group", "Patient"}));
  ExportRequest only_group = Request(ExportLevel::kPatient);
  EXPECT_EQ(Kickoff("system/Patient.r system/Group.r", &only_group), "OK");
  EXPECT_EQ(only_group.types, (Types{"Patient"}));
}

TEST(AuthKickoffTest, GroupLevel) {
  ExportRequest r = Request(ExportLevel::kGroup, {}, "g1");
  EXPECT_EQ(Kickoff("system/Patient.r system/Group.r system/Location.r system/Encounter.r", &r),
            "OK");
  EXPECT_EQ(r.types, (Types{"Encounter", "Location", "Patient"}));

  ExportRequest no_group = Request(ExportLevel::kGroup, {}, "g1");
  EXPECT_EQ(Kickoff("system/Patient.r", &no_group),
            "a Group-level export needs read access to Group");
  ExportRequest search_only = Request(ExportLevel::kGroup, {"Patient"}, "g1");
  EXPECT_EQ(Kickoff("system/Patient.r system/Group.s", &search_only),
            "a Group-level export needs read access to Group");
  // Group readable but nothing the export would contain by default.
  ExportRequest just_group = Request(ExportLevel::kGroup, {}, "g1");
  EXPECT_EQ(Kickoff("system/Group.r", &just_group),
            "the access token allows reading none of the exported types");
  EXPECT_TRUE(just_group.types.empty());
}

TEST(AuthKickoffTest, ExplicitTypesMustAllBeReadable) {
  ExportRequest ok = Request(ExportLevel::kSystem, {"Patient", "Observation"});
  EXPECT_EQ(Kickoff("system/Patient.r system/Observation.rs", &ok), "OK");
  EXPECT_EQ(ok.types, (Types{"Patient", "Observation"}));  // untouched

  ExportRequest r = Request(ExportLevel::kSystem, {"Patient", "Observation", "Condition"});
  EXPECT_EQ(Kickoff("system/Patient.r system/Condition.s", &r),
            "_type: the access token does not allow reading Observation, Condition");
  EXPECT_EQ(r.types, (Types{"Patient", "Observation", "Condition"}));

  Types many;
  for (std::string_view t : R4ResourceTypes()) {
    if (many.size() == 12) break;
    many.emplace_back(t);
  }
  ExportRequest lots = Request(ExportLevel::kSystem, many);
  std::string msg = Kickoff("system/Patient.r", &lots);
  EXPECT_EQ(
      msg.rfind("_type: the access token does not allow reading " + many[0] + ", " + many[1] + ", ",
                0),
      0u)
      << msg;
  EXPECT_EQ(msg.substr(msg.size() - 5), ", ...") << msg;
  EXPECT_EQ(msg.find(many[10]), std::string::npos) << msg;  // only the first ten named
}

TEST(AuthKickoffTest, NothingReadable) {
  ExportRequest r = Request(ExportLevel::kSystem);
  EXPECT_EQ(Kickoff("system/*.s", &r),
            "the access token allows reading none of the exported types");
  EXPECT_TRUE(r.types.empty());
  ExportRequest empty = Request(ExportLevel::kSystem);
  EXPECT_EQ(Kickoff("", &empty), "the access token allows reading none of the exported types");
}

TEST(AuthKickoffTest, NarrowFalseChecksWithoutChanging) {
  ExportRequest all = Request(ExportLevel::kSystem);
  EXPECT_EQ(Kickoff("system/Patient.r", &all, false),
            "this export covers every type; the access token does not");
  EXPECT_TRUE(all.types.empty());
  EXPECT_EQ(Kickoff("system/*.r", &all, false), "OK");
  ExportRequest typed = Request(ExportLevel::kSystem, {"Patient"});
  EXPECT_EQ(Kickoff("system/Patient.r", &typed, false), "OK");
  EXPECT_EQ(Kickoff("system/Observation.r", &typed, false),
            "_type: the access token does not allow reading Patient");
  ExportRequest group = Request(ExportLevel::kGroup, {"Patient"}, "g");
  EXPECT_EQ(Kickoff("system/Patient.r", &group, false),
            "a Group-level export needs read access to Group");
}

// ---- AuthorizeGroupPolicy -------------------------------------------------------------------

TEST(AuthGroupPolicyTest, RestrictedClients) {
  Types allowed = {"g1", "g2"};
  EXPECT_TRUE(AuthorizeGroupPolicy(false, {}, Request(ExportLevel::kSystem)).ok());
  EXPECT_TRUE(AuthorizeGroupPolicy(false, {}, Request(ExportLevel::kGroup, {}, "any")).ok());
  EXPECT_TRUE(AuthorizeGroupPolicy(true, allowed, Request(ExportLevel::kGroup, {}, "g2")).ok());
  Status sys = AuthorizeGroupPolicy(true, allowed, Request(ExportLevel::kSystem));
  EXPECT_EQ(sys.code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(sys.message(), "this client may only export its Groups (Group/[id]/$export)");
  Status pat = AuthorizeGroupPolicy(true, allowed, Request(ExportLevel::kPatient));
  EXPECT_EQ(pat.message(), "this client may only export its Groups (Group/[id]/$export)");
  Status other = AuthorizeGroupPolicy(true, allowed, Request(ExportLevel::kGroup, {}, "g3"));
  EXPECT_EQ(other.code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(other.message(), "this client may not export Group/g3");
  // Restricted to no Group at all: nothing.
  EXPECT_FALSE(AuthorizeGroupPolicy(true, {}, Request(ExportLevel::kGroup, {}, "g1")).ok());
  // Exact match only.
  EXPECT_FALSE(AuthorizeGroupPolicy(true, allowed, Request(ExportLevel::kGroup, {}, "G1")).ok());
  EXPECT_FALSE(AuthorizeGroupPolicy(true, allowed, Request(ExportLevel::kGroup, {}, "g")).ok());
}

// ---- AuthorizeFileDownload ------------------------------------------------------------------

TEST(AuthFileDownloadTest, ByFileType) {
  ScopeSet s = Scopes("system/Patient.r system/Observation.s");
  EXPECT_TRUE(AuthorizeFileDownload(s, "Patient.1.1.ndjson").ok());
  EXPECT_TRUE(AuthorizeFileDownload(s, "Patient.12.345.ndjson.gz").ok());
  Status obs = AuthorizeFileDownload(s, "Observation.1.1.ndjson");
  EXPECT_EQ(obs.code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(obs.message(), "the access token does not allow reading Observation");
  // Deleted and error files belong to the job.
  EXPECT_TRUE(AuthorizeFileDownload(ScopeSet(), "Bundle.1.1.ndjson").ok());
  EXPECT_TRUE(AuthorizeFileDownload(ScopeSet(), "OperationOutcome.3.1.ndjson").ok());
  for (const char* bad :
       {"Patient.ndjson", ".owner", "Patient.1.1.ndjson.tmp.w1", "Patient.1.1.ndjson.gz.tmp.w1",
        "Patient.1.1.json", "Patient.a.1.ndjson", "", "manifest.json"}) {
    Status st = AuthorizeFileDownload(Scopes("system/*.r"), bad);
    EXPECT_EQ(st.code(), Status::Code::kNotFound) << bad;
    EXPECT_EQ(st.message(), "no such export file") << bad;
  }
}

// ---- FileAccess -----------------------------------------------------------------------------

const std::string kJob = "0b6f9c3e-8a51-4d7e-9a2b-0c1f5e8d2a77";
const std::string kOtherJob = "11111111-2222-3333-4444-555555555555";
const std::string kTokenKeys = "t1 " + std::string(40, 't') + "\n";
const std::string kUrlKeys = "u1 " + std::string(40, 'u') + "\n";

int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

std::string Header(const HttpResponse& r, const std::string& name) {
  for (const auto& h : r.headers) {
    if (h.first == name) return h.second;
  }
  return "<none>";
}

std::string Diagnostics(const HttpResponse& r) {
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  if (!d.IsObject() || !d.HasMember("issue")) return "<not an OperationOutcome: " + r.body + ">";
  return d["issue"][0]["diagnostics"].GetString();
}

class AuthFileAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fhirbulk_fileaccess_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ + "/export/" + kJob);
    fs::create_directories(dir_ + "/export/" + kOtherJob);  // no owner file
    Write(dir_ + "/export/" + kJob + "/" + std::string(kJobOwnerFile), "client-1");
    Write(dir_ + "/token.keys", kTokenKeys);
    Write(dir_ + "/url.keys", kUrlKeys);
    token_ring_ = KeyRing::Parse(kTokenKeys).value();
    url_ring_ = KeyRing::Parse(kUrlKeys).value();
  }
  void TearDown() override { fs::remove_all(dir_); }

  static void Write(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
  }

  std::unique_ptr<FileAccess> Make(bool auth, bool token_keys, bool url_keys) {
    FileAccessOptions o;
    o.auth_enabled = auth;
    if (token_keys) o.token_key_file = dir_ + "/token.keys";
    if (url_keys) o.signed_url_key_file = dir_ + "/url.keys";
    o.export_dir = dir_ + "/export";
    auto fa = FileAccess::Create(o);
    EXPECT_TRUE(fa.ok()) << fa.status().ToString();
    return fa.ok() ? std::move(fa).value() : nullptr;
  }

  std::string Bearer(const std::string& client, const std::string& scopes, int64_t issued = 0) {
    return "Bearer " +
           IssueAccessToken(token_ring_, client, Scopes(scopes), issued ? issued : Now(), 300);
  }

  struct Outcome {
    bool allowed = false;
    std::string client;
    HttpResponse denial;
  };
  static Outcome Ask(const FileAccess& fa, const std::string& job, const std::string& file,
                     const std::string& authorization, const std::string& query = "") {
    Outcome o;
    o.client = "<unset>";
    o.allowed = fa.Authorize(job, file, authorization, query, &o.client, &o.denial);
    return o;
  }

  std::string dir_;
  KeyRing token_ring_, url_ring_;
};

TEST_F(AuthFileAccessTest, OwnerWithScopeMayDownload) {
  auto fa = Make(true, true, false);
  ASSERT_NE(fa, nullptr);
  Outcome o = Ask(*fa, kJob, "Patient.1.1.ndjson", Bearer("client-1", "system/Patient.r"));
  EXPECT_TRUE(o.allowed) << o.denial.body;
  EXPECT_EQ(o.client, "client-1");
  // Job-wide files need no type scope.
  EXPECT_TRUE(Ask(*fa, kJob, "OperationOutcome.1.1.ndjson", Bearer("client-1", "system/Patient.r"))
                  .allowed);
}

// A download honours fhir_bulk_token_lifetime like the API routes: a token minted (with the
// real key) for longer than the configured lifetime is refused, one within it is accepted.
TEST_F(AuthFileAccessTest, TokenLongerThanTheConfiguredLifetimeIsRefused) {
  FileAccessOptions options;
  options.auth_enabled = true;
  options.token_key_file = dir_ + "/token.keys";
  options.export_dir = dir_ + "/export";
  options.token_lifetime_seconds = 60;
  auto fa = FileAccess::Create(options);
  ASSERT_TRUE(fa.ok()) << fa.status().ToString();
  const std::string file = "Patient.1.1.ndjson";
  auto bearer = [&](int lifetime) {
    return "Bearer " +
           IssueAccessToken(token_ring_, "client-1", Scopes("system/Patient.r"), Now(), lifetime);
  };
  EXPECT_TRUE(Ask(**fa, kJob, file, bearer(60)).allowed);
  Outcome o = Ask(**fa, kJob, file, bearer(300));
  EXPECT_FALSE(o.allowed);
  EXPECT_EQ(o.denial.status, 401);
}

TEST_F(AuthFileAccessTest, AnotherClientsFileDoesNotExist) {
  auto fa = Make(true, true, false);
  ASSERT_NE(fa, nullptr);
  Outcome o = Ask(*fa, kJob, "Patient.1.1.ndjson", Bearer("client-2", "system/*.rs"));
  EXPECT_FALSE(o.allowed);
  EXPECT_EQ(o.client, "client-2");
  EXPECT_EQ(o.denial.status, 404);
  EXPECT_EQ(Diagnostics(o.denial), "no such export file (it may have expired or been cancelled)");
  // A prefix of the owner is not the owner.
  EXPECT_EQ(Ask(*fa, kJob, "Patient.1.1.ndjson", Bearer("client-", "system/*.rs")).denial.status,
            404);
  // A job without an owner file (or no job at all).
  EXPECT_EQ(
      Ask(*fa, kOtherJob, "Patient.1.1.ndjson", Bearer("client-1", "system/*.rs")).denial.status,
      404);
  EXPECT_EQ(Ask(*fa, "22222222-2222-3333-4444-555555555555", "Patient.1.1.ndjson",
                Bearer("client-1", "system/*.rs"))
                .denial.status,
            404);
}

// The owner is read once per process (it never changes); a job whose owner file is not there
// yet is looked at again on the next request.
TEST_F(AuthFileAccessTest, OwnerIsReadOnceAndAbsenceIsNotRemembered) {
  auto fa = Make(true, true, false);
  ASSERT_NE(fa, nullptr);
  const std::string owner_file = dir_ + "/export/" + kJob + "/" + std::string(kJobOwnerFile);
  ASSERT_TRUE(Ask(*fa, kJob, "Patient.1.1.ndjson", Bearer("client-1", "system/*.rs")).allowed);
  fs::remove(owner_file);
  EXPECT_TRUE(Ask(*fa, kJob, "Patient.1.1.ndjson", Bearer("client-1", "system/*.rs")).allowed);
  EXPECT_EQ(Ask(*fa, kJob, "Patient.1.1.ndjson", Bearer("client-2", "system/*.rs")).denial.status,
            404);

  const std::string other_owner = dir_ + "/export/" + kOtherJob + "/" + std::string(kJobOwnerFile);
  EXPECT_EQ(
      Ask(*fa, kOtherJob, "Patient.1.1.ndjson", Bearer("client-2", "system/*.rs")).denial.status,
      404);
  Write(other_owner, "client-2");  // planned meanwhile
  EXPECT_TRUE(Ask(*fa, kOtherJob, "Patient.1.1.ndjson", Bearer("client-2", "system/*.rs")).allowed);
}

// Verified tokens are remembered (auth/token_cache.h), owners and scopes are not: after the
// owner's downloads warmed the cache, another client's token, the owner's token for another
// job, and a token with fewer scopes are decided as before.
TEST_F(AuthFileAccessTest, WarmTokenCacheDecidesOwnerAndScopesPerRequest) {
  auto fa = Make(true, true, false);
  ASSERT_NE(fa, nullptr);
  const std::string owner = Bearer("client-1", "system/Patient.rs");
  for (int i = 0; i < 3; i++) {
    ASSERT_TRUE(Ask(*fa, kJob, "Patient.1.1.ndjson", owner).allowed);
  }
  const std::string other = Bearer("client-2", "system/*.rs");
  for (int i = 0; i < 2; i++) {
    EXPECT_EQ(Ask(*fa, kJob, "Patient.1.1.ndjson", other).denial.status, 404);
    EXPECT_EQ(Ask(*fa, kOtherJob, "Patient.1.1.ndjson", owner).denial.status, 404);
    EXPECT_EQ(Ask(*fa, kJob, "Observation.1.1.ndjson", owner).denial.status, 403);
  }
  // A changed byte in the remembered token is a new token, and a bad one.
  std::string tampered = owner;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(Ask(*fa, kJob, "Patient.1.1.ndjson", tampered).denial.status, 401);
  // An expired token is refused (the cache checks exp on every hit).
  EXPECT_EQ(
      Ask(*fa, kJob, "Patient.1.1.ndjson", Bearer("client-1", "system/Patient.rs", Now() - 301))
          .denial.status,
      401);
}

// A token whose subject is empty must not match a job that has no owner file.
TEST_F(AuthFileAccessTest, EmptySubjectNeverOwnsAJob) {
  auto fa = Make(true, true, false);
  ASSERT_NE(fa, nullptr);
  Outcome o = Ask(*fa, kOtherJob, "Patient.1.1.ndjson", Bearer("", "system/*.rs"));
  EXPECT_FALSE(o.allowed);
  EXPECT_EQ(o.denial.status, 404);
}

TEST_F(AuthFileAccessTest, ScopeDecidesByType) {
  auto fa = Make(true, true, false);
  ASSERT_NE(fa, nullptr);
  Outcome o = Ask(*fa, kJob, "Observation.1.1.ndjson", Bearer("client-1", "system/Patient.rs"));
  EXPECT_FALSE(o.allowed);
  EXPECT_EQ(o.client, "client-1");
  EXPECT_EQ(o.denial.status, 403);
  EXPECT_EQ(Header(o.denial, "WWW-Authenticate"),
            "Bearer realm=\"fhir-bulk\", error=\"insufficient_scope\"");
  EXPECT_EQ(Diagnostics(o.denial), "the access token does not allow reading Observation");
  // A name that is not an export file: 404, whatever the scopes.
  EXPECT_EQ(
      Ask(*fa, kJob, "Patient.1.1.ndjson.tmp.w1", Bearer("client-1", "system/*.r")).denial.status,
      404);
}

TEST_F(AuthFileAccessTest, TokenRequired) {
  auto fa = Make(true, true, false);
  ASSERT_NE(fa, nullptr);
  Outcome none = Ask(*fa, kJob, "Patient.1.1.ndjson", "");
  EXPECT_FALSE(none.allowed);
  EXPECT_EQ(none.denial.status, 401);
  EXPECT_EQ(Header(none.denial, "WWW-Authenticate"), "Bearer realm=\"fhir-bulk\"");
  EXPECT_EQ(Diagnostics(none.denial), "a bearer token is required to download export files");

  Outcome basic = Ask(*fa, kJob, "Patient.1.1.ndjson", "Basic YWJjOmRlZg==");
  EXPECT_EQ(basic.denial.status, 401);

  Outcome bad = Ask(*fa, kJob, "Patient.1.1.ndjson", "Bearer not.a.token");
  EXPECT_FALSE(bad.allowed);
  EXPECT_EQ(bad.denial.status, 401);
  EXPECT_EQ(Header(bad.denial, "WWW-Authenticate"),
            "Bearer realm=\"fhir-bulk\", error=\"invalid_token\"");

  Outcome expired =
      Ask(*fa, kJob, "Patient.1.1.ndjson", Bearer("client-1", "system/*.r", Now() - 301));
  EXPECT_EQ(expired.denial.status, 401);
  EXPECT_EQ(Diagnostics(expired.denial), "invalid access token: token expired");

  KeyRing other = KeyRing::Parse("t1 " + std::string(40, 'x')).value();
  Outcome foreign =
      Ask(*fa, kJob, "Patient.1.1.ndjson",
          "Bearer " + IssueAccessToken(other, "client-1", Scopes("system/*.r"), Now(), 300));
  EXPECT_EQ(foreign.denial.status, 401);
  EXPECT_EQ(Diagnostics(foreign.denial), "invalid access token: bad token signature");
}

TEST_F(AuthFileAccessTest, SignedUrls) {
  auto fa = Make(true, true, true);
  ASSERT_NE(fa, nullptr);
  std::string q = SignFileQuery(url_ring_, kJob, "Patient.1.1.ndjson", "client-1", Now() + 600);
  Outcome o = Ask(*fa, kJob, "Patient.1.1.ndjson", "", q);
  EXPECT_TRUE(o.allowed) << o.denial.body;
  EXPECT_EQ(o.client, "client-1");
  // The signature decides alone: a (wrong) bearer token alongside does not matter.
  EXPECT_TRUE(Ask(*fa, kJob, "Patient.1.1.ndjson", "Bearer junk", q).allowed);
  // For another file of the job: 403.
  Outcome other_file = Ask(*fa, kJob, "Patient.1.2.ndjson", "", q);
  EXPECT_FALSE(other_file.allowed);
  EXPECT_EQ(other_file.denial.status, 403);
  EXPECT_EQ(Diagnostics(other_file.denial), "signed URL does not verify");
  // Expired.
  std::string old = SignFileQuery(url_ring_, kJob, "Patient.1.1.ndjson", "client-1", Now() - 1);
  Outcome expired = Ask(*fa, kJob, "Patient.1.1.ndjson", "", old);
  EXPECT_EQ(expired.denial.status, 403);
  EXPECT_EQ(Diagnostics(expired.denial), "signed URL expired");
  // Signed with the token key instead of the URL key.
  std::string wrong_key =
      SignFileQuery(token_ring_, kJob, "Patient.1.1.ndjson", "client-1", Now() + 600);
  EXPECT_EQ(Ask(*fa, kJob, "Patient.1.1.ndjson", "", wrong_key).denial.status, 403);
  // A signature parameter with a valid bearer token: still judged by the signature.
  Outcome sig_junk =
      Ask(*fa, kJob, "Patient.1.1.ndjson", Bearer("client-1", "system/*.r"), "signature=abc");
  EXPECT_FALSE(sig_junk.allowed);
  EXPECT_EQ(sig_junk.denial.status, 403);
}

TEST_F(AuthFileAccessTest, SignedUrlsNotAcceptedWithoutUrlKey) {
  auto fa = Make(true, true, false);
  ASSERT_NE(fa, nullptr);
  std::string q = SignFileQuery(url_ring_, kJob, "Patient.1.1.ndjson", "client-1", Now() + 600);
  Outcome o = Ask(*fa, kJob, "Patient.1.1.ndjson", "", q);
  EXPECT_FALSE(o.allowed);
  EXPECT_EQ(o.denial.status, 403);
  EXPECT_EQ(Diagnostics(o.denial), "signed file URLs are not accepted here");
}

TEST_F(AuthFileAccessTest, AuthOffIsAnonymous) {
  auto fa = Make(false, false, false);
  ASSERT_NE(fa, nullptr);
  Outcome o = Ask(*fa, kJob, "Observation.1.1.ndjson", "");
  EXPECT_TRUE(o.allowed);
  EXPECT_EQ(o.client, "anonymous");
  EXPECT_TRUE(Ask(*fa, kOtherJob, "Patient.1.1.ndjson", "Bearer junk").allowed);
}

TEST_F(AuthFileAccessTest, EdgeServesSignedUrlsOnly) {
  auto fa = Make(true, false, true);
  ASSERT_NE(fa, nullptr);
  Outcome unsigned_req = Ask(*fa, kJob, "Patient.1.1.ndjson", Bearer("client-1", "system/*.r"));
  EXPECT_FALSE(unsigned_req.allowed);
  EXPECT_EQ(unsigned_req.denial.status, 401);
  EXPECT_EQ(Header(unsigned_req.denial, "WWW-Authenticate"), "Bearer realm=\"fhir-bulk\"");
  EXPECT_EQ(Diagnostics(unsigned_req.denial), "this server serves export files by signed URL only");
  EXPECT_EQ(Ask(*fa, kJob, "Patient.1.1.ndjson", "").denial.status, 401);
  std::string q = SignFileQuery(url_ring_, kJob, "Patient.1.1.ndjson", "client-1", Now() + 600);
  Outcome signed_req = Ask(*fa, kJob, "Patient.1.1.ndjson", "", q);
  EXPECT_TRUE(signed_req.allowed);
  EXPECT_EQ(signed_req.client, "client-1");
}

TEST_F(AuthFileAccessTest, CreateChecksConfiguration) {
  FileAccessOptions o;
  o.auth_enabled = true;
  o.export_dir = dir_ + "/export";
  auto none = FileAccess::Create(o);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Status::Code::kInvalidArgument);

  Write(dir_ + "/bad.keys", "k1 short\n");
  o.token_key_file = dir_ + "/bad.keys";
  auto bad = FileAccess::Create(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind("token key file: ", 0), 0u) << bad.status().message();

  o.token_key_file = dir_ + "/token.keys";
  o.signed_url_key_file = dir_ + "/missing.keys";
  auto missing = FileAccess::Create(o);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message().rfind("URL key file: ", 0), 0u)
      << missing.status().message();
}

}  // namespace
}  // namespace fhirbulk
