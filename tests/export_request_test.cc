#include "export/export_request.h"

#include <gtest/gtest.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <limits>
#include <string>
#include <vector>

#include "http/outcome.h"
#include "http/query_string.h"
#include "util/fhir_time.h"

namespace fhirbulk {
namespace {

constexpr const char* kBase = "https://ehr.example.org/fhir";

int64_t Instant(const char* text) {
  Result<int64_t> t = ParseInstant(text);
  EXPECT_TRUE(t.ok()) << text;
  return t.ok() ? *t : 0;
}

ExportParseOptions Options() {
  ExportParseOptions o;
  o.base_url = kBase;
  o.now_us = Instant("2024-06-01T12:00:00Z");
  return o;
}

// Owns the strings an HttpRequest views.
struct Req {
  HttpMethod method = HttpMethod::kGet;
  std::string path = "/$export";
  std::string query;
  std::string accept = "application/fhir+json";
  std::string prefer = "respond-async";
  std::string content_type;
  std::string body;

  HttpRequest View() const {
    HttpRequest r;
    r.method = method;
    r.path = path;
    r.query = query;
    r.accept = accept;
    r.prefer = prefer;
    r.content_type = content_type;
    r.body = body;
    return r;
  }
};

Req Get(std::string query, std::string path = "/$export") {
  Req r;
  r.query = std::move(query);
  r.path = std::move(path);
  return r;
}

std::string JsonString(const std::string& s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.String(s.data(), static_cast<unsigned>(s.size()));
  return buf.GetString();
}

// {"name":name,"<type>":"value"}
std::string Entry(const std::string& name, const std::string& type, const std::string& value) {
  return "{\"name\":" + JsonString(name) + ",\"" + type + "\":" + JsonString(value) + "}";
}
std::string Str(const std::string& name, const std::string& value) {
  return Entry(name, "valueString", value);
}
std::string PatientRef(const std::string& reference) {
  return "{\"name\":\"patient\",\"valueReference\":{\"reference\":" + JsonString(reference) + "}}";
}

Req Post(const std::vector<std::string>& entries, std::string path = "/Patient/$export") {
  Req r;
  r.method = HttpMethod::kPost;
  r.path = std::move(path);
  r.content_type = "application/fhir+json";
  r.body = "{\"resourceType\":\"Parameters\",\"parameter\":[";
  for (size_t i = 0; i < entries.size(); ++i) r.body += (i > 0 ? "," : "") + entries[i];
  r.body += "]}";
  return r;
}

Req Lenient(Req r) {
  r.prefer = "respond-async, handling=lenient";
  return r;
}

Result<ExportRequest> Parse(const Req& r, ExportLevel level = ExportLevel::kSystem,
                            const ExportParseOptions& options = Options()) {
  return ParseExportRequest(r.View(), level, level == ExportLevel::kGroup ? "g1" : "", options);
}

ExportRequest ParseOk(const Req& r, ExportLevel level = ExportLevel::kSystem) {
  Result<ExportRequest> result = Parse(r, level);
  EXPECT_TRUE(result.ok()) << result.status().ToString() << " query=" << r.query
                           << " body=" << r.body;
  return result.ok() ? std::move(result).value() : ExportRequest();
}

// The parse fails with `code` and a message starting with `prefix` (the parameter's name).
void ExpectError(const Req& r, Status::Code code, const std::string& prefix,
                 ExportLevel level = ExportLevel::kSystem, const std::string& contains = "") {
  Result<ExportRequest> result = Parse(r, level);
  ASSERT_FALSE(result.ok()) << "query=" << r.query << " body=" << r.body;
  EXPECT_EQ(result.status().code(), code) << result.status().ToString();
  EXPECT_EQ(result.status().message().rfind(prefix, 0), 0u)
      << "message should start with '" << prefix << "': " << result.status().message();
  if (!contains.empty()) {
    EXPECT_NE(result.status().message().find(contains), std::string::npos)
        << result.status().message();
  }
}

void ExpectInvalid(const Req& r, const std::string& prefix,
                   ExportLevel level = ExportLevel::kSystem, const std::string& contains = "") {
  ExpectError(r, Status::Code::kInvalidArgument, prefix, level, contains);
}

void ExpectNotSupported(const Req& r, const std::string& prefix,
                        ExportLevel level = ExportLevel::kSystem,
                        const std::string& contains = "") {
  ExpectError(r, Status::Code::kNotSupported, prefix, level, contains);
}

// Lenient parse succeeds with exactly one ignored issue about `param`.
void ExpectIgnoredOnce(const Req& r, const std::string& param,
                       ExportLevel level = ExportLevel::kSystem) {
  ExportRequest e = ParseOk(Lenient(r), level);
  ASSERT_EQ(e.ignored.size(), 1u) << r.query << r.body;
  EXPECT_EQ(e.ignored[0].expression, param);
  EXPECT_EQ(e.ignored[0].code, "not-supported");
  EXPECT_EQ(e.ignored[0].severity, "warning");
  EXPECT_NE(e.ignored[0].diagnostics.find(param), std::string::npos) << e.ignored[0].diagnostics;
  EXPECT_TRUE(e.lenient);
}

using Strings = std::vector<std::string>;

// ---------------------------------------------------------------------------------------------
// Query strings.

TEST(ExportQueryStringTest, SplitAndDecode) {
  auto params = SplitQueryString("a=1&&b%5Fx=x%2By+z&flag&c=");
  ASSERT_TRUE(params.ok());
  ASSERT_EQ(params->size(), 4u);
  EXPECT_EQ((*params)[1].name, "b_x");
  EXPECT_EQ((*params)[1].raw_value, "x%2By+z");  // values stay raw
  EXPECT_EQ((*params)[2].name, "flag");
  EXPECT_EQ((*params)[2].raw_value, "");
  EXPECT_FALSE(SplitQueryString("=x").ok());
  EXPECT_EQ(PercentDecode("x%2By+z", true).value(), "x+y z");
  EXPECT_EQ(PercentDecode("x%2By+z", false).value(), "x+y+z");
  EXPECT_EQ(PercentDecode("%C3%A9", true).value(), "\xC3\xA9");
  for (const char* bad : {"%", "%4", "%zz", "a%0", "%00", "%FF", "%C3", "%ED%A0%80", "%C0%AF"}) {
    EXPECT_FALSE(PercentDecode(bad, true).ok()) << bad;
  }
}

TEST(ExportQueryStringTest, Utf8) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\x80"));
}

// ---------------------------------------------------------------------------------------------
// Headers.

TEST(ExportRequestTest, AcceptAllowsFhirJson) {
  for (const char* accept :
       {"application/fhir+json", "APPLICATION/FHIR+JSON", "*/*", "application/*",
        "text/html, application/fhir+json;q=0.5", "application/fhir+json; fhirVersion=4.0",
        "application/fhir+json;q=0.001", "text/html;q=0.9, */*;q=0.1",
        "application/fhir+json;q=1.000", "application/json;q=0, application/fhir+json",
        "application/json, application/fhir+json;q=0.1", "application/json, */*;q=0.2",
        "application/*;q=0.5, application/json"}) {
    Req r = Get("");
    r.accept = accept;
    EXPECT_TRUE(Parse(r).ok()) << accept;
  }
}

TEST(ExportRequestTest, AcceptRefusesOthers) {
  for (const char* accept :
       {"text/html", "application/xml", "application/fhir+xml", "application/fhir+json;q=0",
        "*/*;q=0", "application/fhir+json;q=0, */*", "application/fhir+json;q=abc",
        "application/fhir+json;q=1.5", "application/fhir+json;q=0.0001", "json",
        "text/*, application/fhir+json;q=0", "application/fhir+json;q=0, application/json",
        // Strict (issue 13): application/json alone does not admit application/fhir+json.
        "application/json", "application/json;q=1", "application/json, text/html",
        "application/json, application/*;q=0", "application/json, */*;q=0"}) {
    Req r = Get("");
    r.accept = accept;
    ExpectError(r, Status::Code::kNotAcceptable, "Accept", ExportLevel::kSystem, "");
  }
}

// fhir_bulk_strict_headers off: application/json (or a wildcard) is enough, unless
// application/fhir+json is refused by name.
TEST(ExportRequestTest, AcceptLenientTakesJson) {
  ExportParseOptions o = Options();
  o.require_accept_fhir_json = false;
  for (const char* accept :
       {"application/json", "application/json;q=0.5", "*/*", "", "application/fhir+json"}) {
    Req r = Get("");
    r.accept = accept;
    EXPECT_TRUE(ParseExportRequest(r.View(), ExportLevel::kSystem, "", o).ok()) << accept;
  }
  for (const char* accept :
       {"application/fhir+json;q=0, application/json", "text/html", "application/json;q=0"}) {
    Req r = Get("");
    r.accept = accept;
    EXPECT_EQ(ParseExportRequest(r.View(), ExportLevel::kSystem, "", o).status().code(),
              Status::Code::kNotAcceptable)
        << accept;
  }
}

TEST(ExportRequestTest, AllowPartialManifestsAndSeparateStatus) {
  EXPECT_FALSE(ParseOk(Get("")).allow_partial_manifests);
  EXPECT_TRUE(ParseOk(Get("allowPartialManifests=true")).allow_partial_manifests);
  EXPECT_TRUE(ParseOk(Get("allowPartialManifests=TRUE")).allow_partial_manifests);
  EXPECT_FALSE(ParseOk(Get("allowPartialManifests=false")).allow_partial_manifests);
  ExpectError(Get("allowPartialManifests=yes"), Status::Code::kInvalidArgument,
              "allowPartialManifests");
  ExpectError(Get("allowPartialManifests=true&allowPartialManifests=true"),
              Status::Code::kInvalidArgument, "allowPartialManifests");
  EXPECT_TRUE(ParseOk(Post({"{\"name\":\"allowPartialManifests\",\"valueBoolean\":true}"}),
                      ExportLevel::kPatient)
                  .allow_partial_manifests);
  ExpectError(Post({Str("allowPartialManifests", "true")}), Status::Code::kInvalidArgument,
              "allowPartialManifests", ExportLevel::kPatient, "valueBoolean");
  Req r = Get("");
  r.prefer = "respond-async, separate-export-status";
  ExportRequest e = ParseOk(r);
  EXPECT_TRUE(e.separate_export_status);
  EXPECT_FALSE(ParseOk(Get("")).separate_export_status);
  // Both survive the job store's JSON; jobs stored without them read as false.
  e.allow_partial_manifests = true;
  auto back = ExportRequestFromJson(ExportRequestToJson(e));
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->allow_partial_manifests);
  EXPECT_TRUE(back->separate_export_status);
  auto plain = ExportRequestFromJson(ExportRequestToJson(ParseOk(Get(""))));
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->allow_partial_manifests);
  EXPECT_EQ(ExportRequestToJson(ParseOk(Get(""))).find("partial"), std::string::npos);
}

