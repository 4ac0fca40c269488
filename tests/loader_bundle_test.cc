// BundleResolver and UuidDirectory: urn:uuid references resolved to Type/id.

#include <gtest/gtest.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>

#include "load/bundle_resolver.h"
#include "load/parsed_json.h"

namespace fhirbulk {
namespace {

constexpr const char* kPatientUuid = "urn:uuid:11111111-2222-3333-4444-555555555555";
constexpr const char* kEncUuid = "urn:uuid:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

std::string Compact(const rapidjson::Value& v) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  v.Accept(w);
  return b.GetString();
}

// A transaction Bundle: a Patient, an Encounter (given id), an Observation without id and
// with references in nested elements, arrays, an extension and a contained resource.
const char* kBundle = R"({
  "resourceType": "Bundle", "type": "transaction",
  "entry": [
    {"fullUrl": "urn:uuid:11111111-2222-3333-4444-555555555555",
     "resource": {"resourceType": "Patient", "id": "11111111-2222-3333-4444-555555555555"}},
    {"fullUrl": "urn:uuid:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
     "resource": {"resourceType": "Encounter", "id": "enc-1",
                  "subject": {"reference": "urn:uuid:11111111-2222-3333-4444-555555555555"}}},
    {"fullUrl": "http://example.org/fhir/Practitioner/pr1",
     "resource": {"resourceType": "Practitioner", "id": "pr1"}},
    {"fullUrl": "urn:uuid:99999999-2222-3333-4444-555555555555",
     "resource": {
       "resourceType": "Observation",
       "subject": {"reference": "urn:uuid:11111111-2222-3333-4444-555555555555"},
       "encounter": {"reference": "urn:uuid:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"},
       "performer": [{"reference": "http://example.org/fhir/Practitioner/pr1"},
                     {"reference": "Organization/o1"}, {"reference": "#c1"}],
       "extension": [{"url": "x", "valueReference":
                      {"reference": "urn:uuid:11111111-2222-3333-4444-555555555555"}}],
       "identifier": [{"value": "urn:uuid:11111111-2222-3333-4444-555555555555"}],
       "contained": [{"resourceType": "Provenance", "id": "c1",
                      "target": [{"reference": "urn:uuid:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"}]}]
     }},
    {"fullUrl": "urn:uuid:77777777-2222-3333-4444-555555555555",
     "resource": {"resourceType": "Observation", "id": "dangling",
                  "subject": {"reference": "urn:uuid:00000000-0000-0000-0000-000000000000"}}}
  ]})";

class LoaderBundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(json_.Parse(kBundle).ok());
    resolver_.Index(&json_, &json_.doc());
  }
  rapidjson::Value& Resource(int i) { return json_.doc()["entry"][i]["resource"]; }
  ParsedJson json_;
  BundleResolver resolver_;
};

