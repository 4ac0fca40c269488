// Tests of the synthetic population generator (core/synth): determinism, independence of
// patient k from N, well-formed resources, referential integrity, realistic counts, Groups,
// attachments, and the NDJSON directory sink.

#include <dirent.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "synth/base64.h"
#include "synth/clock.h"
#include "synth/facility.h"
#include "synth/generator.h"
#include "synth/groups.h"
#include "synth/json_out.h"
#include "synth/patient.h"
#include "synth/prng.h"
#include "synth/sha1.h"
#include "synth/sink.h"

namespace fhirbulk {
namespace synth {
namespace {

std::vector<MemorySink::Item> Population(uint64_t seed, uint64_t patients, int threads = 0,
                                         const std::string& groups = kDefaultGroups,
                                         SynthStats* stats = nullptr) {
  SynthOptions o;
  o.seed = seed;
  o.patients = patients;
  o.threads = threads;
  auto specs = ParseGroupSpecs(groups);
  EXPECT_TRUE(specs.ok());
  o.groups = *specs;
  MemorySink sink;
  Status s = Generate(o, &sink, stats);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return std::move(sink.items);
}

bool IsShared(Kind k) {
  return k == Kind::kOrganization || k == Kind::kPractitioner || k == Kind::kLocation ||
         k == Kind::kGroup;
}

// Per-kind sequences (what the NDJSON files contain).
std::map<Kind, std::vector<std::string>> ByKind(const std::vector<MemorySink::Item>& items) {
  std::map<Kind, std::vector<std::string>> out;
  for (const auto& it : items) out[it.kind].push_back(it.json);
  return out;
}

void CollectReferences(const rapidjson::Value& v, std::vector<std::string>* refs) {
  if (v.IsObject()) {
    for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
      if (std::string(m->name.GetString()) == "reference" && m->value.IsString()) {
        refs->push_back(m->value.GetString());
      } else {
        CollectReferences(m->value, refs);
      }
    }
  } else if (v.IsArray()) {
    for (const auto& e : v.GetArray()) CollectReferences(e, refs);
  }
}

bool LooksLikeId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return false;
  }
  return true;
}

// --- building blocks ---------------------------------------------------------------------------

TEST(SynthPrngTest, SplitMixMatchesReferenceAndRngIsPortable) {
  uint64_t state = 0;
  EXPECT_EQ(SplitMix64Next(&state), 0xe220a8397b1dcdafULL);  // the published first output
  Rng a(1, Stream::kPatient, 5), b(1, Stream::kPatient, 5), c(1, Stream::kPatient, 6);
  for (int i = 0; i < 100; i++) {
    uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    EXPECT_NE(x, c.Next());
  }
  for (int i = 0; i < 1000; i++) {
    EXPECT_LT(a.Below(7), 7u);
    double u = a.Uniform();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
    double n = a.Normal();
    EXPECT_LE(n, 3.5);
    EXPECT_GE(n, -3.5);
  }
}

TEST(SynthClockTest, FormatsEasternTimeWithDaylightSaving) {
  std::string s;
  AppendLocalDateTime(&s, DateToSeconds(2011, 2, 2) + int64_t{21} * 3600 + int64_t{30} * 60 + 49);
  EXPECT_EQ(s, "2011-02-02T16:30:49-05:00");
  s.clear();
  AppendLocalDateTimeMillis(&s, DateToSeconds(2019, 7, 4) + int64_t{16} * 3600, 825);
  EXPECT_EQ(s, "2019-07-04T12:00:00.825-04:00");
  s.clear();
  AppendLocalDate(&s, DateToSeconds(1965, 1, 13) + int64_t{12} * 3600);
  EXPECT_EQ(s, "1965-01-13");
  s.clear();
  AppendUtcInstant(&s, DateToSeconds(2020, 12, 31) + 3599, 7);
  EXPECT_EQ(s, "2020-12-31T00:59:59.007Z");
  // US rule since 2007: second Sunday of March 2021 was March 14 (07:00 UTC = 02:00 EST).
  EXPECT_EQ(EasternOffsetSeconds(DateToSeconds(2021, 3, 14) + int64_t{6} * 3600), -18000);
  EXPECT_EQ(EasternOffsetSeconds(DateToSeconds(2021, 3, 14) + int64_t{8} * 3600), -14400);
  EXPECT_EQ(YearsBetween(DateToSeconds(2000, 6, 15), DateToSeconds(2020, 6, 14)), 19);
  EXPECT_EQ(YearsBetween(DateToSeconds(2000, 6, 15), DateToSeconds(2020, 6, 15)), 20);
}