TEST(ExportRequestTest, MissingAccept) {
  Req r = Get("");
  r.accept = "";
  ExpectError(r, Status::Code::kNotAcceptable, "Accept", ExportLevel::kSystem, "");
  ExportParseOptions o = Options();
  o.require_accept_fhir_json = false;
  EXPECT_TRUE(ParseExportRequest(r.View(), ExportLevel::kSystem, "", o).ok());
  r.accept = "text/html";  // present but wrong is still an error
  EXPECT_FALSE(ParseExportRequest(r.View(), ExportLevel::kSystem, "", o).ok());
}

TEST(ExportRequestTest, PreferVariants) {
  struct Case {
    const char* prefer;
    bool lenient;
  };
  for (const Case& c :
       {Case{"respond-async", false}, Case{"RESPOND-ASYNC", false},
        Case{"respond-async, handling=lenient", true},
        Case{"handling=lenient, respond-async", true}, Case{"respond-async,handling=LENIENT", true},
        Case{"Handling = lenient , respond-async", true},
        Case{"handling=\"lenient\", respond-async", true},
        Case{"respond-async; foo=bar, handling=lenient; x", true},
        Case{"respond-async, handling=strict", false},
        Case{"handling=strict, handling=lenient, respond-async", false},
        Case{"handling=lenient, handling=strict, respond-async", true},
        Case{"return=minimal, respond-async, wait=10", false}}) {
    Req r = Get("");
    r.prefer = c.prefer;
    Result<ExportRequest> e = Parse(r);
    ASSERT_TRUE(e.ok()) << c.prefer << ": " << e.status().ToString();
    EXPECT_EQ(e->lenient, c.lenient) << c.prefer;
  }
}

TEST(ExportRequestTest, PreferRespondAsyncRequired) {
  for (const char* prefer : {"", "handling=lenient", "respond-sync", "return=minimal"}) {
    Req r = Get("");
    r.prefer = prefer;
    ExpectInvalid(r, "Prefer");
    ExportParseOptions o = Options();
    o.require_prefer_async = false;
    Result<ExportRequest> e = ParseExportRequest(r.View(), ExportLevel::kSystem, "", o);
    ASSERT_TRUE(e.ok()) << prefer;
    EXPECT_EQ(e->lenient, std::string(prefer) == "handling=lenient");
  }
}

