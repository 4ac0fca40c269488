#include "worker/elements.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>

namespace fhirbulk {
namespace {

rapidjson::Document Parse(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  EXPECT_FALSE(d.HasParseError()) << json;
  return d;
}

int CountSubsettedTags(const rapidjson::Document& d) {
  int n = 0;
  if (!d.HasMember("meta") || !d["meta"].HasMember("tag")) return 0;
  for (const auto& t : d["meta"]["tag"].GetArray()) {
    if (t.HasMember("code") && std::string(t["code"].GetString()) == "SUBSETTED" &&
        std::string(t["system"].GetString()) ==
            "http://terminology.hl7.org/CodeSystem/v3-ObservationValue") {
      n++;
    }
  }
  return n;
}

const char kObservation[] =
    R"({"resourceType":"Observation","id":"o1","meta":{"versionId":"3","lastUpdated":"2024-01-01T00:00:00Z"},)"
    R"("status":"final","_status":{"extension":[{"url":"x","valueString":"y"}]},)"
    R"("category":[{"coding":[{"system":"s","code":"laboratory"}]}],)"
    R"("code":{"coding":[{"system":"http://loinc.org","code":"1234-5"}]},)"
    R"("subject":{"reference":"Patient/p1"},)"
    R"("effectiveDateTime":"2024-01-01",)"
    R"("valueQuantity":{"value":1.50,"unit":"mg","comparator":"<"},)"
    R"("component":[{"code":{"text":"a"},"valueQuantity":{"value":12345678901234567890}}],)"
    R"("note":[{"text":"caf\u00e9 \"quoted\" \u2603"}]})";

TEST(ElementsTest, MandatoryTable) {
  auto obs = MandatoryElements("Observation");
  ASSERT_EQ(obs.size(), 2u);
  EXPECT_EQ(obs[0], "status");
  EXPECT_EQ(obs[1], "code");
  EXPECT_TRUE(MandatoryElements("Patient").empty());
  EXPECT_TRUE(MandatoryElements("NoSuchType").empty());
  auto mr = MandatoryElements("MedicationRequest");
  EXPECT_NE(std::find(mr.begin(), mr.end(), "medication[x]"), mr.end());
  EXPECT_EQ(MandatoryElements("Claim").size(), 8u);
  EXPECT_EQ(MandatoryElements("Encounter").size(), 2u);
}

TEST(ElementsTest, SelectionAppliesPerType) {
  ElementsSelection typed({"Observation.subject", "Condition.code"});
  EXPECT_TRUE(typed.AppliesTo("Observation"));
  EXPECT_TRUE(typed.AppliesTo("Condition"));
  EXPECT_FALSE(typed.AppliesTo("Patient"));
  EXPECT_EQ(typed.ForType("Patient"), nullptr);
  auto obs = typed.ForType("Observation");
  ASSERT_NE(obs, nullptr);
  EXPECT_TRUE(obs->Keeps("subject"));
  EXPECT_TRUE(obs->Keeps("code"));
  EXPECT_FALSE(obs->Keeps("category"));

  ElementsSelection bare({"id", "identifier"});
  EXPECT_TRUE(bare.AppliesTo("Patient"));
  auto patient = bare.ForType("Patient");
  ASSERT_NE(patient, nullptr);
  EXPECT_TRUE(patient->Keeps("identifier"));
  EXPECT_FALSE(patient->Keeps("name"));
  EXPECT_TRUE(ElementsSelection({}).empty());
}

TEST(ElementsTest, KeyMatching) {
  TypeSubsetter s("Observation", {"value", "effective[x]"});
  EXPECT_TRUE(s.Keeps("valueQuantity"));
  EXPECT_TRUE(s.Keeps("valueString"));
  EXPECT_TRUE(s.Keeps("_valueString"));
  EXPECT_TRUE(s.Keeps("effectiveDateTime"));
  EXPECT_TRUE(s.Keeps("effectivePeriod"));
  EXPECT_FALSE(s.Keeps("valueSet"));  // "Set" is not a data type
  EXPECT_FALSE(s.Keeps("valuex"));
  EXPECT_TRUE(s.Keeps("_status"));  // mandatory status, with its extension twin
  EXPECT_TRUE(s.Keeps("modifierExtension"));
  EXPECT_TRUE(s.Keeps("implicitRules"));
  EXPECT_FALSE(s.Keeps("extension"));
  TypeSubsetter mr("MedicationRequest", {});
  EXPECT_TRUE(mr.Keeps("medicationCodeableConcept"));
  EXPECT_TRUE(mr.Keeps("medicationReference"));
  EXPECT_TRUE(mr.Keeps("intent"));
  EXPECT_FALSE(mr.Keeps("dosageInstruction"));
}