TEST(SynthJsonOutTest, EscapesAndFormatsNumbers) {
  JsonOut j;
  j.BeginObject();
  j.KeyString("s", "a\"b\\c\nd\x01");
  j.KeyFixed("x", 181.2, 2);
  j.KeyFixed("y", 73.0, 1);
  j.KeyFixed("z", -0.125, 2);
  j.KeyInt("n", -42);
  j.Key("a");
  j.BeginArray();
  j.Bool(true);
  j.Plain("p");
  j.EndArray();
  j.EndObject();
  EXPECT_EQ(j.str(),
            "{\"s\":\"a\\\"b\\\\c\\nd\\u0001\",\"x\":181.2,\"y\":73,\"z\":-0.13,\"n\":-42,"
            "\"a\":[true,\"p\"]}");
  rapidjson::Document d;
  EXPECT_FALSE(d.Parse(j.str().c_str()).HasParseError());
}

TEST(SynthBase64Test, RoundTrips) {
  for (std::string text : {"", "a", "ab", "abc", "abcd", "Hello, world!\n\xc3\xa9"}) {
    std::string enc, dec;
    AppendBase64(&enc, text);
    ASSERT_TRUE(DecodeBase64(enc, &dec)) << enc;
    EXPECT_EQ(dec, text);
  }
  std::string enc;
  AppendBase64(&enc, "any carnal pleas");
  EXPECT_EQ(enc, "YW55IGNhcm5hbCBwbGVhcw==");
  std::string dec;
  EXPECT_FALSE(DecodeBase64("abc", &dec));
  EXPECT_FALSE(DecodeBase64("ab!=", &dec));
}

TEST(SynthGroupSpecTest, Parses) {
  auto specs = ParseGroupSpecs("all, 10%,0.5%,small");
  ASSERT_TRUE(specs.ok());
  ASSERT_EQ(specs->size(), 4u);
  EXPECT_EQ((*specs)[1].type, GroupSpec::Type::kFraction);
  EXPECT_DOUBLE_EQ((*specs)[1].fraction, 0.1);
  EXPECT_DOUBLE_EQ((*specs)[2].fraction, 0.005);
  EXPECT_TRUE(ParseGroupSpecs("none")->empty());
  EXPECT_FALSE(ParseGroupSpecs("everyone").ok());
  EXPECT_FALSE(ParseGroupSpecs("150%").ok());
  EXPECT_FALSE(ParseGroupSpecs("all,,small").ok());
}

TEST(SynthFacilityTest, PoolGrowsWithoutDependingOnN) {
  EXPECT_EQ(FacilitiesVisibleTo(0), FacilitiesVisibleTo(15));  // one block
  EXPECT_LE(FacilitiesVisibleTo(15), FacilitiesVisibleTo(16));
  EXPECT_EQ(FacilityPoolSize(100), FacilitiesVisibleTo(99));
  EXPECT_GT(FacilityPoolSize(100), 130u);  // ~1.6 per patient for small populations
  EXPECT_LT(FacilityPoolSize(100), 200u);
  EXPECT_GT(FacilityPoolSize(10000), 2000u);  // a few thousand for 10,000
  EXPECT_LT(FacilityPoolSize(10000), 4000u);
}

