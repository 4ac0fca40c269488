// The export client's options, kick-off requests (IG v2.0.0 §2.3 encodings) and exit statuses.

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "client/export_client.h"
#include "client/http_client.h"

namespace fhirbulk {
namespace client {
namespace {

ExportOptions Base() {
  ExportOptions o;
  o.fhir_base = "https://ehr.example.org/fhir/";
  o.out_dir = "/tmp/x";
  return o;
}

TEST(ClientKickoffTest, GetWithEncodedParameters) {
  ExportOptions o = Base();
  EXPECT_EQ(BuildKickoff(o).url, "https://ehr.example.org/fhir/$export");
  EXPECT_EQ(BuildKickoff(o).method, "GET");
  o.level = ExportLevel::kGroup;
  o.group_id = "cohort-7";
  o.types = {"Patient", "Observation"};
  o.since = "2024-01-01T00:00:00+02:00";
  o.elements = {"id", "Patient.name"};
  o.type_filters = {"Observation?category=laboratory",
                    "Observation?category=vital-signs&date=ge2023-01-01"};
  KickoffRequest k = BuildKickoff(o);
  EXPECT_EQ(k.method, "GET");
  EXPECT_EQ(k.url,
            "https://ehr.example.org/fhir/Group/cohort-7/$export"
            "?_type=Patient,Observation&_since=2024-01-01T00%3A00%3A00%2B02%3A00"
            "&_elements=id,Patient.name"
            "&_typeFilter=Observation%3Fcategory%3Dlaboratory"
            "&_typeFilter=Observation%3Fcategory%3Dvital-signs%26date%3Dge2023-01-01");
  EXPECT_TRUE(k.body.empty());
  o.level = ExportLevel::kPatient;
  o.types.clear();
  o.since.clear();
  o.elements.clear();
  o.type_filters.clear();
  o.until = "2024-02-01T00:00:00Z";
  EXPECT_EQ(BuildKickoff(o).url,
            "https://ehr.example.org/fhir/Patient/$export?_until=2024-02-01T00%3A00%3A00Z");
}

TEST(ClientKickoffTest, PostParameters) {
  ExportOptions o = Base();
  o.level = ExportLevel::kPatient;
  o.types = {"Patient", "Condition"};
  o.since = "2024-03-01T00:00:00Z";
  o.type_filters = {"Condition?clinical-status=active"};
  o.patients = {"Patient/p-104", "Patient/p-105"};  // implies POST
  KickoffRequest k = BuildKickoff(o);
  EXPECT_EQ(k.method, "POST");
  EXPECT_EQ(k.url, "https://ehr.example.org/fhir/Patient/$export");
  rapidjson::Document d;
  d.Parse(k.body.c_str());
  ASSERT_TRUE(d.IsObject()) << k.body;
  EXPECT_STREQ(d["resourceType"].GetString(), "Parameters");
  const auto& p = d["parameter"];
  ASSERT_EQ(p.Size(), 6u) << k.body;
  EXPECT_STREQ(p[0]["name"].GetString(), "_type");
  EXPECT_STREQ(p[0]["valueString"].GetString(), "Patient");
  EXPECT_STREQ(p[1]["valueString"].GetString(), "Condition");
  EXPECT_STREQ(p[2]["name"].GetString(), "_since");
  EXPECT_STREQ(p[2]["valueInstant"].GetString(), "2024-03-01T00:00:00Z");
  EXPECT_STREQ(p[3]["name"].GetString(), "_typeFilter");
  EXPECT_STREQ(p[3]["valueString"].GetString(), "Condition?clinical-status=active");
  EXPECT_STREQ(p[4]["name"].GetString(), "patient");
  EXPECT_STREQ(p[4]["valueReference"]["reference"].GetString(), "Patient/p-104");
  EXPECT_STREQ(p[5]["valueReference"]["reference"].GetString(), "Patient/p-105");
}

TEST(ClientKickoffTest, ValidatesOptions) {
  EXPECT_TRUE(ValidateOptions(Base()).ok());
  auto bad = [](void (*change)(ExportOptions*)) {
    ExportOptions o = Base();
    change(&o);
    Status s = ValidateOptions(o);
    return !s.ok() && s.code() == Status::Code::kInvalidArgument;
  };
  EXPECT_TRUE(bad([](ExportOptions* o) { o->out_dir.clear(); }));
  EXPECT_TRUE(bad([](ExportOptions* o) { o->fhir_base = "ehr.example.org/fhir"; }));
  EXPECT_TRUE(bad([](ExportOptions* o) { o->level = ExportLevel::kGroup; }));
  EXPECT_TRUE(bad([](ExportOptions* o) {
    o->level = ExportLevel::kGroup;
    o->group_id = "a/b";
  }));
  EXPECT_TRUE(bad([](ExportOptions* o) { o->types = {"patient"}; }));
  EXPECT_TRUE(bad([](ExportOptions* o) { o->since = "2024-01-01"; }));
  EXPECT_TRUE(bad([](ExportOptions* o) { o->until = "tomorrow"; }));
  EXPECT_TRUE(bad([](ExportOptions* o) { o->type_filters = {"category=laboratory"}; }));
  EXPECT_TRUE(bad([](ExportOptions* o) { o->patients = {"p-104"}; }));
  EXPECT_TRUE(bad([](ExportOptions* o) { o->parallel = 0; }));
  EXPECT_TRUE(bad([](ExportOptions* o) { o->client_id = "c"; }));
  EXPECT_TRUE(bad([](ExportOptions* o) { o->key_file = "k.pem"; }));
  EXPECT_TRUE(bad([](ExportOptions* o) { o->status_url = "not a url"; }));
  // resuming needs no base URL, unless the token endpoint must be discovered from it
  ExportOptions resume = Base();
  resume.fhir_base.clear();
  resume.status_url = "https://ehr.example.org/fhir/$export-status/1";
  EXPECT_TRUE(ValidateOptions(resume).ok());
  resume.client_id = "c";
  resume.key_file = "k.pem";
  EXPECT_FALSE(ValidateOptions(resume).ok());
  resume.token_url = "https://ehr.example.org/auth/token";
  EXPECT_TRUE(ValidateOptions(resume).ok());
}

TEST(ClientKickoffTest, ExitStatuses) {
  EXPECT_EQ(ExitCodeFor(Status::OK()), 0);
  EXPECT_EQ(ExitCodeFor(Status::IOError("disk full")), 1);
  EXPECT_EQ(ExitCodeFor(Status::InvalidArgument("bad flag")), 2);
  EXPECT_EQ(ExitCodeFor(Status::Unauthenticated("invalid_client")), 3);
  EXPECT_EQ(ExitCodeFor(Status::PermissionDenied("scope")), 3);
  EXPECT_EQ(ExitCodeFor(Status::Unavailable("503")), 4);
  EXPECT_EQ(ExitCodeFor(Status::NotFound("404")), 4);
  EXPECT_EQ(ExitCodeFor(Status::NotSupported("400")), 4);
  EXPECT_EQ(ExitCodeFor(Status::Corruption("bad line")), 5);
  EXPECT_EQ(ExitCodeFor(Status::Aborted("Ctrl-C")), 130);
}

TEST(ClientKickoffTest, Urls) {
  EXPECT_EQ(PercentEncode("a-b_c.d~e f/g?h=i&j,k+l%"), "a-b_c.d~e%20f%2Fg%3Fh%3Di%26j%2Ck%2Bl%25");
  EXPECT_TRUE(IsHttpUrl("https://h/x"));
  EXPECT_TRUE(IsHttpUrl("http://127.0.0.1:8080"));
  EXPECT_FALSE(IsHttpUrl("https:///x"));
  EXPECT_FALSE(IsHttpUrl("file:///etc/passwd"));
  EXPECT_FALSE(IsHttpUrl("/fhir/$export-status/1"));
  EXPECT_EQ(*ResolveUrl("https://h/fhir/$export?_type=A", "/fhir/$export-status/1"),
            "https://h/fhir/$export-status/1");
  EXPECT_EQ(*ResolveUrl("https://h/fhir/$export", "$export-status/1"),
            "https://h/fhir/$export-status/1");
  EXPECT_EQ(*ResolveUrl("https://h/fhir/$export", "https://other/s/1"), "https://other/s/1");
}

}  // namespace
}  // namespace client
}  // namespace fhirbulk