TEST(ExportRequestTest, OnlyGetAndPost) {
  Req r = Get("");
  r.method = HttpMethod::kDelete;
  EXPECT_EQ(Parse(r).status().code(), Status::Code::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// GET parameters.

TEST(ExportRequestTest, GetDefaults) {
  ExportRequest e = ParseOk(Get(""));
  EXPECT_EQ(e.level, ExportLevel::kSystem);
  EXPECT_EQ(e.output_format, "application/fhir+ndjson");
  EXPECT_FALSE(e.since_us.has_value());
  EXPECT_FALSE(e.until_us.has_value());
  EXPECT_TRUE(e.types.empty());
  EXPECT_TRUE(e.type_filters.empty());
  EXPECT_TRUE(e.ignored.empty());
  EXPECT_FALSE(e.lenient);
  EXPECT_EQ(e.request_url, std::string(kBase) + "/$export");
}

TEST(ExportRequestTest, RequestUrlAndLevels) {
  const std::string q = "_type=Patient,Condition&_since=2024-01-01T00:00:00Z";
  ExportRequest e = ParseOk(Get(q, "/Group/cohort-7/$export"), ExportLevel::kGroup);
  EXPECT_EQ(e.request_url, std::string(kBase) + "/Group/cohort-7/$export?" + q);
  EXPECT_EQ(e.level, ExportLevel::kGroup);
  EXPECT_EQ(e.group_id, "g1");
  ExportRequest p = ParseOk(Get("", "/Patient/$export"), ExportLevel::kPatient);
  EXPECT_EQ(p.request_url, std::string(kBase) + "/Patient/$export");
  EXPECT_TRUE(p.group_id.empty());
}

TEST(ExportRequestTest, OutputFormat) {
  for (const char* f :
       {"application/fhir%2Bndjson", "application/fhir+ndjson", "application/ndjson", "ndjson",
        "Application/FHIR%2BNDJSON", "application%2Ffhir%2Bndjson"}) {
    ExportRequest e = ParseOk(Get(std::string("_outputFormat=") + f));
    EXPECT_EQ(e.output_format, "application/fhir+ndjson") << f;
  }
  for (const char* f :
       {"text/csv", "application/json", "application/fhir+json", "parquet", "ndjson2", ""}) {
    const Req r = Get(std::string("_outputFormat=") + f);
    ExpectNotSupported(r, "_outputFormat");
    ExpectNotSupported(Lenient(r), "_outputFormat");  // never lenient
  }
  ExpectInvalid(Get("_outputFormat=ndjson&_outputFormat=ndjson"), "_outputFormat");
}

TEST(ExportRequestTest, Since) {
  EXPECT_EQ(*ParseOk(Get("_since=2024-01-01T00:00:00Z")).since_us, Instant("2024-01-01T00:00:00Z"));
  // + as %2B (the correct encoding) and raw + (decoded to a space, read back).
  EXPECT_EQ(*ParseOk(Get("_since=2024-01-01T00:00:00%2B02:00")).since_us,
            Instant("2023-12-31T22:00:00Z"));
  EXPECT_EQ(*ParseOk(Get("_since=2024-01-01T00:00:00+02:00")).since_us,
            Instant("2023-12-31T22:00:00Z"));
  EXPECT_EQ(*ParseOk(Get("_since=2024-01-01T00:00:00.123-05:00")).since_us,
            Instant("2024-01-01T05:00:00.123Z"));
  EXPECT_EQ(*ParseOk(Get("_since=2024-06-01T12:00:00Z")).since_us, Options().now_us);  // == now
  for (const char* bad : {"2024-01-01", "2024-01-01T00:00Z", "2024-01-01T00:00:00",
                          "2024-02-30T00:00:00Z", "yesterday", "", "2024-01-01T00:00:00 02"}) {
    ExpectInvalid(Get(std::string("_since=") + bad), "_since");
    ExpectInvalid(Lenient(Get(std::string("_since=") + bad)), "_since");
  }
  ExpectInvalid(Get("_since=2024-06-01T12:00:01Z"), "_since", ExportLevel::kSystem, "future");
  ExpectInvalid(Lenient(Get("_since=2030-01-01T00:00:00Z")), "_since");
  ExpectInvalid(Get("_since=2024-01-01T00:00:00Z&_since=2024-01-02T00:00:00Z"), "_since");
}

TEST(ExportRequestTest, Until) {
  ExportRequest e = ParseOk(Get("_since=2024-01-01T00:00:00Z&_until=2024-02-01T00:00:00Z"));
  EXPECT_EQ(*e.until_us, Instant("2024-02-01T00:00:00Z"));
  // _until alone, in the future, and equal to _since are fine.
  EXPECT_EQ(*ParseOk(Get("_until=2030-01-01T00:00:00Z")).until_us, Instant("2030-01-01T00:00:00Z"));
  EXPECT_TRUE(Parse(Get("_since=2024-01-01T00:00:00Z&_until=2024-01-01T00:00:00Z")).ok());
  ExpectInvalid(Get("_since=2024-01-01T00:00:00Z&_until=2023-12-31T23:59:59Z"), "_until",
                ExportLevel::kSystem, "earlier");
  // Offsets are compared as instants: 01:00+02:00 is before 00:00Z.
  ExpectInvalid(Get("_since=2024-01-01T00:00:00Z&_until=2024-01-01T01:00:00%2B02:00"), "_until");
  ExpectInvalid(Get("_until=2024-01"), "_until");
}

TEST(ExportRequestTest, TypeCommaRepeatedDeduplicated) {
  const Strings expected = {"Patient", "Observation", "Condition"};
  EXPECT_EQ(ParseOk(Get("_type=Patient,Observation,Condition")).types, expected);
  EXPECT_EQ(ParseOk(Get("_type=Patient&_type=Observation&_type=Condition")).types, expected);
  EXPECT_EQ(ParseOk(Get("_type=Patient,Observation&_type=Patient,Condition")).types, expected);
  EXPECT_EQ(ParseOk(Get("_type=Patient%2CObservation, Condition")).types, expected);
  EXPECT_EQ(ParseOk(Get("_type=Patient,+Observation,Condition")).types, expected);
  ExpectInvalid(Get("_type=Patient,,Observation"), "_type");
  ExpectInvalid(Get("_type="), "_type");
}

TEST(ExportRequestTest, TypeUnknownStrictAndLenient) {
  ExpectNotSupported(Get("_type=Patient,Foo"), "_type", ExportLevel::kSystem, "'Foo'");
  ExpectNotSupported(Get("_type=patient"), "_type");
  ExpectIgnoredOnce(Get("_type=Patient,Foo"), "_type");
  EXPECT_EQ(ParseOk(Lenient(Get("_type=Patient,Foo"))).types, Strings{"Patient"});
  // Lenient mode never turns "some types" into "all types".
  ExpectNotSupported(Lenient(Get("_type=Foo,Bar")), "_type");
}

TEST(ExportRequestTest, TypeCompartmentAtPatientAndGroupLevel) {
  for (ExportLevel level : {ExportLevel::kPatient, ExportLevel::kGroup}) {
    EXPECT_EQ(
        ParseOk(Get("_type=Observation,Practitioner,Organization,Location,Medication,Group"), level)
            .types.size(),
        6u);
    // Issue 13: mixing compartment and other types is accepted in both modes; the others
    // are reported as warnings for the manifest's error file.
    for (bool lenient : {false, true}) {
      Req mixed = Get("_type=Observation,Device");
      ExportRequest e = ParseOk(lenient ? Lenient(mixed) : mixed, level);
      EXPECT_EQ(e.types, Strings{"Observation"});
      ASSERT_EQ(e.ignored.size(), 1u);
      EXPECT_EQ(e.ignored[0].severity, "warning");
      EXPECT_EQ(e.ignored[0].code, "not-supported");
      EXPECT_NE(e.ignored[0].diagnostics.find("Device"), std::string::npos);
    }
    ExpectNotSupported(Get("_type=Device,PractitionerRole"), "_type", level,
                       "only non-compartment");
    ExpectNotSupported(Lenient(Get("_type=Device,PractitionerRole")), "_type", level,
                       "only non-compartment");
  }
  // At system level any R4 type is fine.
  EXPECT_EQ(ParseOk(Get("_type=Device,PractitionerRole")).types.size(), 2u);
}

TEST(ExportRequestTest, Elements) {
  ExportRequest e = ParseOk(Get("_elements=Patient.name,id,Observation.code,id&_elements=meta"));
  EXPECT_EQ(e.elements, (Strings{"Patient.name", "id", "Observation.code", "meta"}));
  for (const char* nested : {"name.given", "Patient.name.given"}) {
    ExpectNotSupported(Get(std::string("_elements=") + nested), "_elements");
    ExpectIgnoredOnce(Get(std::string("_elements=id,") + nested), "_elements");
  }
  ExpectNotSupported(Get("_elements=Foo.bar"), "_elements", ExportLevel::kSystem, "Foo");
  EXPECT_EQ(ParseOk(Lenient(Get("_elements=Foo.bar,id"))).elements, Strings{"id"});
  for (const char* bad : {"Patient", "1abc", "Patient.", ".name", "na-me", "Patient.Name"}) {
    ExpectInvalid(Get(std::string("_elements=") + bad), "_elements");
    ExpectInvalid(Lenient(Get(std::string("_elements=") + bad)), "_elements");
  }
}

TEST(ExportRequestTest, PatientInGetIsNotSupported) {
  ExpectNotSupported(Get("patient=Patient/1"), "patient", ExportLevel::kPatient);
  ExpectIgnoredOnce(Get("patient=Patient/1"), "patient", ExportLevel::kPatient);
  EXPECT_TRUE(ParseOk(Lenient(Get("patient=Patient/1")), ExportLevel::kPatient).patients.empty());
}

TEST(ExportRequestTest, IncludeAssociatedData) {
  for (const char* code : {"LatestProvenanceResources", "RelevantProvenanceResources"}) {
    ExportRequest e = ParseOk(Get(std::string("includeAssociatedData=") + code));
    EXPECT_EQ(e.include_associated_data, std::vector<std::string>{code});
    EXPECT_TRUE(e.ignored.empty());
  }
  ExpectNotSupported(Get("includeAssociatedData=_myCustom"), "includeAssociatedData");
  ExpectIgnoredOnce(Get("includeAssociatedData=_myCustom"), "includeAssociatedData");
  ExpectInvalid(Get("includeAssociatedData=Bogus"), "includeAssociatedData");
  ExpectInvalid(Lenient(Get("includeAssociatedData=Bogus")), "includeAssociatedData");
  // Comma-joined, repeated and duplicated values are one deduplicated list.
  ExportRequest e =
      ParseOk(Get("includeAssociatedData=LatestProvenanceResources,RelevantProvenanceResources"
                  "&includeAssociatedData=LatestProvenanceResources"));
  EXPECT_EQ(e.include_associated_data,
            (std::vector<std::string>{"LatestProvenanceResources", "RelevantProvenanceResources"}));
  e = ParseOk(Lenient(Get("includeAssociatedData=_a,RelevantProvenanceResources")));
  EXPECT_EQ(e.include_associated_data, std::vector<std::string>{"RelevantProvenanceResources"});
  ASSERT_EQ(e.ignored.size(), 1u);
  EXPECT_EQ(e.ignored[0].severity, "warning");
}

TEST(ExportRequestTest, OrganizeOutputBy) {
  EXPECT_EQ(ParseOk(Get("organizeOutputBy=Patient")).organize_output_by, "Patient");
  EXPECT_EQ(ParseOk(Get("organizeOutputBy=Patient", "/Patient/$export"), ExportLevel::kPatient)
                .organize_output_by,
            "Patient");
  EXPECT_EQ(
      ParseOk(Post({Entry("organizeOutputBy", "valueString", "Patient")}), ExportLevel::kPatient)
          .organize_output_by,
      "Patient");
  ExpectNotSupported(Get("organizeOutputBy=Encounter"), "organizeOutputBy");
  ExpectIgnoredOnce(Get("organizeOutputBy=Encounter"), "organizeOutputBy");
  EXPECT_TRUE(ParseOk(Lenient(Get("organizeOutputBy=Encounter"))).organize_output_by.empty());
  ExpectInvalid(Get("organizeOutputBy=patient"), "organizeOutputBy");
  ExpectInvalid(Lenient(Get("organizeOutputBy=Bogus")), "organizeOutputBy");
  ExpectInvalid(Get("organizeOutputBy=Patient&organizeOutputBy=Patient"), "organizeOutputBy");
  // Stored with the job and read back; absent in jobs stored before.
  ExportRequest e = ParseOk(Get("organizeOutputBy=Patient"));
  Result<ExportRequest> back = ExportRequestFromJson(ExportRequestToJson(e));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->organize_output_by, "Patient");
  EXPECT_EQ(ExportRequestToJson(ParseOk(Get(""))).find("organize_output_by"), std::string::npos);
}

TEST(ExportRequestTest, UnknownParameters) {
  ExpectNotSupported(Get("_type=Patient&organizeOutputBY=Patient"), "organizeOutputBY");
  ExpectIgnoredOnce(Get("_type=Patient&organizeOutputBY=Patient"), "organizeOutputBY");
  ExpectNotSupported(Get("_count=10"), "_count");
  ExpectNotSupported(Get("_Type=Patient"), "_Type");  // names are case-sensitive
}

TEST(ExportRequestTest, MalformedEncoding) {
  ExpectInvalid(Get("_type=%zz"), "_type");
  ExpectInvalid(Get("_type=Patient%00"), "_type");
  ExpectInvalid(Get("_type=%FF"), "_type");
  EXPECT_EQ(Parse(Get("%zz=1")).status().code(), Status::Code::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// POST.

TEST(ExportRequestTest, PostDigestExample) {
  Req r =
      Post({Str("_type", "Observation,Condition"),
            Entry("_since", "valueInstant", "2024-03-01T00:00:00Z"), PatientRef("Patient/p-104"),
            Str("_typeFilter", "Observation?category=laboratory")});
  r.prefer = "respond-async, handling=lenient";
  ExportRequest e = ParseOk(r, ExportLevel::kPatient);
  EXPECT_EQ(e.types, (Strings{"Observation", "Condition"}));
  EXPECT_EQ(*e.since_us, Instant("2024-03-01T00:00:00Z"));
  EXPECT_EQ(e.patients, Strings{"p-104"});
  ASSERT_EQ(e.type_filters.size(), 1u);
  EXPECT_EQ(e.type_filters[0].type, "Observation");
  ASSERT_EQ(e.type_filters[0].criteria.size(), 1u);
  EXPECT_EQ(e.type_filters[0].criteria[0].param, "category");
  EXPECT_EQ(e.type_filters[0].criteria[0].values, Strings{"laboratory"});
  EXPECT_TRUE(e.lenient);
  EXPECT_TRUE(e.ignored.empty());
  EXPECT_EQ(e.request_url, std::string(kBase) + "/Patient/$export");
}

TEST(ExportRequestTest, PostEveryParameter) {
  Req r = Post({Str("_outputFormat", "ndjson"), Str("_type", "Patient"),
                Str("_type", "Observation"), Str("_elements", "id,Patient.name"),
                Entry("_since", "valueDateTime", "2024-01-01T00:00:00+02:00"),
                Entry("_until", "valueInstant", "2024-05-01T00:00:00Z"), PatientRef("Patient/a"),
                PatientRef(std::string(kBase) + "/Patient/b"), PatientRef("Patient/a/_history/3"),
                Str("_typeFilter", "Observation?status=final,amended"),
                Str("_typeFilter", "Observation%3Fcode%3Dhttp%3A%2F%2Floinc.org%7C8480-6")},
               "/Group/g1/$export");
  ExportRequest e = ParseOk(r, ExportLevel::kGroup);
  EXPECT_EQ(e.output_format, "application/fhir+ndjson");
  EXPECT_EQ(e.types, (Strings{"Patient", "Observation"}));
  EXPECT_EQ(e.elements, (Strings{"id", "Patient.name"}));
  EXPECT_EQ(*e.since_us, Instant("2023-12-31T22:00:00Z"));
  EXPECT_EQ(*e.until_us, Instant("2024-05-01T00:00:00Z"));
  EXPECT_EQ(e.patients, (Strings{"a", "b"}));
  ASSERT_EQ(e.type_filters.size(), 2u);
  EXPECT_EQ(e.type_filters[0].criteria[0].values, (Strings{"final", "amended"}));
  EXPECT_EQ(e.type_filters[1].criteria[0].values, Strings{"http://loinc.org|8480-6"});
  EXPECT_EQ(e.request_url, std::string(kBase) + "/Group/g1/$export");
}

TEST(ExportRequestTest, PostContentType) {
  Req r = Post({Str("_type", "Patient")});
  for (const char* ok : {"application/fhir+json", "application/json; charset=utf-8",
                         "Application/FHIR+JSON;fhirVersion=4.0"}) {
    r.content_type = ok;
    EXPECT_TRUE(Parse(r, ExportLevel::kPatient).ok()) << ok;
  }
  for (const char* bad : {"", "text/plain", "application/x-www-form-urlencoded"}) {
    r.content_type = bad;
    ExpectInvalid(r, "Content-Type", ExportLevel::kPatient);
  }
}

TEST(ExportRequestTest, PostBodyShape) {
  Req r = Post({});
  EXPECT_TRUE(Parse(r).ok());
  for (const char* body : {"", "{", "not json", "{\"resourceType\":\"Parameters\",}",
                           "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"x\"}"}) {
    r.body = body;
    ExpectInvalid(r, "body is not valid JSON");
  }
  r.body =
      "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"_type\",\"valueString\":"
      "\"\xFF\"}]}";
  ExpectInvalid(r, "body is not valid JSON");  // not UTF-8
  for (const char* body : {"[]", "{}", "{\"resourceType\":\"Patient\"}", "\"Parameters\""}) {
    r.body = body;
    ExpectInvalid(r, "body is not a FHIR Parameters resource");
  }
  r.body = "{\"resourceType\":\"Parameters\"}";
  EXPECT_TRUE(Parse(r).ok());
  r.body = "{\"resourceType\":\"Parameters\",\"parameter\":{}}";
  ExpectInvalid(r, "Parameters.parameter");
  r.body = "{\"resourceType\":\"Parameters\",\"parameter\":[1]}";
  ExpectInvalid(r, "Parameters.parameter");
  r.body = "{\"resourceType\":\"Parameters\",\"parameter\":[{\"valueString\":\"x\"}]}";
  ExpectInvalid(r, "Parameters.parameter");
}

TEST(ExportRequestTest, PostWrongValueTypes) {
  struct Case {
    std::string entry;
    std::string param;
  };
  const std::vector<Case> cases = {
      {Entry("_type", "valueCode", "Patient"), "_type"},
      {Entry("_outputFormat", "valueCode", "ndjson"), "_outputFormat"},
      {Entry("_elements", "valueCode", "id"), "_elements"},
      {Entry("_typeFilter", "valueUri", "Observation?status=final"), "_typeFilter"},
      {Entry("_since", "valueString", "2024-01-01T00:00:00Z"), "_since"},
      {Entry("_until", "valueDate", "2024-01-01"), "_until"},
      {Entry("patient", "valueString", "Patient/1"), "patient"},
      {Entry("includeAssociatedData", "valueUri", "x"), "includeAssociatedData"},
      {"{\"name\":\"_type\",\"valueInteger\":3}", "_type"},
      {"{\"name\":\"_type\",\"valueString\":3}", "_type"},
      {"{\"name\":\"_type\"}", "_type"},
      {"{\"name\":\"_type\",\"valueString\":\"Patient\",\"valueCode\":\"Patient\"}", "_type"},
      {"{\"name\":\"patient\",\"valueReference\":{\"identifier\":{\"value\":\"1\"}}}", "patient"},
      {"{\"name\":\"_type\",\"valueString\":\"Pat\\u0000ient\"}", "_type"},
  };
  for (const Case& c : cases) {
    ExpectInvalid(Post({c.entry}), c.param, ExportLevel::kPatient);
    ExpectInvalid(Lenient(Post({c.entry})), c.param, ExportLevel::kPatient);
  }
  // valueDateTime is accepted for _since only with a full time and zone.
  ExpectInvalid(Post({Entry("_since", "valueDateTime", "2024-01-01")}), "_since");
}

TEST(ExportRequestTest, PostIncludeAssociatedDataValueTypes) {
  for (const std::string& entry :
       {Entry("includeAssociatedData", "valueCode", "LatestProvenanceResources"),
        Entry("includeAssociatedData", "valueString", "LatestProvenanceResources"),
        std::string("{\"name\":\"includeAssociatedData\",\"valueCoding\":{\"system\":\"http://"
                    "hl7.org/fhir/uv/bulkdata/CodeSystem/include-associated-data\",\"code\":"
                    "\"LatestProvenanceResources\"}}")}) {
    EXPECT_EQ(ParseOk(Post({entry}), ExportLevel::kPatient).include_associated_data,
              std::vector<std::string>{"LatestProvenanceResources"});
  }
  ExpectInvalid(Post({"{\"name\":\"includeAssociatedData\",\"valueCoding\":{}}"}),
                "includeAssociatedData", ExportLevel::kPatient);
}

TEST(ExportRequestTest, PostPatientReferences) {
  for (const char* bad : {"Group/1", "Patient/", "Patient/a b", "urn:uuid:1234", "1",
                          "https://other.example.org/fhir/Patient/1", "Patient/1/extra", ""}) {
    ExpectInvalid(Post({PatientRef(bad)}), "patient", ExportLevel::kPatient);
    ExpectInvalid(Lenient(Post({PatientRef(bad)})), "patient", ExportLevel::kGroup);
  }
  ExpectNotSupported(Post({PatientRef("Patient/1")}, "/$export"), "patient", ExportLevel::kSystem,
                     "system level");
  ExpectIgnoredOnce(Post({PatientRef("Patient/1")}, "/$export"), "patient");
  EXPECT_EQ(ParseOk(Post({PatientRef("Patient/x"), PatientRef("Patient/x")}), ExportLevel::kPatient)
                .patients,
            Strings{"x"});
}

TEST(ExportRequestTest, PostUnknownParameterAndQuery) {
  // (allowPartialManifests is supported since issue 13: another name stands for "unknown".)
  ExpectNotSupported(Post({Str("xUnknownParameter", "true")}), "xUnknownParameter",
                     ExportLevel::kPatient);
  ExpectIgnoredOnce(Post({Str("xUnknownParameter", "true")}), "xUnknownParameter",
                    ExportLevel::kPatient);
  Req r = Post({Str("_type", "Patient")});
  r.query = "_type=Observation";
  ExpectNotSupported(r, "URL query", ExportLevel::kPatient);
  ExportRequest e = ParseOk(Lenient(r), ExportLevel::kPatient);
  EXPECT_EQ(e.types, Strings{"Patient"});  // the query was not used
  ASSERT_EQ(e.ignored.size(), 1u);
  EXPECT_EQ(e.request_url, std::string(kBase) + "/Patient/$export");  // without the query
}

TEST(ExportRequestTest, PostRepeatedSingleValuedParameters) {
  ExpectInvalid(Post({Entry("_since", "valueInstant", "2024-01-01T00:00:00Z"),
                      Entry("_since", "valueInstant", "2024-01-02T00:00:00Z")}),
                "_since", ExportLevel::kPatient);
  ExpectNotSupported(Post({Str("_outputFormat", "text/csv")}), "_outputFormat",
                     ExportLevel::kPatient);
}

// ---------------------------------------------------------------------------------------------
// _typeFilter.

const FilterCriterion& Criterion(const ExportRequest& e, size_t query, size_t criterion) {
  return e.type_filters.at(query).criteria.at(criterion);
}

TEST(ExportRequestTest, TypeFilterDigestExampleEncoded) {
  ExportRequest e =
      ParseOk(Get("_type=Observation,Encounter&_typeFilter=Observation%3Fcategory%3Dlaboratory,"
                  "Observation%3Fcategory%3Dvital-signs%26date%3Dge2023-01-01",
                  "/Patient/$export"),
              ExportLevel::kPatient);
  ASSERT_EQ(e.type_filters.size(), 2u);
  EXPECT_EQ(e.type_filters[0].type, "Observation");
  EXPECT_EQ(Criterion(e, 0, 0).param, "category");
  EXPECT_EQ(Criterion(e, 0, 0).values, Strings{"laboratory"});
  ASSERT_EQ(e.type_filters[1].criteria.size(), 2u);
  EXPECT_EQ(Criterion(e, 1, 0).values, Strings{"vital-signs"});
  EXPECT_EQ(Criterion(e, 1, 1).param, "date");
  EXPECT_EQ(Criterion(e, 1, 1).values, Strings{"2023-01-01"});
  EXPECT_EQ(Criterion(e, 1, 1).prefixes, Strings{"ge"});
  EXPECT_TRUE(e.ignored.empty());
}

TEST(ExportRequestTest, TypeFilterUnencodedAndOrCommas) {
  // Literal '?' (sent unencoded); the raw comma after "final" is an OR inside the value.
  ExportRequest e =
      ParseOk(Get("_typeFilter=Observation?status=final,amended,Condition?"
                  "clinical-status=active"));
  ASSERT_EQ(e.type_filters.size(), 2u);
  EXPECT_EQ(Criterion(e, 0, 0).values, (Strings{"final", "amended"}));
  EXPECT_EQ(e.type_filters[1].type, "Condition");
  EXPECT_EQ(Criterion(e, 1, 0).param, "clinical-status");
  // Encoded query with a raw OR comma, and with an encoded one.
  for (const char* q : {"_typeFilter=Observation%3Fstatus%3Dfinal,amended",
                        "_typeFilter=Observation%3Fstatus%3Dfinal%2Camended",
                        "_typeFilter=Observation%3Fstatus%3Dfinal%252Camended"}) {
    ExportRequest f = ParseOk(Get(q));
    ASSERT_EQ(f.type_filters.size(), 1u) << q;
    EXPECT_EQ(Criterion(f, 0, 0).values, (Strings{"final", "amended"})) << q;
  }
  // FHIR escaping: "\," is a literal comma, not an OR.
  ExportRequest g = ParseOk(Post({Str("_typeFilter", "Observation?code=a\\,b,c")}));
  EXPECT_EQ(Criterion(g, 0, 0).values, (Strings{"a,b", "c"}));
  // Encoded inner values are decoded once more: %2526 -> %26 -> '&' inside the value.
  ExportRequest h = ParseOk(Get("_typeFilter=Observation%3Fcode%3Da%2526b%26status%3Dfinal"));
  ASSERT_EQ(h.type_filters[0].criteria.size(), 2u);
  EXPECT_EQ(Criterion(h, 0, 0).values, Strings{"a&b"});
}

TEST(ExportRequestTest, TypeFilterPostUnencodedWithAmpersand) {
  ExportRequest e = ParseOk(
      Post({Str("_typeFilter", "Observation?category=laboratory&date=ge2023-01-01T00:00:00+02:00"),
            Str("_typeFilter", "Condition?code=http://snomed.info/sct|44054006")}),
      ExportLevel::kPatient);
  ASSERT_EQ(e.type_filters.size(), 2u);
  EXPECT_EQ(Criterion(e, 0, 1).values, Strings{"2023-01-01T00:00:00+02:00"});
  EXPECT_EQ(Criterion(e, 1, 0).values, Strings{"http://snomed.info/sct|44054006"});
}

TEST(ExportRequestTest, TypeFilterRepeatedParamsAndEmptyQuery) {
  ExportRequest e =
      ParseOk(Get("_typeFilter=Observation%3Fstatus%3Dfinal&_typeFilter=Observation%3F&_typeFilter="
                  "Patient%3Fgender%3Dfemale"));
  ASSERT_EQ(e.type_filters.size(), 3u);
  EXPECT_TRUE(e.type_filters[1].criteria.empty());
  EXPECT_EQ(e.type_filters[2].type, "Patient");
}

TEST(ExportRequestTest, TypeFilterTokenForms) {
  ExportRequest e = ParseOk(Post(
      {Str("_typeFilter",
           "Observation?code=http://loinc.org|8480-6,|local,http://loinc.org|,8867-4&_tag=a|b")}));
  EXPECT_EQ(Criterion(e, 0, 0).values,
            (Strings{"http://loinc.org|8480-6", "|local", "http://loinc.org|", "8867-4"}));
  EXPECT_EQ(Criterion(e, 0, 1).param, "_tag");
  ExpectInvalid(Post({Str("_typeFilter", "Observation?code=|")}), "_typeFilter");
  ExpectInvalid(Post({Str("_typeFilter", "Observation?code=")}), "_typeFilter");
  ExpectInvalid(Post({Str("_typeFilter", "Observation?code=a,,b")}), "_typeFilter");
  ExpectInvalid(Post({Str("_typeFilter", "Observation?code")}), "_typeFilter");
}

TEST(ExportRequestTest, TypeFilterMalformedSplit) {
  ExpectInvalid(Get("_typeFilter=status%3Dfinal"), "_typeFilter");
  ExpectInvalid(Get("_typeFilter=observation?status=final"), "_typeFilter");
  ExpectInvalid(Get("_typeFilter="), "_typeFilter");
  ExpectInvalid(Get("_typeFilter=Observation%3Fstatus%3D%zz"), "_typeFilter");
  ExpectInvalid(Post({Str("_typeFilter", "Observation?status=%zz")}), "_typeFilter");
}

TEST(ExportRequestTest, TypeFilterUnsupportedStrictAndLenient) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Foo?status=final", "not a FHIR R4 resource type"},
      {"Observation?foo=bar", "no supported search parameter 'foo'"},
      {"Observation?_count=10", "result parameter"},
      {"Observation?_sort=date", "result parameter"},
      {"Observation?_include=Observation:subject", "result parameter"},
      {"Observation?_elements=id", "result parameter"},
      {"Observation?_summary=true", "result parameter"},
      {"Observation?subject.name=peter", "chained"},
      {"Observation?subject:Patient.name=peter", "chained"},
      {"Observation?_has:Observation:subject:code=1", "chained"},
      {"Observation?code:text=bp", "modifier"},
      {"Observation?code:in=http://vs", "modifier"},
      {"Observation?subject:not=Patient/1", "modifier"},
      {"Observation?_id:missing=true", "modifier"},
      {"Observation?date=sa2023-01-01", "prefix"},
      {"Observation?date=eb2023-01-01", "prefix"},
      {"Observation?date=ap2023-01-01", "prefix"},
      {"Observation?subject=https://other.example.org/fhir/Patient/1", "another server"},
  };
  for (const auto& c : cases) {
    const Req strict = Post({Str("_typeFilter", c.first)}, "/$export");
    ExpectNotSupported(strict, "_typeFilter", ExportLevel::kSystem, c.second);
    // Lenient: the whole query is dropped and reported; the other query is kept.
    ExportRequest e = ParseOk(
        Lenient(Post({Str("_typeFilter", c.first), Str("_typeFilter", "Encounter?status=finished")},
                     "/$export")));
    ASSERT_EQ(e.ignored.size(), 1u) << c.first;
    EXPECT_EQ(e.ignored[0].expression, "_typeFilter");
    EXPECT_NE(e.ignored[0].diagnostics.find(c.second), std::string::npos)
        << e.ignored[0].diagnostics;
    ASSERT_EQ(e.type_filters.size(), 1u) << c.first;
    EXPECT_EQ(e.type_filters[0].type, "Encounter");
  }
}

TEST(ExportRequestTest, TypeFilterModifiers) {
  ExportRequest e = ParseOk(
      Post({Str("_typeFilter",
                "Observation?status:not=final,amended&code:missing=false&subject:Patient=123&"
                "date:missing=true&subject:missing=true")}));
  EXPECT_EQ(Criterion(e, 0, 0).modifier, "not");
  EXPECT_EQ(Criterion(e, 0, 0).values, (Strings{"final", "amended"}));
  EXPECT_EQ(Criterion(e, 0, 1).modifier, "missing");
  EXPECT_EQ(Criterion(e, 0, 1).values, Strings{"false"});
  EXPECT_EQ(Criterion(e, 0, 2).modifier, "");  // the type modifier is folded into the value
  EXPECT_EQ(Criterion(e, 0, 2).values, Strings{"Patient/123"});
  EXPECT_TRUE(Criterion(e, 0, 3).prefixes.empty());
  for (const char* bad :
       {"Observation?status:missing=maybe", "Observation?status:missing=true,false",
        "Observation?subject:Patient=Group/1"}) {
    ExpectInvalid(Post({Str("_typeFilter", bad)}), "_typeFilter");
    ExpectInvalid(Lenient(Post({Str("_typeFilter", bad)})), "_typeFilter");
  }
}

TEST(ExportRequestTest, TypeFilterDates) {
  ExportRequest e = ParseOk(
      Get("_typeFilter=Observation%3Fdate%3Dge2023-01%2Clt2024-01-01T00:00:00%252B02:00%2C2022"
          "%26_lastUpdated%3Dgt2024-01-01T00:00:00Z"));
  EXPECT_EQ(Criterion(e, 0, 0).values, (Strings{"2023-01", "2024-01-01T00:00:00+02:00", "2022"}));
  EXPECT_EQ(Criterion(e, 0, 0).prefixes, (Strings{"ge", "lt", "eq"}));
  EXPECT_EQ(Criterion(e, 0, 1).param, "_lastUpdated");
  EXPECT_EQ(Criterion(e, 0, 1).prefixes, Strings{"gt"});
  // A raw '+' (decoded to a space) in an unencoded query is read back.
  ExportRequest f = ParseOk(Get("_typeFilter=Observation?date=le2024-01-01T00:00:00+02:00"));
  EXPECT_EQ(Criterion(f, 0, 0).values, Strings{"2024-01-01T00:00:00+02:00"});
  for (const char* bad :
       {"xx2023", "2023-13", "2023-01-01T10:00", "ge", "2023-02-30", "ge2023-01-01T00:00:00"}) {
    ExpectInvalid(Post({Str("_typeFilter", std::string("Observation?date=") + bad)}),
                  "_typeFilter");
    ExpectInvalid(Lenient(Post({Str("_typeFilter", std::string("Observation?date=") + bad)})),
                  "_typeFilter");
  }
}

TEST(ExportRequestTest, TypeFilterReferencesAndIds) {
  ExportRequest e = ParseOk(
      Post({Str("_typeFilter", std::string("Observation?subject=Patient/1,123,") + kBase +
                                   "/Group/g,Patient/9/_history/2&patient=77&_id=o-1,o.2")}));
  EXPECT_EQ(Criterion(e, 0, 0).values, (Strings{"Patient/1", "123", "Group/g", "Patient/9"}));
  EXPECT_EQ(Criterion(e, 0, 1).values, Strings{"Patient/77"});  // single target type
  EXPECT_EQ(Criterion(e, 0, 2).values, (Strings{"o-1", "o.2"}));
  for (const char* bad :
       {"Observation?subject=Foo/1", "Observation?subject=a b", "Observation?subject=Patient/",
        "Observation?_id=a b", "Observation?_id=Observation/1"}) {
    ExpectInvalid(Post({Str("_typeFilter", bad)}), "_typeFilter");
  }
}

TEST(ExportRequestTest, TypeFilterForTypesNotExportedIsDropped) {
  // Not in _type: dropped in strict mode too, reported as information.
  ExportRequest e = ParseOk(Get(
      "_type=Encounter&_typeFilter=Observation%3Fstatus%3Dfinal,Encounter%3Fstatus%3Dfinished"));
  ASSERT_EQ(e.type_filters.size(), 1u);
  EXPECT_EQ(e.type_filters[0].type, "Encounter");
  ASSERT_EQ(e.ignored.size(), 1u);
  EXPECT_EQ(e.ignored[0].severity, "information");
  EXPECT_EQ(e.ignored[0].expression, "_typeFilter");
  // Patient level without _type: only compartment and supporting types are exported.
  ExportRequest p = ParseOk(
      Get("_typeFilter=Device%3Fstatus%3Dactive,Practitioner%3F_id%3Dx", "/Patient/$export"),
      ExportLevel::kPatient);
  ASSERT_EQ(p.type_filters.size(), 1u);
  EXPECT_EQ(p.type_filters[0].type, "Practitioner");
  // System level without _type: every type is exported, so the filter stays.
  EXPECT_EQ(ParseOk(Get("_typeFilter=Device%3Fstatus%3Dactive")).type_filters.size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// JSON round trip.

void ExpectSame(const ExportRequest& a, const ExportRequest& b) {
  EXPECT_EQ(a.level, b.level);
  EXPECT_EQ(a.group_id, b.group_id);
  EXPECT_EQ(a.output_format, b.output_format);
  EXPECT_EQ(a.since_us, b.since_us);
  EXPECT_EQ(a.until_us, b.until_us);
  EXPECT_EQ(a.types, b.types);
  EXPECT_EQ(a.elements, b.elements);
  EXPECT_EQ(a.patients, b.patients);
  EXPECT_EQ(a.include_associated_data, b.include_associated_data);
  ASSERT_EQ(a.type_filters.size(), b.type_filters.size());
  for (size_t i = 0; i < a.type_filters.size(); ++i) {
    EXPECT_EQ(a.type_filters[i].type, b.type_filters[i].type);
    ASSERT_EQ(a.type_filters[i].criteria.size(), b.type_filters[i].criteria.size());
    for (size_t j = 0; j < a.type_filters[i].criteria.size(); ++j) {
      const FilterCriterion& x = a.type_filters[i].criteria[j];
      const FilterCriterion& y = b.type_filters[i].criteria[j];
      EXPECT_EQ(x.param, y.param);
      EXPECT_EQ(x.modifier, y.modifier);
      EXPECT_EQ(x.values, y.values);
      EXPECT_EQ(x.prefixes, y.prefixes);
    }
  }
  EXPECT_EQ(a.lenient, b.lenient);
  ASSERT_EQ(a.ignored.size(), b.ignored.size());
  for (size_t i = 0; i < a.ignored.size(); ++i) {
    EXPECT_EQ(a.ignored[i].severity, b.ignored[i].severity);
    EXPECT_EQ(a.ignored[i].code, b.ignored[i].code);
    EXPECT_EQ(a.ignored[i].diagnostics, b.ignored[i].diagnostics);
    EXPECT_EQ(a.ignored[i].expression, b.ignored[i].expression);
  }
  EXPECT_EQ(a.request_url, b.request_url);
}

TEST(ExportRequestTest, JsonRoundTripOfParsedRequest) {
  Req r = Post({Str("_type", "Observation,Patient,Device"), Str("_elements", "id,Patient.name"),
                Entry("_since", "valueInstant", "2024-01-01T00:00:00.123456Z"),
                Entry("_until", "valueInstant", "2024-05-01T00:00:00Z"), PatientRef("Patient/p1"),
                Str("_typeFilter", "Observation?code:not=a\"b\\\\c&date=ge2023,le2024"),
                Str("includeAssociatedData", "LatestProvenanceResources")},
               "/Group/g1/$export");
  ExportRequest e = ParseOk(Lenient(r), ExportLevel::kGroup);
  ASSERT_EQ(e.ignored.size(), 1u);  // Device
  const std::string json = ExportRequestToJson(e);
  Result<ExportRequest> back = ExportRequestFromJson(json);
  ASSERT_TRUE(back.ok()) << back.status().ToString() << json;
  ExpectSame(e, *back);
  EXPECT_EQ(ExportRequestToJson(*back), json);
}

TEST(ExportRequestTest, JsonRoundTripEdgeValues) {
  ExportRequest e;
  e.level = ExportLevel::kPatient;
  e.since_us = std::numeric_limits<int64_t>::min();
  e.until_us = std::numeric_limits<int64_t>::max();
  e.types = {"Patient"};
  e.request_url = std::string("x\0y\"\\\xC3\xA9\n", 8);
  e.type_filters.push_back({"Observation", {{"code", "", {"a", "b"}, {}}}});
  e.ignored.push_back({"warning", "not-supported", "d", ""});
  const std::string json = ExportRequestToJson(e);
  Result<ExportRequest> back = ExportRequestFromJson(json);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSame(e, *back);
  // Absent optionals stay absent.
  ExportRequest plain;
  Result<ExportRequest> plain_back = ExportRequestFromJson(ExportRequestToJson(plain));
  ASSERT_TRUE(plain_back.ok());
  EXPECT_FALSE(plain_back->since_us.has_value());
  ExpectSame(plain, *plain_back);
}

TEST(ExportRequestTest, JsonRejectsMalformed) {
  const std::string good = ExportRequestToJson(ExportRequest());
  EXPECT_TRUE(ExportRequestFromJson(good).ok());
  for (const std::string& bad :
       {std::string(""), std::string("[]"), std::string("{}"), good.substr(0, good.size() - 1),
        [&] {
          std::string s = good;
          s.replace(s.find("\"system\""), 8, "\"world\"");
          return s;
        }(),
        [&] {
          std::string s = good;
          s.replace(s.find("\"since_us\":null"), 15, "\"since_us\":\"1\"");
          return s;
        }(),
        [&] {
          std::string s = good;
          s.replace(s.find("\"types\":[]"), 10, "\"types\":[1]");
          return s;
        }()}) {
    Result<ExportRequest> r = ExportRequestFromJson(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
  }
}

// ---------------------------------------------------------------------------------------------
// Limits (issue 11): every unbounded input has a limit, checked before the work it bounds.

ExportParseOptions WithLimits(const KickoffLimits& limits) {
  ExportParseOptions o = Options();
  o.limits = limits;
  return o;
}

void ExpectLimit(const Result<ExportRequest>& result, const std::string& prefix,
                 const std::string& contains, Status::Code code = Status::Code::kInvalidArgument) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), code) << result.status().ToString();
  EXPECT_EQ(result.status().message().rfind(prefix, 0), 0u) << result.status().message();
  EXPECT_NE(result.status().message().find(contains), std::string::npos)
      << result.status().message();
  EXPECT_LT(result.status().message().size(), 1000u) << "the message quotes too much";
}

std::string Nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// Issue 11 row 1: ~150,000 nested arrays (~300 KB) crashed the worker (recursive parse).
TEST(ExportLimitsTest, DeeplyNestedBodyIsRefusedWithoutRecursion) {
  Req deep = Post({}, "/$export");
  deep.body = "{\"resourceType\":\"Parameters\",\"parameter\":[" + Nested(150000) + "]}";
  ExpectLimit(Parse(deep), "body: JSON nested deeper than 32", "limit of 32 levels");
  // Inside a value of a parameter entry, too.
  ExpectLimit(
      Parse(Post({"{\"name\":\"_type\",\"valueString\":\"Patient\",\"part\":" + Nested(40) + "}"})),
      "body: JSON nested deeper", "32");
  // Depth 32 is fine (3 levels are the Parameters, its list and the entry); brackets inside
  // strings do not count.
  ExportRequest ok =
      ParseOk(Post({"{\"name\":\"_type\",\"valueString\":\"Patient\",\"part\":" + Nested(29) +
                    ",\"x\":\"" + std::string(100, '[') + "\\\"\"}"}));
  EXPECT_EQ(ok.types, Strings{"Patient"});
  // The depth limit is configurable; a looser one still parses iteratively.
  KickoffLimits loose;
  loose.max_json_depth = 1 << 20;
  Result<ExportRequest> r = Parse(deep, ExportLevel::kSystem, WithLimits(loose));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "Parameters.parameter entry is not an object");
  // Closing brackets first cannot buy depth for later opening ones.
  Req unbalanced = Post({}, "/$export");
  unbalanced.body = std::string(100, ']') + Nested(120);
  ExpectInvalid(unbalanced, "body: JSON nested deeper than 32 levels");
}