// --- the population ----------------------------------------------------------------------------

TEST(SynthGeneratorTest, SameSeedSameBytesOtherSeedOtherBytes) {
  auto a = Population(11, 12);
  auto b = Population(11, 12);
  auto c = Population(12, 12);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); i++) {
    ASSERT_EQ(a[i].kind, b[i].kind);
    ASSERT_EQ(a[i].json, b[i].json) << i;
  }
  std::string all_a, all_c;
  for (const auto& it : a) all_a += it.json;
  for (const auto& it : c) all_c += it.json;
  EXPECT_NE(all_a, all_c);
}

TEST(SynthGeneratorTest, PatientKIsTheSameWhateverN) {
  auto small = Population(5, 5, 0, "none");
  auto large = Population(5, 50, 0, "none");
  std::vector<std::string> small_patients, large_patients;
  for (const auto& it : small) {
    if (!IsShared(it.kind)) small_patients.push_back(it.json);
  }
  for (const auto& it : large) {
    if (!IsShared(it.kind)) large_patients.push_back(it.json);
  }
  ASSERT_GT(large_patients.size(), small_patients.size());
  for (size_t i = 0; i < small_patients.size(); i++) {
    ASSERT_EQ(small_patients[i], large_patients[i]) << i;
  }
  // And the facilities the 5 patients use are the first facilities of the larger pool.
  auto small_by_kind = ByKind(small);
  auto large_by_kind = ByKind(large);
  for (Kind k : {Kind::kOrganization, Kind::kPractitioner, Kind::kLocation}) {
    ASSERT_LE(small_by_kind[k].size(), large_by_kind[k].size());
    for (size_t i = 0; i < small_by_kind[k].size(); i++) {
      EXPECT_EQ(small_by_kind[k][i], large_by_kind[k][i]);
    }
  }
}

TEST(SynthGeneratorTest, ThreadCountDoesNotChangeTheOutput) {
  auto one = ByKind(Population(9, 40, 0));
  auto many = ByKind(Population(9, 40, 3));
  EXPECT_EQ(one, many);
}

class SynthPopulationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stats_ = new SynthStats;
    items_ =
        new std::vector<MemorySink::Item>(Population(2024, kPatients, 2, kDefaultGroups, stats_));
  }
  static void TearDownTestSuite() {
    delete items_;
    delete stats_;
  }
  static constexpr uint64_t kPatients = 200;
  static std::vector<MemorySink::Item>* items_;
  static SynthStats* stats_;
};
std::vector<MemorySink::Item>* SynthPopulationTest::items_ = nullptr;
SynthStats* SynthPopulationTest::stats_ = nullptr;

TEST_F(SynthPopulationTest, EveryResourceIsValidJsonWithTypeAndId) {
  std::set<std::string> keys;
  for (const auto& it : *items_) {
    rapidjson::Document d;
    ASSERT_FALSE(d.Parse(it.json.c_str()).HasParseError()) << it.json.substr(0, 200);
    ASSERT_TRUE(d.IsObject());
    ASSERT_TRUE(d.HasMember("resourceType") && d["resourceType"].IsString());
    EXPECT_STREQ(d["resourceType"].GetString(), KindName(it.kind));
    ASSERT_TRUE(d.HasMember("id") && d["id"].IsString());
    std::string id = d["id"].GetString();
    EXPECT_TRUE(LooksLikeId(id)) << id;
    EXPECT_TRUE(keys.insert(std::string(KindName(it.kind)) + "/" + id).second)
        << "duplicate " << id;
    ASSERT_TRUE(d.HasMember("meta") && d["meta"].HasMember("lastUpdated"));
    std::string lu = d["meta"]["lastUpdated"].GetString();
    EXPECT_GE(lu, "2010-01-01") << lu;
    EXPECT_LE(lu, "2026-07-01") << lu;
    EXPECT_EQ(it.json.find('\n'), std::string::npos);
  }
}

