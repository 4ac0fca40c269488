// The loader against PostgreSQL: versions, tombstones, Group members, rejections, and the
// Synthea sample. Needs FHIRBULK_TEST_PG (make test sets it); each test works in a schema of
// its own, so tests may run in parallel with each other and with other suites.

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include "load/loader.h"
#include "test_db.h"
#include "util/fhir_time.h"

namespace fhirbulk {
namespace {

namespace fs = std::filesystem;

const char* const kSyntheaDir = FHIRBULK_SOURCE_DIR "/../shared/data/synthea-r4-100";

class LoaderDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FHIRBULK_REQUIRE_TEST_DB();
    // Every connection of this test (ours and the loader's) works in its own schema.
    Status s = schema_.Enter("loader_test");
    ASSERT_TRUE(s.ok()) << s.ToString();
    conn_ = ConnectTestDb();  // migrates the schema
    ASSERT_NE(conn_, nullptr);
    dir_ = (fs::temp_directory_path() / schema_.name()).string();
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (schema_.name().empty()) return;
    conn_.reset();
    schema_.Leave();
    fs::remove_all(dir_);
  }

  std::string WriteFile(const std::string& name, const std::string& content) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  // Runs one load; body adds inputs. Returns the report; the load must not fail.
  template <typename Body>
  LoadReport Load(Body body, size_t batch = 5000) {
    LoadOptions options;
    options.conninfo = TestConninfo();
    options.batch_resources = batch;
    options.keep_source_last_updated = keep_last_updated_;
    options.writers = writers_;
    auto loader = Loader::Open(options);
    EXPECT_TRUE(loader.ok()) << loader.status().ToString();
    LoadReport report;
    if (!loader.ok()) return report;
    body(loader->get());
    Status s = (*loader)->Finish(&report);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return report;
  }
  LoadReport LoadJson(const std::string& json) {
    return Load([&](Loader* l) { ASSERT_TRUE(l->AddResourceJson(json, "test", 1).ok()); });
  }