TEST(ExportLimitsTest, BodyAndQuerySize) {
  KickoffLimits small;
  small.max_body_bytes = 100;
  small.max_query_bytes = 30;
  Req big = Post({Str("_type", std::string(200, 'A'))}, "/$export");
  Result<ExportRequest> r = Parse(big, ExportLevel::kSystem, WithLimits(small));
  ExpectLimit(r, "body: too large", "limit of 100 bytes", Status::Code::kTooLarge);
  EXPECT_EQ(HttpStatusFor(r.status()), 413);
  r = Parse(Get("_type=Patient,Observation,Encounter"), ExportLevel::kSystem, WithLimits(small));
  ExpectLimit(r, "query: too large", "limit of 30 bytes", Status::Code::kUriTooLong);
  EXPECT_EQ(HttpStatusFor(r.status()), 414);
  // Defaults: 1 MiB body, 64 KiB query.
  Req mib = Post({Str("_type", "Patient")}, "/$export");
  mib.body.insert(1, std::string((1 << 20), ' '));
  EXPECT_EQ(HttpStatusFor(Parse(mib).status()), 413);
  EXPECT_EQ(HttpStatusFor(Parse(Get("_type=Patient&x=" + std::string(65536, 'a'))).status()), 414);
}

TEST(ExportLimitsTest, ParameterCountNameAndValueSize) {
  KickoffLimits small;
  small.max_parameters = 3;
  small.max_value_bytes = 20;
  const ExportParseOptions o = WithLimits(small);
  ExpectLimit(Parse(Get("_type=Patient&_type=Patient&_type=Patient&_type=Patient"),
                    ExportLevel::kSystem, o),
              "query: 4 parameters", "limit of 3 parameters");
  ExpectLimit(Parse(Post({Str("_type", "Patient"), Str("_type", "Patient"), Str("_type", "Patient"),
                          Str("_type", "Patient")}),
                    ExportLevel::kPatient, o),
              "Parameters.parameter: 4 entries", "limit of 3 parameters");
  ExpectLimit(Parse(Get("_type=" + std::string(21, 'A')), ExportLevel::kSystem, o),
              "_type: the value is 21 bytes", "limit of 20 bytes per value");
  ExpectLimit(Parse(Post({Str("_typeFilter", "Observation?code=" + std::string(10, 'x'))}),
                    ExportLevel::kPatient, o),
              "_typeFilter: the value is 27 bytes", "limit of 20 bytes");
  // A name longer than any parameter's is refused before it is echoed anywhere, lenient too.
  const std::string long_name(65, 'n');
  ExpectLimit(Parse(Lenient(Get(long_name + "=1"))), "parameter name", "limit of 64 bytes");
  ExpectLimit(Parse(Lenient(Post({Str(long_name, "1")}))), "parameter name", "limit of 64 bytes");
}