TEST(ElementsTest, SubsetKeepsListedAndMandatoryAndTags) {
  TypeSubsetter s("Observation", {"subject"});
  std::string out;
  ASSERT_TRUE(s.Apply(kObservation, &out).ok());
  auto d = Parse(out);
  EXPECT_STREQ(d["resourceType"].GetString(), "Observation");
  EXPECT_STREQ(d["id"].GetString(), "o1");
  EXPECT_STREQ(d["status"].GetString(), "final");
  EXPECT_TRUE(d.HasMember("_status"));
  EXPECT_TRUE(d.HasMember("code"));
  EXPECT_TRUE(d.HasMember("subject"));
  EXPECT_FALSE(d.HasMember("category"));
  EXPECT_FALSE(d.HasMember("valueQuantity"));
  EXPECT_FALSE(d.HasMember("component"));
  EXPECT_FALSE(d.HasMember("effectiveDateTime"));
  EXPECT_FALSE(d.HasMember("note"));
  EXPECT_STREQ(d["meta"]["versionId"].GetString(), "3");
  EXPECT_EQ(CountSubsettedTags(d), 1);
  // Key order of what is kept is the stored order.
  EXPECT_LT(out.find("\"status\""), out.find("\"code\":{"));
  EXPECT_LT(out.find("\"code\":{"), out.find("\"subject\""));
}

TEST(ElementsTest, NumbersAndStringsSurviveByteForByte) {
  TypeSubsetter s("Observation", {"value", "component", "note"});
  std::string out;
  ASSERT_TRUE(s.Apply(kObservation, &out).ok());
  EXPECT_NE(out.find(R"("value":1.50,)"), std::string::npos) << out;  // not 1.5
  EXPECT_NE(out.find("12345678901234567890"), std::string::npos) << out;
  auto d = Parse(out);
  EXPECT_EQ(std::string(d["note"][0]["text"].GetString()), "caf\xC3\xA9 \"quoted\" \xE2\x98\x83");
  EXPECT_STREQ(d["valueQuantity"]["comparator"].GetString(), "<");
}

TEST(ElementsTest, MetaCreatedOrExtendedOnce) {
  TypeSubsetter s("Patient", {"gender"});
  std::string out;
  ASSERT_TRUE(
      s.Apply(R"({"resourceType":"Patient","id":"p","gender":"f","name":[{"family":"X"}]})", &out)
          .ok());
  auto d = Parse(out);
  EXPECT_EQ(CountSubsettedTags(d), 1);
  EXPECT_FALSE(d.HasMember("name"));
  EXPECT_STREQ(d["gender"].GetString(), "f");

  ASSERT_TRUE(
      s.Apply(R"({"resourceType":"Patient","id":"p","meta":{"tag":[{"system":"a","code":"b"}]}})",
              &out)
          .ok());
  d = Parse(out);
  EXPECT_EQ(d["meta"]["tag"].Size(), 2u);
  EXPECT_EQ(CountSubsettedTags(d), 1);

  // Already subsetted: not tagged twice.
  std::string again;
  ASSERT_TRUE(s.Apply(out, &again).ok());
  d = Parse(again);
  EXPECT_EQ(d["meta"]["tag"].Size(), 2u);
  EXPECT_EQ(CountSubsettedTags(d), 1);

  // meta without tag gets one.
  ASSERT_TRUE(
      s.Apply(R"({"resourceType":"Patient","meta":{"versionId":"1"},"id":"p"})", &out).ok());
  d = Parse(out);
  EXPECT_EQ(CountSubsettedTags(d), 1);
  EXPECT_STREQ(d["meta"]["versionId"].GetString(), "1");
}

TEST(ElementsTest, DeepStructuresOfDroppedElementsAreSkipped) {
  TypeSubsetter s("Patient", {"active"});
  std::string out;
  ASSERT_TRUE(
      s.Apply(R"({"resourceType":"Patient","contact":[{"name":{"given":["a",{"x":[1,[2,{}]]}]}}],)"
              R"("active":true,"extension":[{"url":"u","valueBoolean":false}],"id":"p"})",
              &out)
          .ok());
  auto d = Parse(out);
  EXPECT_FALSE(d.HasMember("contact"));
  EXPECT_FALSE(d.HasMember("extension"));
  EXPECT_TRUE(d["active"].GetBool());
  EXPECT_STREQ(d["id"].GetString(), "p");
}

TEST(ElementsTest, RejectsNonObjects) {
  TypeSubsetter s("Patient", {});
  std::string out;
  EXPECT_EQ(s.Apply("[1,2]", &out).code(), Status::Code::kCorruption);
  EXPECT_EQ(s.Apply("{\"a\":", &out).code(), Status::Code::kCorruption);
  EXPECT_EQ(s.Apply("\"x\"", &out).code(), Status::Code::kCorruption);
  EXPECT_EQ(s.Apply("", &out).code(), Status::Code::kCorruption);
}

}  // namespace
}  // namespace fhirbulk