  std::string Query(const std::string& sql) {
    auto r = conn_->Exec(sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    if (!r.ok() || r->rows() == 0) return "<none>";
    return r->is_null(0, 0) ? "<null>" : r->str(0, 0);
  }
  long long Count(const std::string& sql) { return std::stoll(Query(sql)); }

  struct Row {
    long long version = 0;
    std::string last_updated;  // as epoch microseconds
    bool deleted = false;
    std::string body;  // "<null>" for tombstones
    std::string patients, tokens;
  };
  Row Get(const std::string& type, const std::string& id) {
    auto r = conn_->Exec(
        "SELECT version, (extract(epoch FROM last_updated) * 1000000)::int8, deleted, body, "
        "patients::text, tokens::text FROM resource WHERE res_type = $1 AND res_id = $2",
        {type, id});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    Row row;
    if (!r.ok() || r->rows() != 1) return row;
    row.version = r->int64(0, 0);
    row.last_updated = r->str(0, 1);
    row.deleted = r->get(0, 2) == "t";
    row.body = r->is_null(0, 3) ? "<null>" : r->str(0, 3);
    row.patients = r->str(0, 4);
    row.tokens = r->str(0, 5);
    return row;
  }

  // The meta the body claims must be the row's version and last_updated.
  void ExpectMetaMatchesRow(const Row& row) {
    std::string want_version = "\"versionId\":\"" + std::to_string(row.version) + "\"";
    EXPECT_NE(row.body.find(want_version), std::string::npos) << row.body;
    size_t at = row.body.find("\"lastUpdated\":\"");
    ASSERT_NE(at, std::string::npos);
    at += 15;
    auto instant = ParseInstant(row.body.substr(at, row.body.find('"', at) - at));
    ASSERT_TRUE(instant.ok());
    EXPECT_EQ(std::to_string(*instant), row.last_updated);
  }

  // The database clock now, as epoch microseconds.
  long long DbClock() {
    return Count("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::int8");
  }

  TestSchema schema_;
  std::string dir_;
  bool keep_last_updated_ = false;       // LoadOptions::keep_source_last_updated for Load()
  int writers_ = LoadOptions().writers;  // LoadOptions::writers for Load()
  std::unique_ptr<PgConnection> conn_;
};

const char* kPatientV1 = R"({"resourceType":"Patient","id":"p1","meta":{"profile":["http://x/p"]},)"
                         R"("identifier":[{"system":"http://mrn","value":"42"}],"gender":"male"})";
const char* kPatientV2 =
    R"({"resourceType":"Patient","id":"p1","meta":{"profile":["http://x/p"]},)"
    R"("identifier":[{"system":"http://mrn","value":"42"}],"gender":"female"})";

TEST_F(LoaderDbTest, VersionsUnchangedChangedDeletedUndeleted) {
  LoadReport r = LoadJson(kPatientV1);
  EXPECT_EQ(r.by_type["Patient"].loaded, 1u);
  Row v1 = Get("Patient", "p1");
  EXPECT_EQ(v1.version, 1);
  EXPECT_FALSE(v1.deleted);
  EXPECT_EQ(v1.patients, "{p1}");
  EXPECT_NE(v1.tokens.find("identifier=http://mrn|42"), std::string::npos) << v1.tokens;
  EXPECT_EQ(v1.body.rfind(R"({"resourceType":"Patient","id":"p1","meta":{"versionId":"1",)", 0), 0u)
      << v1.body;
  EXPECT_NE(v1.body.find(R"("profile":["http://x/p"]},"identifier")"), std::string::npos);
  ExpectMetaMatchesRow(v1);

  // The same content again, even with other versionId/lastUpdated in meta: nothing changes.
  r = LoadJson(
      R"({"resourceType":"Patient","id":"p1","meta":{"versionId":"77","lastUpdated":"2001-01-01T00:00:00Z","profile":["http://x/p"]},)"
      R"("identifier":[{"system":"http://mrn","value":"42"}],"gender":"male"})");
  EXPECT_EQ(r.by_type["Patient"].unchanged, 1u);
  EXPECT_EQ(r.by_type["Patient"].loaded, 0u);
  Row same = Get("Patient", "p1");
  EXPECT_EQ(same.version, 1);
  EXPECT_EQ(same.last_updated, v1.last_updated);
  EXPECT_EQ(same.body, v1.body);

  r = LoadJson(kPatientV2);
  EXPECT_EQ(r.by_type["Patient"].loaded, 1u);
  Row v2 = Get("Patient", "p1");
  EXPECT_EQ(v2.version, 2);
  EXPECT_GT(std::stoll(v2.last_updated), std::stoll(v1.last_updated));
  EXPECT_NE(v2.body.find("female"), std::string::npos);
  ExpectMetaMatchesRow(v2);

  r = Load([](Loader* l) { ASSERT_TRUE(l->Delete("Patient", "p1").ok()); });
  EXPECT_EQ(r.by_type["Patient"].deleted, 1u);
  Row v3 = Get("Patient", "p1");
  EXPECT_EQ(v3.version, 3);
  EXPECT_TRUE(v3.deleted);
  EXPECT_EQ(v3.body, "<null>");
  EXPECT_EQ(v3.patients, "{p1}") << "tombstones stay in their patients' compartments";
  EXPECT_EQ(v3.tokens, "{}");
  EXPECT_GT(std::stoll(v3.last_updated), std::stoll(v2.last_updated));

  // Deleting again, or deleting what never existed, is reported, not an error.
  r = Load([](Loader* l) {
    ASSERT_TRUE(l->Delete("Patient", "p1").ok());
    ASSERT_TRUE(l->Delete("Observation", "never").ok());
  });
  EXPECT_EQ(r.by_type["Patient"].absent, 1u);
  EXPECT_EQ(r.by_type["Observation"].absent, 1u);
  EXPECT_EQ(r.absent_deletions, (std::vector<std::string>{"Patient/p1", "Observation/never"}));
  EXPECT_EQ(Get("Patient", "p1").version, 3);

  // The same content as before the deletion comes back as a new version.
  r = LoadJson(kPatientV2);
  EXPECT_EQ(r.by_type["Patient"].loaded, 1u);
  Row v4 = Get("Patient", "p1");
  EXPECT_EQ(v4.version, 4);
  EXPECT_FALSE(v4.deleted);
  ExpectMetaMatchesRow(v4);
}

TEST_F(LoaderDbTest, OneBatchSharesATimestampAfterItsTransactionId) {
  writers_ = 1;  // one batch, one transaction: with several writers, one per writer
  LoadReport r = Load(
      [](Loader* l) {
        for (int i = 0; i < 5; i++) {
          std::string json = R"({"resourceType":"Patient","id":"b)" + std::to_string(i) + "\"}";
          ASSERT_TRUE(l->AddResourceJson(json, "test", i + 1).ok());
        }
      },
      2);
  EXPECT_EQ(r.total_loaded(), 5u);
  // Batches of 2: three transactions, three distinct timestamps, rising with xmin.
  EXPECT_EQ(Count("SELECT count(DISTINCT last_updated) FROM resource"), 3);
  EXPECT_EQ(Count("SELECT count(DISTINCT xmin::text) FROM resource"), 3);
  EXPECT_EQ(Count("SELECT count(*) FROM (SELECT xmin::text::bigint x, last_updated, "
                  "lag(last_updated) OVER (ORDER BY xmin::text::bigint) prev FROM resource) s "
                  "WHERE prev > last_updated"),
            0);
}

// Patients whose meta.lastUpdated is old (twice: in UTC and with an offset), in the future,
// malformed in two ways, and absent.
std::string LastUpdatedVariety() {
  auto patient = [](const std::string& id, const std::string& meta) {
    return R"({"resourceType":"Patient","id":")" + id + R"(")" + meta + R"(,"gender":"male"})";
  };
  return patient("old", R"(,"meta":{"lastUpdated":"2015-03-04T05:06:07.123Z"})") + "\n" +
         patient("offset", R"(,"meta":{"lastUpdated":"2015-03-04T07:06:07.123+02:00"})") + "\n" +
         patient("future", R"(,"meta":{"lastUpdated":"2999-01-01T00:00:00Z"})") + "\n" +
         patient("bad", R"(,"meta":{"lastUpdated":"2015-02-30T00:00:00Z"})") + "\n" +
         patient("number", R"(,"meta":{"lastUpdated":1425445567})") + "\n" + patient("none", "") +
         "\n";
}

constexpr long long kOldUs = 1425445567123000;  // 2015-03-04T05:06:07.123Z

TEST_F(LoaderDbTest, KeepLastUpdatedStoresTheSourceInstantIfNotInTheFuture) {
  writers_ = 1;  // one batch, one transaction: with several writers, one per writer
  std::string path = WriteFile("p.ndjson", LastUpdatedVariety());
  keep_last_updated_ = true;
  const long long before = DbClock();
  LoadReport r = Load([&](Loader* l) { ASSERT_TRUE(l->AddPath(path).ok()); });
  const long long after = DbClock();
  EXPECT_EQ(r.total_loaded(), 6u);
  EXPECT_EQ(r.total_rejected(), 0u) << "a bad lastUpdated falls back to the clock";

  for (const char* id : {"old", "offset"}) {
    Row row = Get("Patient", id);
    EXPECT_EQ(row.version, 1);
    EXPECT_EQ(row.last_updated, std::to_string(kOldUs)) << id;
    EXPECT_NE(row.body.find(R"("meta":{"versionId":"1","lastUpdated":"2015-03-04T05:06:07.123Z"})"),
              std::string::npos)
        << row.body;
    ExpectMetaMatchesRow(row);
  }
  EXPECT_EQ(Query("SELECT last_updated AT TIME ZONE 'UTC' FROM resource WHERE res_id = 'old'"),
            "2015-03-04 05:06:07.123");
  // The rest took the batch's clock: one value, read during the load.
  const std::string clock = Get("Patient", "none").last_updated;
  EXPECT_GE(std::stoll(clock), before);
  EXPECT_LE(std::stoll(clock), after);
  for (const char* id : {"future", "bad", "number"}) {
    Row row = Get("Patient", id);
    EXPECT_EQ(row.last_updated, clock) << id;
    EXPECT_EQ(row.body.find("2999-"), std::string::npos) << row.body;
    ExpectMetaMatchesRow(row);
  }

  // Deletions take the clock, whatever the option.
  const long long before_delete = DbClock();
  r = Load([](Loader* l) { ASSERT_TRUE(l->Delete("Patient", "old").ok()); });
  EXPECT_EQ(r.total_deleted(), 1u);
  Row tomb = Get("Patient", "old");
  EXPECT_TRUE(tomb.deleted);
  EXPECT_GE(std::stoll(tomb.last_updated), before_delete);
}

TEST_F(LoaderDbTest, WithoutKeepLastUpdatedTheClockIsUsed) {
  writers_ = 1;  // one batch, one transaction: with several writers, one per writer
  std::string path = WriteFile("p.ndjson", LastUpdatedVariety());
  const long long before = DbClock();
  LoadReport r = Load([&](Loader* l) { ASSERT_TRUE(l->AddPath(path).ok()); });
  EXPECT_EQ(r.total_loaded(), 6u);
  EXPECT_EQ(Count("SELECT count(DISTINCT last_updated) FROM resource"), 1);
  Row old = Get("Patient", "old");
  EXPECT_GE(std::stoll(old.last_updated), before);
  EXPECT_EQ(old.body.find("2015-03-04"), std::string::npos) << old.body;
  ExpectMetaMatchesRow(old);
}

TEST_F(LoaderDbTest, KeepLastUpdatedLeavesUnchangedResourcesAlone) {
  std::string path = WriteFile("p.ndjson", LastUpdatedVariety());
  keep_last_updated_ = true;
  Load([&](Loader* l) { ASSERT_TRUE(l->AddPath(path).ok()); });
  const std::string snapshot_sql =
      "SELECT string_agg(res_id || ':' || version || ':' || last_updated || ':' || md5(body), "
      "',' ORDER BY res_id) FROM resource";
  const std::string before = Query(snapshot_sql);

  // The same files again, with and without the option: all unchanged, nothing rewritten.
  LoadReport again = Load([&](Loader* l) { ASSERT_TRUE(l->AddPath(path).ok()); });
  EXPECT_EQ(again.total_unchanged(), 6u);
  EXPECT_EQ(again.total_loaded(), 0u);
  keep_last_updated_ = false;
  again = Load([&](Loader* l) { ASSERT_TRUE(l->AddPath(path).ok()); });
  EXPECT_EQ(again.total_unchanged(), 6u);
  EXPECT_EQ(Query(snapshot_sql), before);

  // Another lastUpdated with the same content is no change either.
  keep_last_updated_ = true;
  again = LoadJson(
      R"({"resourceType":"Patient","id":"old","meta":{"lastUpdated":"2020-01-01T00:00:00Z"},)"
      R"("gender":"male"})");
  EXPECT_EQ(again.total_unchanged(), 1u);
  EXPECT_EQ(Query(snapshot_sql), before);

  // Changed content is a new version with the new source instant.
  LoadReport changed = LoadJson(
      R"({"resourceType":"Patient","id":"old","meta":{"lastUpdated":"2016-07-08T09:10:11Z"},)"
      R"("gender":"female"})");
  EXPECT_EQ(changed.total_loaded(), 1u);
  Row v2 = Get("Patient", "old");
  EXPECT_EQ(v2.version, 2);
  EXPECT_EQ(v2.last_updated, std::to_string(*ParseInstant("2016-07-08T09:10:11Z")));
  EXPECT_NE(v2.body.find(R"("lastUpdated":"2016-07-08T09:10:11Z")"), std::string::npos) << v2.body;
  ExpectMetaMatchesRow(v2);

  // A change whose source instant is older than the stored version's gets the clock: a
  // resource's last_updated never goes back, or a _since export in between would miss it.
  LoadJson(R"({"resourceType":"Patient","id":"old","meta":{"lastUpdated":"2012-01-01T00:00:00Z"},)"
           R"("gender":"other"})");
  Row v3 = Get("Patient", "old");
  EXPECT_EQ(v3.version, 3);
  EXPECT_GT(std::stoll(v3.last_updated), std::stoll(v2.last_updated));
  EXPECT_EQ(v3.body.find("2012-01-01"), std::string::npos) << v3.body;
  ExpectMetaMatchesRow(v3);
}

TEST_F(LoaderDbTest, GroupMembersFollowTheGroup) {
  auto group = [](const std::string& members) {
    return R"({"resourceType":"Group","id":"g1","type":"person","actual":true,"member":[)" +
           members + "]}";
  };
  LoadJson(group(
      R"({"entity":{"reference":"Patient/a"}},{"entity":{"reference":"Patient/b"},"inactive":true},)"
      R"({"entity":{"reference":"Patient/c"},"period":{"start":"2020-01-01"}})"));
  EXPECT_EQ(Query("SELECT string_agg(patient_id || ':' || inactive || ':' || "
                  "coalesce(to_char(period_start AT TIME ZONE 'UTC', 'YYYY-MM-DD'), '-'), ',' "
                  "ORDER BY member_index) FROM group_member WHERE group_id = 'g1'"),
            "a:false:-,b:true:-,c:false:2020-01-01");
  LoadJson(group(R"({"entity":{"reference":"Patient/d"}})"));
  EXPECT_EQ(Query("SELECT string_agg(patient_id, ',') FROM group_member"), "d");
  Load([](Loader* l) { ASSERT_TRUE(l->Delete("Group", "g1").ok()); });
  EXPECT_EQ(Count("SELECT count(*) FROM group_member"), 0);
}

TEST_F(LoaderDbTest, RejectionsAreReportedAndTheRestLoads) {
  std::string ndjson = WriteFile(
      "in.ndjson",
      std::string(R"({"resourceType":"Patient","id":"ok1"})") + "\n" +
          R"({"resourceType":"Patient","id":"bad id"})" + "\n" + "{not json\n" +
          R"({"resourceType":"Observation","id":"ok2","status":"final","code":{"text":"x"}})" +
          "\n");
  std::string bundle =
      WriteFile("b.json", R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"fullUrl":"urn:uuid:00000000-0000-0000-0000-000000000001",
     "resource":{"resourceType":"Patient","id":"00000000-0000-0000-0000-000000000001"}},
    {"fullUrl":"urn:uuid:00000000-0000-0000-0000-000000000002",
     "resource":{"resourceType":"Encounter","id":"e1",
       "subject":{"reference":"urn:uuid:00000000-0000-0000-0000-000000000001"},
       "participant":[{"individual":{"reference":"urn:uuid:00000000-0000-0000-0000-0000000000ff"}}]}},
    {"resource":{"resourceType":"Encounter","id":"e2",
       "subject":{"reference":"urn:uuid:00000000-0000-0000-0000-000000000001"}}}]})");
  LoadReport r = Load([&](Loader* l) { ASSERT_TRUE(l->AddPaths({ndjson, bundle}).ok()); });
  ASSERT_EQ(r.rejections.size(), 3u);
  EXPECT_EQ(r.rejections[0].source, ndjson);
  EXPECT_EQ(r.rejections[0].location, "line 2");
  EXPECT_NE(r.rejections[0].reason.find("invalid id"), std::string::npos);
  EXPECT_EQ(r.rejections[1].location, "line 3");
  EXPECT_NE(r.rejections[1].reason.find("invalid JSON"), std::string::npos);
  EXPECT_EQ(r.rejections[2].source, bundle);
  EXPECT_EQ(r.rejections[2].location, "entry 1");
  EXPECT_NE(r.rejections[2].reason.find("urn:uuid:00000000-0000-0000-0000-0000000000ff"),
            std::string::npos);
  EXPECT_EQ(r.total_loaded(), 4u);
  EXPECT_EQ(r.total_rejected(), 3u);
  // Exactly the good resources are stored; nothing of the rejected Encounter.
  EXPECT_EQ(
      Query("SELECT string_agg(res_type || '/' || res_id, ',' ORDER BY res_type, res_id) "
            "FROM resource"),
      "Encounter/e2,Observation/ok2,Patient/00000000-0000-0000-0000-000000000001,Patient/ok1");
  EXPECT_EQ(Query("SELECT patients::text FROM resource WHERE res_id = 'e2'"),
            "{00000000-0000-0000-0000-000000000001}");
}