TEST_F(SynthPopulationTest, AllReferencesResolve) {
  std::unordered_set<std::string> keys;
  std::vector<rapidjson::Document> docs(items_->size());
  for (size_t i = 0; i < items_->size(); i++) {
    docs[i].Parse((*items_)[i].json.c_str());
    keys.insert(std::string(KindName((*items_)[i].kind)) + "/" + docs[i]["id"].GetString());
  }
  size_t checked = 0;
  std::set<std::string> kinds_referenced;
  for (const auto& d : docs) {
    std::vector<std::string> refs;
    CollectReferences(d, &refs);
    for (const std::string& r : refs) {
      if (r[0] == '#') {  // a contained resource of this one
        bool found = false;
        for (const auto& c : d["contained"].GetArray())
          found = found || r.substr(1) == c["id"].GetString();
        EXPECT_TRUE(found) << r;
        continue;
      }
      EXPECT_EQ(keys.count(r), 1u) << "unresolved " << r << " in " << d["resourceType"].GetString();
      kinds_referenced.insert(r.substr(0, r.find('/')));
      checked++;
    }
  }
  EXPECT_GT(checked, items_->size());
  for (const char* k : {"Patient", "Encounter", "Practitioner", "Organization", "Location",
                        "Condition", "Observation", "MedicationRequest", "Claim", "CareTeam"}) {
    EXPECT_EQ(kinds_referenced.count(k), 1u) << k;
  }
}

TEST_F(SynthPopulationTest, CountsPerPatientAreLikeSynthea) {
  // Synthea's sample (shared/data/synthea-r4-100): per patient and average compact bytes.
  struct Expect {
    Kind kind;
    double per_patient_lo, per_patient_hi;
    double bytes_lo, bytes_hi;
  } expected[] = {
      {Kind::kPatient, 1, 1, 2000, 3500},
      {Kind::kEncounter, 26, 48, 850, 1250},
      {Kind::kObservation, 120, 215, 600, 900},
      {Kind::kClaim, 45, 80, 1100, 1700},
      {Kind::kExplanationOfBenefit, 26, 48, 4000, 6200},
      {Kind::kMedicationRequest, 15, 35, 550, 850},
      {Kind::kProcedure, 15, 32, 500, 750},
      {Kind::kImmunization, 8, 18, 400, 600},
      {Kind::kDiagnosticReport, 6, 14, 1200, 1900},
      {Kind::kCondition, 4.5, 9, 600, 900},
      {Kind::kCarePlan, 1.8, 4.2, 1200, 1900},
      {Kind::kCareTeam, 1.8, 4.2, 1100, 1700},
      {Kind::kDocumentReference, 1, 5, 1200, 3500},
  };
  double n = static_cast<double>(kPatients);
  for (const Expect& e : expected) {
    size_t k = static_cast<size_t>(e.kind);
    double per = stats_->count[k] / n;
    double avg = stats_->count[k] ? static_cast<double>(stats_->bytes[k]) / stats_->count[k] : 0;
    EXPECT_GE(per, e.per_patient_lo) << KindName(e.kind);
    EXPECT_LE(per, e.per_patient_hi) << KindName(e.kind);
    EXPECT_GE(avg, e.bytes_lo) << KindName(e.kind);
    EXPECT_LE(avg, e.bytes_hi) << KindName(e.kind);
  }
  double per_patient = stats_->total_count() / n;
  double kb_per_patient = stats_->total_bytes() / n / 1000;
  EXPECT_GT(per_patient, 320);
  EXPECT_LT(per_patient, 470);
  EXPECT_GT(kb_per_patient, 400);
  EXPECT_LT(kb_per_patient, 600);
  EXPECT_GT(stats_->count[static_cast<size_t>(Kind::kAllergyIntolerance)], 0u);
  EXPECT_GT(stats_->count[static_cast<size_t>(Kind::kImagingStudy)], 0u);
  // Stats agree with what the sink received.
  uint64_t total = 0;
  for (const auto& it : *items_) total += it.json.size();
  EXPECT_EQ(total, stats_->total_bytes());
  EXPECT_EQ(items_->size(), stats_->total_count());
}