TEST(ExportLimitsTest, ListItemsPatientsAndInstants) {
  KickoffLimits small;
  small.max_list_items = 3;
  small.max_patients = 2;
  const ExportParseOptions o = WithLimits(small);
  ExpectLimit(
      Parse(Get("_type=Patient,Observation&_type=Encounter,Condition"), ExportLevel::kSystem, o),
      "_type: 4 items", "limit of 3 items");
  ExpectLimit(Parse(Get("_elements=id,meta,text,status"), ExportLevel::kSystem, o),
              "_elements: 4 items", "limit of 3 items");
  ExpectLimit(Parse(Lenient(Get("includeAssociatedData=_a,_b,_c,_d")), ExportLevel::kSystem, o),
              "includeAssociatedData: 4 items", "limit of 3 items");
  ExpectLimit(
      Parse(Post({PatientRef("Patient/1"), PatientRef("Patient/2"), PatientRef("Patient/3")}),
            ExportLevel::kPatient, o),
      "patient: 3 references", "limit of 2 patients");
  EXPECT_TRUE(
      Parse(Post({PatientRef("Patient/1"), PatientRef("Patient/2")}), ExportLevel::kPatient, o)
          .ok());
  ExpectLimit(Parse(Get("_since=2020-01-01T00:00:00" + std::string(60, '0') + "Z")),
              "_since:", "limit of 64 bytes");
  // Default item limit: 1000.
  std::string many = "_type=Patient";
  for (int i = 0; i < 1000; ++i) many += ",Patient";
  ExpectLimit(Parse(Get(many)), "_type: 1001 items", "limit of 1000 items");
}