TEST_F(LoaderDbTest, UrnUuidOfAStoredResourceResolvesInALaterLoad) {
  Load([&](Loader* l) {
    ASSERT_TRUE(
        l->AddResourceJson(
             R"({"resourceType":"Patient","id":"6c5d9ca9-54d7-42f5-bfae-a7c19cd217f2"})", "test", 1)
            .ok());
  });
  LoadReport r = LoadJson(R"({"resourceType":"Group","id":"g","type":"person","actual":true,
      "member":[{"entity":{"reference":"urn:uuid:6c5d9ca9-54d7-42f5-bfae-a7c19cd217f2"}}]})");
  EXPECT_EQ(r.total_rejected(), 0u);
  EXPECT_EQ(Query("SELECT patient_id FROM group_member"), "6c5d9ca9-54d7-42f5-bfae-a7c19cd217f2");
  EXPECT_NE(
      Get("Group", "g").body.find(R"("reference":"Patient/6c5d9ca9-54d7-42f5-bfae-a7c19cd217f2")"),
      std::string::npos);
}

// Several writers split each batch by Type/id. Three versions of each resource in a row: the
// loader puts each into the next batch, so consecutive batches hold the same ids and any writer
// other than the id's own would race it. Each ends at version 3 with the last content.
TEST_F(LoaderDbTest, SeveralWritersApplyEachResourcesWritesInOrder) {
  writers_ = 4;
  constexpr int kIds = 150;
  LoadReport r = Load([](Loader* l) {
    for (int i = 0; i < kIds; i++) {
      for (int round = 0; round < 3; round++) {
        std::string json = R"({"resourceType":"Patient","id":"w)" + std::to_string(i) +
                           R"(","birthDate":"19)" + std::to_string(10 + round) + R"(-01-01"})";
        ASSERT_TRUE(l->AddResourceJson(json, "t", i * 3 + round + 1).ok());
      }
    }
  });
  EXPECT_EQ(r.total_loaded(), 3u * kIds);
  EXPECT_EQ(Count("SELECT count(*) FROM resource"), kIds);
  EXPECT_EQ(Count("SELECT count(*) FROM resource WHERE version <> 3"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM resource WHERE body NOT LIKE "
                  "'%\"birthDate\":\"1912-01-01\"%'"),
            0);
}