TEST_F(SynthPopulationTest, ClinicalDatesSpreadOverYears) {
  std::set<std::string> years, updated_years;
  for (const auto& it : *items_) {
    if (it.kind != Kind::kEncounter) continue;
    rapidjson::Document d;
    d.Parse(it.json.c_str());
    years.insert(std::string(d["period"]["start"].GetString(), 4));
    updated_years.insert(std::string(d["meta"]["lastUpdated"].GetString(), 4));
  }
  EXPECT_GE(years.size(), 30u);          // a life course: decades of history
  EXPECT_GE(updated_years.size(), 15u);  // 2010..2026
  EXPECT_EQ(years.count("2025"), 1u);
}

TEST_F(SynthPopulationTest, GroupsHoldExistingPatients) {
  std::set<std::string> patients;
  std::vector<rapidjson::Document> groups;
  for (const auto& it : *items_) {
    rapidjson::Document d;
    d.Parse(it.json.c_str());
    if (it.kind == Kind::kPatient) patients.insert(std::string("Patient/") + d["id"].GetString());
    if (it.kind == Kind::kGroup) groups.push_back(std::move(d));
  }
  ASSERT_EQ(groups.size(), 4u);  // all, 10%, 1%, small
  std::vector<size_t> sizes;
  bool saw_inactive = false, saw_period_end = false;
  for (const auto& g : groups) {
    EXPECT_STREQ(g["type"].GetString(), "person");
    EXPECT_TRUE(g["actual"].GetBool());
    size_t members = g.HasMember("member") ? g["member"].Size() : 0;
    EXPECT_EQ(static_cast<size_t>(g["quantity"].GetInt()), members);
    std::set<std::string> unique;
    if (members > 0) {
      for (const auto& m : g["member"].GetArray()) {
        std::string ref = m["entity"]["reference"].GetString();
        EXPECT_EQ(patients.count(ref), 1u) << ref;
        unique.insert(ref);
        if (m.HasMember("inactive")) saw_inactive = true;
        if (m.HasMember("period") && m["period"].HasMember("end")) saw_period_end = true;
      }
    }
    EXPECT_EQ(unique.size(), members);
    sizes.push_back(members);
  }
  EXPECT_EQ(sizes[0], kPatients);
  EXPECT_GT(sizes[1], kPatients / 20);  // ~10%
  EXPECT_LT(sizes[1], kPatients / 5);
  EXPECT_LT(sizes[2], sizes[1]);  // ~1%
  EXPECT_EQ(sizes[3], 20u);
  EXPECT_TRUE(saw_inactive);
  EXPECT_TRUE(saw_period_end);
}