TEST_F(LoaderBundleTest, MapsFullUrlsToTypeAndId) {
  const auto& t = resolver_.targets();
  EXPECT_EQ(t.size(), 5u);
  EXPECT_EQ(t.at(kPatientUuid), "Patient/11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(t.at(kEncUuid), "Encounter/enc-1");
  EXPECT_EQ(t.at("http://example.org/fhir/Practitioner/pr1"), "Practitioner/pr1");
  // No id: the uuid of the fullUrl becomes the id.
  EXPECT_EQ(t.at("urn:uuid:99999999-2222-3333-4444-555555555555"),
            "Observation/99999999-2222-3333-4444-555555555555");
  EXPECT_EQ(std::string(Resource(3)["id"].GetString()), "99999999-2222-3333-4444-555555555555");
  EXPECT_FALSE(json_.IsRawNumber(Resource(3)["id"]));
}

TEST_F(LoaderBundleTest, RewritesEveryReferenceToAFullUrl) {
  ASSERT_TRUE(resolver_.Resolve(json_, &Resource(1)).ok());
  EXPECT_EQ(std::string(Resource(1)["subject"]["reference"].GetString()),
            "Patient/11111111-2222-3333-4444-555555555555");

  ASSERT_TRUE(resolver_.Resolve(json_, &Resource(3)).ok());
  std::string obs = Compact(Resource(3));
  EXPECT_NE(obs.find(R"("subject":{"reference":"Patient/11111111-2222-3333-4444-555555555555"})"),
            std::string::npos);
  EXPECT_NE(obs.find(R"("encounter":{"reference":"Encounter/enc-1"})"), std::string::npos);
  EXPECT_NE(obs.find(R"([{"reference":"Practitioner/pr1"},{"reference":"Organization/o1"},)"
                     R"({"reference":"#c1"}])"),
            std::string::npos)
      << obs;
  EXPECT_NE(
      obs.find(R"("valueReference":{"reference":"Patient/11111111-2222-3333-4444-555555555555"})"),
      std::string::npos);
  EXPECT_NE(obs.find(R"("target":[{"reference":"Encounter/enc-1"}])"), std::string::npos)
      << "contained resources are resolved too";
  // Only references are rewritten: an identifier that happens to hold the urn stays.
  EXPECT_NE(obs.find(R"("identifier":[{"value":"urn:uuid:11111111-2222-3333-4444-555555555555"}])"),
            std::string::npos);
}

TEST_F(LoaderBundleTest, UndefinedUrnUuidRejectsTheEntry) {
  Status s = resolver_.Resolve(json_, &Resource(4));
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("urn:uuid:00000000-0000-0000-0000-000000000000"), std::string::npos)
      << s.message();
}

TEST(LoaderUuidDirectoryTest, FindsTypeAndId) {
  UuidDirectory dir;
  dir.Add("urn:uuid:11111111-2222-3333-4444-555555555555", "Patient",
          "11111111-2222-3333-4444-555555555555");
  dir.Add("urn:uuid:AAAAAAAA-bbbb-cccc-dddd-eeeeeeeeeeee", "Encounter", "enc-1");
  dir.Add("urn:uuid:not-a-uuid", "Patient", "x");
  dir.Add("http://x/Patient/1", "Patient", "1");
  EXPECT_EQ(dir.size(), 2u);
  EXPECT_EQ(dir.Find("urn:uuid:11111111-2222-3333-4444-555555555555"),
            "Patient/11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(dir.Find("urn:uuid:aaaaaaaa-BBBB-cccc-dddd-eeeeeeeeeeee"), "Encounter/enc-1");
  EXPECT_EQ(dir.Find("urn:uuid:11111111-2222-3333-4444-555555555556"), "");
  EXPECT_EQ(dir.Find("Patient/1"), "");
}

TEST(LoaderUuidDirectoryTest, StopsGrowingAtItsLimit) {
  UuidDirectory dir(2);
  dir.Add("urn:uuid:00000000-0000-0000-0000-000000000001", "Patient", "a");
  dir.Add("urn:uuid:00000000-0000-0000-0000-000000000002", "Patient", "b");
  dir.Add("urn:uuid:00000000-0000-0000-0000-000000000003", "Patient", "c");
  dir.Add("urn:uuid:00000000-0000-0000-0000-000000000001", "Patient", "a2");  // update: fine
  EXPECT_EQ(dir.size(), 2u);
  EXPECT_EQ(dir.Find("urn:uuid:00000000-0000-0000-0000-000000000001"), "Patient/a2");
  EXPECT_EQ(dir.Find("urn:uuid:00000000-0000-0000-0000-000000000003"), "");
}

TEST(LoaderUuidDirectoryTest, BareResourcesResolveThroughALookup) {
  ParsedJson json;
  ASSERT_TRUE(json.Parse(R"({"resourceType":"Group","id":"g","member":[
      {"entity":{"reference":"urn:uuid:11111111-2222-3333-4444-555555555555"}},
      {"entity":{"reference":"urn:uuid:22222222-2222-3333-4444-555555555555"}},
      {"entity":{"reference":"Patient/x"}}]})")
                  .ok());
  std::vector<std::string> refs;
  CollectUuidReferences(json, json.doc(), &refs);
  EXPECT_EQ(refs.size(), 2u);
  std::vector<std::string> unresolved;
  auto lookup = [](std::string_view ref) -> std::string {
    return ref == "urn:uuid:11111111-2222-3333-4444-555555555555" ? "Patient/p1" : "";
  };
  ASSERT_TRUE(ResolveBareResource(&json, &json.doc(), lookup, &unresolved).ok());
  ASSERT_EQ(unresolved.size(), 1u);
  EXPECT_EQ(unresolved[0], "urn:uuid:22222222-2222-3333-4444-555555555555");
  EXPECT_EQ(std::string(json.doc()["member"][0]["entity"]["reference"].GetString()), "Patient/p1");
  EXPECT_FALSE(json.IsRawNumber(json.doc()["member"][0]["entity"]["reference"]));
}

TEST(LoaderBundleTypesTest, UnpackedTypes) {
  EXPECT_TRUE(IsUnpackedBundleType("transaction"));
  EXPECT_TRUE(IsUnpackedBundleType("batch"));
  EXPECT_TRUE(IsUnpackedBundleType("collection"));
  EXPECT_TRUE(IsUnpackedBundleType("searchset"));
  EXPECT_FALSE(IsUnpackedBundleType("document"));
  EXPECT_FALSE(IsUnpackedBundleType("history"));
}

}  // namespace
}  // namespace fhirbulk