TEST_F(LoaderDbTest, ConcurrentLoadersKeepVersionsConsistent) {
  // Two loaders write different content to the same resources at the same time; the
  // version guard makes one of them retry, so every write is its own version.
  auto writer = [](const std::string& gender, Status* status) {
    LoadOptions options;
    options.conninfo = TestConninfo();
    options.batch_resources = 50;
    auto loader = Loader::Open(options);
    if (!loader.ok()) {
      *status = loader.status();
      return;
    }
    for (int round = 0; round < 3; round++) {
      for (int i = 0; i < 200; i++) {
        std::string json = R"({"resourceType":"Patient","id":"c)" + std::to_string(i) +
                           R"(","gender":")" + gender + R"(","birthDate":"19)" +
                           std::to_string(10 + round) + R"(-01-01"})";
        Status s = (*loader)->AddResourceJson(json, "t", i + 1);
        if (!s.ok()) *status = s;
      }
    }
    LoadReport report;
    Status s = (*loader)->Finish(&report);
    if (!s.ok()) *status = s;
  };
  Status a, b;
  std::thread ta(writer, "male", &a), tb(writer, "female", &b);
  ta.join();
  tb.join();
  ASSERT_TRUE(a.ok()) << a.ToString();
  ASSERT_TRUE(b.ok()) << b.ToString();
  EXPECT_EQ(Count("SELECT count(*) FROM resource"), 200);
  // Each write differs from whatever is stored (the loaders disagree on gender, and each
  // writes three birth dates): six writes, six versions, none lost to a race.
  EXPECT_EQ(Count("SELECT count(*) FROM resource WHERE version <> 6"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM resource "
                  "WHERE body NOT LIKE '%\"versionId\":\"' || version || '\"%'"),
            0);
}