TEST(ExportLimitsTest, LenientIssuesAreCapped) {
  std::string query = "_type=Patient";
  for (int i = 0; i < 150; ++i) query += "&unknown" + std::to_string(i) + "=1";
  ExportRequest e = ParseOk(Lenient(Get(query)));
  ASSERT_EQ(e.ignored.size(), 101u);
  EXPECT_EQ(e.ignored[99].expression, "unknown99");
  EXPECT_NE(e.ignored[100].diagnostics.find("only the first 100"), std::string::npos);
  // Long client text is cut in messages.
  Result<ExportRequest> r = Parse(Get("_type=" + std::string(5000, 'A')));
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.status().message().size(), 400u);
  EXPECT_NE(r.status().message().find("(5000 bytes)"), std::string::npos) << r.status().message();
}

std::string BareIds(const std::string& prefix, int n) {
  std::string out = prefix;
  for (int i = 0; i < n; ++i) out += (i > 0 ? "," : "") + std::string("p") + std::to_string(i);
  return out;
}

TEST(ExportLimitsTest, CountEscapedValuesCountsWhatSplittingWouldYield) {
  EXPECT_EQ(CountEscapedValues(""), 1u);
  EXPECT_EQ(CountEscapedValues("a"), 1u);
  EXPECT_EQ(CountEscapedValues("a,b"), 2u);
  EXPECT_EQ(CountEscapedValues(",,"), 3u);
  EXPECT_EQ(CountEscapedValues("a\\,b"), 1u);    // an escaped comma separates nothing
  EXPECT_EQ(CountEscapedValues("a\\\\,b"), 2u);  // an escaped backslash escapes nothing
  EXPECT_EQ(CountEscapedValues("a,b\\"), 2u);    // a trailing backslash stands for itself
  EXPECT_EQ(CountEscapedValues("\\,\\,\\,"), 1u);
}