TEST(SynthSha1Test, KnownVectors) {
  auto b64 = [](std::string_view s) {
    const std::array<uint8_t, 20> h = Sha1(s);
    std::string out;
    AppendBase64(&out, std::string_view(reinterpret_cast<const char*>(h.data()), h.size()));
    return out;
  };
  EXPECT_EQ(b64(""), "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
  EXPECT_EQ(b64("abc"), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
  // 56 bytes: the padding needs a second block.
  EXPECT_EQ(b64("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "hJg+RBw70m66rkqh+VEp5eVGcPE=");
}

// Every attachment is inline (the IG: attachment URLs must be dereferenceable), with size and
// hash (base64 SHA-1) of the decoded bytes.
TEST_F(SynthPopulationTest, DocumentAttachmentsDecode) {
  int docs = 0;
  for (const auto& it : *items_) {
    if (it.kind != Kind::kDocumentReference) continue;
    rapidjson::Document d;
    d.Parse(it.json.c_str());
    const auto& a = d["content"][0]["attachment"];
    EXPECT_STREQ(a["contentType"].GetString(), "text/plain");
    EXPECT_FALSE(a.HasMember("url"));
    ASSERT_TRUE(a.HasMember("data"));
    std::string text;
    ASSERT_TRUE(DecodeBase64(a["data"].GetString(), &text));
    EXPECT_NE(text.find("# Chief Complaint"), std::string::npos);
    EXPECT_NE(text.find("# Assessment and Plan"), std::string::npos);
    EXPECT_EQ(a["size"].GetInt64(), static_cast<int64_t>(text.size()));
    const std::array<uint8_t, 20> h = Sha1(text);
    std::string hash;
    AppendBase64(&hash, std::string_view(reinterpret_cast<const char*>(h.data()), h.size()));
    EXPECT_EQ(a["hash"].GetString(), hash);
    docs++;
  }
  EXPECT_GT(docs, 0);
}

TEST_F(SynthPopulationTest, ObservationsCarryCodesAndUnits) {
  int quantities = 0, components = 0, concepts = 0;
  std::set<std::string> categories;
  for (const auto& it : *items_) {
    if (it.kind != Kind::kObservation) continue;
    rapidjson::Document d;
    d.Parse(it.json.c_str());
    EXPECT_STREQ(d["code"]["coding"][0]["system"].GetString(), "http://loinc.org");
    categories.insert(d["category"][0]["coding"][0]["code"].GetString());
    if (d.HasMember("valueQuantity")) {
      EXPECT_STREQ(d["valueQuantity"]["system"].GetString(), "http://unitsofmeasure.org");
      EXPECT_TRUE(d["valueQuantity"]["value"].IsNumber());
      quantities++;
    }
    if (d.HasMember("component")) components++;
    if (d.HasMember("valueCodeableConcept")) concepts++;
  }
  EXPECT_GT(quantities, 1000);
  EXPECT_GT(components, 100);
  EXPECT_GT(concepts, 100);
  for (const char* c : {"vital-signs", "laboratory", "survey"}) EXPECT_EQ(categories.count(c), 1u);
}

// --- files -------------------------------------------------------------------------------------

TEST(SynthNdjsonDirSinkTest, WritesOneFilePerTypeMatchingTheStats) {
  char tmpl[] = "/tmp/synth_test_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = std::string(tmpl) + "/out";  // created by the sink
  SynthOptions o;
  o.seed = 3;
  o.patients = 10;
  o.threads = 2;
  o.groups = *ParseGroupSpecs("all,small");
  auto sink = NdjsonDirSink::Open(dir);
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  SynthStats stats;
  ASSERT_TRUE(Generate(o, sink->get(), &stats).ok());
  for (size_t k = 0; k < kKindCount; k++) {
    std::string path = dir + "/" + KindName(static_cast<Kind>(k)) + ".ndjson";
    std::ifstream in(path);
    if (stats.count[k] == 0) {
      EXPECT_FALSE(in.good()) << path;
      continue;
    }
    ASSERT_TRUE(in.good()) << path;
    uint64_t lines = 0, bytes = 0;
    std::string line;
    while (std::getline(in, line)) {
      lines++;
      bytes += line.size();
    }
    EXPECT_EQ(lines, stats.count[k]) << path;
    EXPECT_EQ(bytes, stats.bytes[k]) << path;
    std::remove(path.c_str());
  }
  EXPECT_EQ(stats.count[static_cast<size_t>(Kind::kPatient)], 10u);
  rmdir(dir.c_str());
  rmdir(tmpl);
}

TEST(SynthNdjsonDirSinkTest, FailsOnAPathThatIsAFile) {
  auto sink = NdjsonDirSink::Open("/proc/version");
  EXPECT_FALSE(sink.ok());
}

}  // namespace
}  // namespace synth
}  // namespace fhirbulk