TEST_F(LoaderDbTest, SyntheaLoadsExactlyAndIdempotently) {
  if (!fs::is_directory(kSyntheaDir)) GTEST_SKIP() << "no " << kSyntheaDir;
  LoadReport first = Load([](Loader* l) { ASSERT_TRUE(l->AddPath(kSyntheaDir).ok()); });
  EXPECT_EQ(first.total_rejected(), 0u);
  EXPECT_EQ(first.total_loaded() + first.total_unchanged(), 38971u);  // entries + the Group
  const std::map<std::string, long long> expected = {{"Observation", 16315},
                                                     {"Claim", 6083},
                                                     {"Encounter", 3697},
                                                     {"ExplanationOfBenefit", 3697},
                                                     {"MedicationRequest", 2386},
                                                     {"Procedure", 2351},
                                                     {"Immunization", 1287},
                                                     {"DiagnosticReport", 897},
                                                     {"Condition", 639},
                                                     {"Organization", 203},
                                                     {"Practitioner", 203},
                                                     {"CareTeam", 278},
                                                     {"CarePlan", 278},
                                                     {"Patient", 100},
                                                     {"AllergyIntolerance", 38},
                                                     {"ImagingStudy", 16},
                                                     {"Device", 4},
                                                     {"Group", 1}};
  std::map<std::string, long long> counts;
  auto rows = conn_->Exec("SELECT res_type, count(DISTINCT res_id) FROM resource GROUP BY 1");
  ASSERT_TRUE(rows.ok());
  for (int i = 0; i < rows->rows(); i++) counts[rows->str(i, 0)] = rows->int64(i, 1);
  EXPECT_EQ(counts, expected);

  // No reference is left as urn:uuid. The one urn:uuid text left is the Group's identifier
  // (system urn:ietf:rfc:3986): data, not a reference.
  EXPECT_EQ(Count("SELECT count(*) FROM resource WHERE body LIKE '%\"reference\":\"urn:uuid:%'"),
            0);
  EXPECT_EQ(Query("SELECT string_agg(res_type, ',') FROM resource WHERE body LIKE '%urn:uuid:%'"),
            "Group");
  EXPECT_EQ(
      Count("SELECT count(*) FROM resource WHERE res_type = 'Group' AND "
            "body::jsonb #>> '{identifier,0,value}' LIKE 'urn:uuid:%' AND "
            "replace(body, body::jsonb #>> '{identifier,0,value}', '') NOT LIKE '%urn:uuid:%'"),
      1);
  // Every Encounter is in the compartment of the Patient its subject references.
  EXPECT_EQ(Count("SELECT count(*) FROM resource WHERE res_type = 'Encounter' AND NOT "
                  "(patients @> ARRAY[split_part(body::jsonb #>> '{subject,reference}', '/', 2)] "
                  "AND body::jsonb #>> '{subject,reference}' LIKE 'Patient/%')"),
            0);
  EXPECT_EQ(Count("SELECT count(*) FROM group_member g JOIN resource r ON r.res_type = 'Patient' "
                  "AND r.res_id = g.patient_id"),
            100);
  // The Organization that wins is the full copy of hospitalInformation (with extensions).
  EXPECT_EQ(Count("SELECT count(*) FROM resource WHERE res_type = 'Organization' AND "
                  "body NOT LIKE '%utilization-encounters-extension%'"),
            0);
  EXPECT_EQ(Count("SELECT count(*) FROM resource WHERE version <> 1"), 0);

  const std::string snapshot_sql =
      "SELECT md5(string_agg(res_type || res_id || version || last_updated || "
      "encode(content_hash, 'hex') || md5(body), ',' ORDER BY res_type, res_id)) FROM resource";
  const std::string members_sql =
      "SELECT md5(string_agg(group_id || member_index || patient_id, ',' "
      "ORDER BY group_id, member_index)) FROM group_member";
  std::string before = Query(snapshot_sql), members_before = Query(members_sql);
  LoadReport second = Load([](Loader* l) { ASSERT_TRUE(l->AddPath(kSyntheaDir).ok()); });
  EXPECT_EQ(second.total_loaded(), 0u);
  EXPECT_EQ(second.total_unchanged(), 38971u);
  EXPECT_EQ(Query(snapshot_sql), before);
  EXPECT_EQ(Query(members_sql), members_before);
}

}  // namespace
}  // namespace fhirbulk