// A value of 200,000 commas (under the 256 KiB value limit): refused by counting, never split
// into 200,001 strings in the event loop.
TEST(ExportLimitsTest, TypeFilterValueOfCommasIsRefusedByItsCount) {
  const std::string attack = "Observation?code=" + std::string(200000, ',');
  ExpectLimit(Parse(Post({Str("_typeFilter", attack)}, "/$export")), "_typeFilter",
              "has 200001 values, over the limit of 1000 values per parameter");
  // Escaped commas do not count: one value (of 1,000 commas) is within the limit.
  std::string escaped = "Observation?code=";
  for (int i = 0; i < 1000; ++i) escaped += "\\,";
  EXPECT_TRUE(Parse(Post({Str("_typeFilter", escaped)}, "/$export")).ok());
}

// Issue 11 row 2: Observation?subject=p0,...,p19999 (129 KB) became ~2.9M SQL keys.
TEST(ExportLimitsTest, TypeFilterValuesPerParameter) {
  const std::string attack = BareIds("Observation?subject=", 20000);
  ASSERT_GT(attack.size(), 128000u);
  ExpectLimit(Parse(Post({Str("_typeFilter", attack)}, "/$export")), "_typeFilter",
              "has 20000 values, over the limit of 1000 values per parameter");
  // Lenient: that query is dropped and reported as too costly; the others stay.
  ExportRequest e = ParseOk(Lenient(Post(
      {Str("_typeFilter", attack), Str("_typeFilter", "Encounter?status=finished")}, "/$export")));
  ASSERT_EQ(e.type_filters.size(), 1u);
  EXPECT_EQ(e.type_filters[0].type, "Encounter");
  ASSERT_EQ(e.ignored.size(), 1u);
  EXPECT_EQ(e.ignored[0].severity, "warning");
  EXPECT_EQ(e.ignored[0].code, "too-costly");
  EXPECT_EQ(e.ignored[0].expression, "_typeFilter");
  EXPECT_NE(e.ignored[0].diagnostics.find("values per parameter"), std::string::npos);
  EXPECT_LT(e.ignored[0].diagnostics.size(), 600u);
  // At the limit: accepted.
  EXPECT_EQ(Criterion(ParseOk(Post({Str("_typeFilter", BareIds("Observation?subject=", 1000))},
                                   "/$export")),
                      0, 0)
                .values.size(),
            1000u);
}

TEST(ExportLimitsTest, TypeFilterCriteriaAndQueries) {
  std::string criteria = "Observation?status=final";
  for (int i = 0; i < 32; ++i) criteria += "&code=c" + std::to_string(i);
  ExpectLimit(Parse(Post({Str("_typeFilter", criteria)}, "/$export")), "_typeFilter",
              "33 criteria, over the limit of 32 criteria per query");
  std::vector<std::string> queries;
  queries.reserve(101);
  for (int i = 0; i < 101; ++i)
    queries.push_back(Str("_typeFilter", "Observation?code=c" + std::to_string(i)));
  ExpectLimit(Parse(Post(queries, "/$export")), "_typeFilter 'Observation?code=c100'",
              "over the limit of 100 queries per kick-off");
  ExportRequest e = ParseOk(Lenient(Post(queries, "/$export")));
  EXPECT_EQ(e.type_filters.size(), 100u);
  ASSERT_EQ(e.ignored.size(), 1u);
  EXPECT_EQ(e.ignored[0].code, "too-costly");
  // Queries dropped as not exported still count: the limit is on what the client sends.
  std::string get = "_type=Patient";
  for (int i = 0; i < 101; ++i) get += "&_typeFilter=Observation%3Fcode%3Dc" + std::to_string(i);
  ExpectLimit(Parse(Get(get)), "_typeFilter", "queries per kick-off");
}

TEST(ExportLimitsTest, TypeFilterCompiledTerms) {
  // Observation.subject has 4 declared targets: 1000 bare ids are 4000 terms, under 5000.
  const std::string thousand = BareIds("Observation?subject=", 1000);
  EXPECT_TRUE(Parse(Post({Str("_typeFilter", thousand)}, "/$export")).ok());
  // A second such query goes over the kick-off's total.
  ExpectLimit(Parse(Post({Str("_typeFilter", thousand), Str("_typeFilter", thousand)}, "/$export")),
              "_typeFilter",
              "compiles to 4000 search terms (4000 before it), over the limit "
              "of 5000 terms per kick-off");
  // Basic.subject targets any type (R4 "Any"): each bare id costs one term per R4 type.
  ExpectLimit(Parse(Post({Str("_typeFilter", BareIds("Basic?subject=", 40))}, "/$export")),
              "_typeFilter", "terms per kick-off");
  // Explicit references cost one term each.
  std::string typed = "Basic?subject=";
  for (int i = 0; i < 1000; ++i) typed += (i > 0 ? ",Patient/p" : "Patient/p") + std::to_string(i);
  EXPECT_TRUE(Parse(Post({Str("_typeFilter", typed)}, "/$export")).ok());
  // Lenient drops the query that goes over and keeps the rest.
  ExportRequest e =
      ParseOk(Lenient(Post({Str("_typeFilter", thousand), Str("_typeFilter", thousand),
                            Str("_typeFilter", "Observation?code=x")},
                           "/$export")));
  EXPECT_EQ(e.type_filters.size(), 2u);
  ASSERT_EQ(e.ignored.size(), 1u);
  EXPECT_EQ(e.ignored[0].code, "too-costly");
  // The term limit is configurable (the nginx directive fhir_bulk_typefilter_max_terms).
  KickoffLimits tight;
  tight.max_type_filter_terms = 7;
  ExpectLimit(Parse(Post({Str("_typeFilter", "Observation?subject=a,b")}, "/$export"),
                    ExportLevel::kSystem, WithLimits(tight)),
              "_typeFilter", "compiles to 8 search terms");
  EXPECT_TRUE(Parse(Post({Str("_typeFilter", "Observation?subject=a&code=x,y,z")}, "/$export"),
                    ExportLevel::kSystem, WithLimits(tight))
                  .ok());
}

TEST(ExportLimitsTest, ZeroLimitsMeanDefaults) {
  KickoffLimits zero;
  zero.max_body_bytes = 0;
  zero.max_json_depth = 0;
  zero.max_query_bytes = 0;
  zero.max_parameters = 0;
  zero.max_value_bytes = 0;
  zero.max_list_items = 0;
  zero.max_patients = 0;
  zero.max_ignored_issues = 0;
  zero.max_type_filter_queries = 0;
  zero.max_type_filter_criteria = 0;
  zero.max_type_filter_values = 0;
  zero.max_type_filter_terms = 0;
  const KickoffLimits e = EffectiveKickoffLimits(zero);
  const KickoffLimits d;
  EXPECT_EQ(e.max_body_bytes, d.max_body_bytes);
  EXPECT_EQ(e.max_json_depth, 32);
  EXPECT_EQ(e.max_type_filter_terms, 5000u);
  EXPECT_EQ(e.max_type_filter_values, 1000u);
  EXPECT_TRUE(Parse(Get("_type=Patient"), ExportLevel::kSystem, WithLimits(zero)).ok());
}

}  // namespace
}  // namespace fhirbulk
