// The export engine against a real database: planning, units, files, leases, cancellation,
// failures and the janitor. Needs FHIRBULK_TEST_PG (see test_db.h).

#include "export/job_dir.h"
#include "worker/worker.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "export/job_store.h"
#include "export/manifest.h"
#include "export/type_filter_sql.h"
#include "schema_db_test.h"
#include "test_gzip.h"
#include "worker/ndjson_writer.h"
#include "worker/unit_runner.h"

namespace fhirbulk {
namespace {

namespace fs = std::filesystem;

// ---- pure parts of the unit runner -------------------------------------------------------

std::string BinaryCopyStream(const std::vector<std::vector<std::optional<std::string>>>& rows) {
  std::string s("PGCOPY\n\377\r\n\0", 11);
  auto u32 = [&](uint32_t v) {
    v = htonl(v);
    s.append(reinterpret_cast<const char*>(&v), 4);
  };
  auto u16 = [&](uint16_t v) {
    v = htons(v);
    s.append(reinterpret_cast<const char*>(&v), 2);
  };
  u32(0);
  u32(4);  // a header extension the parser must skip
  s.append("ext!");
  for (const auto& row : rows) {
    u16(static_cast<uint16_t>(row.size()));
    for (const auto& f : row) {
      if (!f) {
        u32(0xffffffffu);
      } else {
        u32(static_cast<uint32_t>(f->size()));
        s += *f;
      }
    }
  }
  u16(0xffff);
  return s;
}

TEST(WorkerCopyParserTest, ParsesAnyChunking) {
  std::string big(70000, 'b');
  std::string stream = BinaryCopyStream(
      {{std::string("{\"a\":1}")}, {std::string(""), std::nullopt}, {big}, {std::string("x\ny")}});
  for (size_t chunk : {stream.size(), size_t{1}, size_t{3}, size_t{7}, size_t{4096}}) {
    CopyBinaryParser p;
    std::vector<std::string> seen;
    int nulls = 0;
    for (size_t i = 0; i < stream.size(); i += chunk) {
      Status s = p.Feed(std::string_view(stream).substr(i, chunk),
                        [&](const std::vector<CopyBinaryParser::Field>& f) {
                          for (const auto& x : f) {
                            if (x.null)
                              nulls++;
                            else
                              seen.emplace_back(x.bytes);
                          }
                          return Status::OK();
                        });
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    EXPECT_TRUE(p.finished());
    EXPECT_EQ(p.rows(), 4);
    ASSERT_EQ(seen.size(), 4u);
    EXPECT_EQ(seen[0], "{\"a\":1}");
    EXPECT_EQ(seen[1], "");
    EXPECT_EQ(seen[2], big);
    EXPECT_EQ(seen[3], "x\ny");
    EXPECT_EQ(nulls, 1);
  }
}

TEST(WorkerCopyParserTest, RejectsGarbageAndStopsOnCallbackError) {
  CopyBinaryParser p;
  auto ok = [](const std::vector<CopyBinaryParser::Field>&) { return Status::OK(); };
  EXPECT_EQ(p.Feed("NOTPGCOPY-----------------", ok).code(), Status::Code::kCorruption);
  CopyBinaryParser q;
  std::string stream = BinaryCopyStream({{std::string("a")}, {std::string("b")}});
  int calls = 0;
  Status s = q.Feed(stream, [&](const std::vector<CopyBinaryParser::Field>&) {
    return ++calls == 1 ? Status::IOError("disk full") : Status::OK();
  });
  EXPECT_EQ(s.code(), Status::Code::kIOError);
  EXPECT_EQ(calls, 1);
  CopyBinaryParser r;
  EXPECT_EQ(r.Feed(stream + "x", ok).code(), Status::Code::kCorruption);  // after the trailer
}

// The names in a directory, sorted, space-separated.
std::string Listing(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    names.insert(f.path().filename().string());
  }
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : " ") + n;
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---- fixture --------------------------------------------------------------------------------

class WorkerDbTest : public SchemaDbTest {
 protected:
  WorkerDbTest() : SchemaDbTest("worker") {}

  // age: how long ago it was last updated (an interval; "-1 hour" is in the future).
  void Put(const std::string& type, const std::string& id, std::vector<std::string> patients = {},
           std::vector<std::string> outrefs = {}, const std::string& age = "1 day",
           const std::string& extra = "", std::vector<std::string> tokens = {}) {
    std::string body = "{\"resourceType\":\"" + type + "\",\"id\":\"" + id + "\"" +
                       (extra.empty() ? "" : "," + extra) + "}";
    Exec(
        "INSERT INTO resource (res_type, res_id, version, last_updated, body, patients, outrefs, "
        "tokens) VALUES ($1, $2, 1, clock_timestamp() - $3::interval, $4, $5::text[], "
        "$6::text[], $7::text[])",
        {type, id, age, body, PgTextArrayLiteral(patients), PgTextArrayLiteral(outrefs),
         PgTextArrayLiteral(tokens)});
  }
  void Tombstone(const std::string& type, const std::string& id, std::vector<std::string> patients,
                 const std::string& age) {
    Exec(
        "INSERT INTO resource (res_type, res_id, version, last_updated, deleted, patients) "
        "VALUES ($1, $2, 2, clock_timestamp() - $3::interval, true, $4::text[])",
        {type, id, age, PgTextArrayLiteral(patients)});
  }
  void Member(const std::string& group, int index, const std::string& patient,
              bool inactive = false, const std::string& period_end_sql = "NULL") {
    Exec(
        "INSERT INTO group_member (group_id, member_index, patient_id, inactive, period_end) "
        "VALUES ($1, $2::int, $3, $4::bool, " +
            period_end_sql + ")",
        {group, std::to_string(index), patient, inactive ? "true" : "false"});
  }

  // Patients p1-p3; Observations o1-o5 in their compartments and o6 in none; a Condition;
  // supporting resources, two of them referenced; a Device; a Questionnaire (resource_other);
  // Group g1 with p1 active, p2 inactive, p3 whose membership ended.
  void StandardData() {
    for (const char* p : {"p1", "p2", "p3"}) Put("Patient", p, {p}, {}, "1 day", "\"active\":true");
    Put("Observation", "o1", {"p1"}, {"Practitioner/dr1"}, "1 day",
        "\"status\":\"final\",\"code\":{\"text\":\"a\"},\"valueString\":\"v\","
        "\"subject\":{\"reference\":\"Patient/p1\"}",
        {"code=http://loinc.org|1234-5", "code=1234-5"});
    Put("Observation", "o2", {"p1"});
    Put("Observation", "o3", {"p2"}, {"Organization/org1", "Practitioner/dr2"});
    Put("Observation", "o4", {"p2"});
    Put("Observation", "o5", {"p3"});
    Put("Observation", "o6", {}, {"Practitioner/dr3"});
    Put("Condition", "c1", {"p1"});
    for (const char* d : {"dr1", "dr2", "dr3"}) Put("Practitioner", d);
    for (const char* o : {"org1", "org2"}) Put("Organization", o);
    Put("Device", "d1");
    Put("Questionnaire", "q1");
    Put("Group", "g1", {"p1", "p2", "p3"});
    Member("g1", 0, "p1");
    Member("g1", 1, "p2", /*inactive=*/true);
    Member("g1", 2, "p3", false, "clock_timestamp() - interval '1 hour'");
  }

  std::string NewJob(ExportRequest r, const std::string& client = "test-client") {
    r.request_url = "http://fhir.test/fhir/$export";
    return Scalar(
        "INSERT INTO export_job (client_id, request, request_url, transaction_time, "
        "xmax_at_kickoff) VALUES ($3, $1::jsonb, $2, clock_timestamp(), "
        "pg_current_xact_id()) RETURNING job_id::text",
        {ExportRequestToJson(r), r.request_url, client});
  }
  static ExportRequest Request(ExportLevel level, std::vector<std::string> types = {}) {
    ExportRequest r;
    r.level = level;
    r.types = std::move(types);
    return r;
  }

  WorkerOptions Options() {
    WorkerOptions o;
    o.conninfo = TestConninfo();
    o.export_dir = dir_;
    o.threads = 2;
    if (std::getenv("WORKER_LOG") == nullptr) o.log = [](const std::string&) {};
    return o;
  }
  std::unique_ptr<Worker> MakeWorker(const WorkerOptions& o) {
    auto w = Worker::Create(o);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    return w.ok() ? std::move(w).value() : nullptr;
  }
  void RunAll(WorkerOptions o) {
    auto w = MakeWorker(o);
    ASSERT_NE(w, nullptr);
    Status s = w->RunUntilIdle();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  std::string State(const std::string& job) {
    return Scalar("SELECT state FROM export_job WHERE job_id = $1::uuid", {job});
  }

  struct Exported {
    std::multiset<std::string> output;   // Type/id of every output line
    std::multiset<std::string> deleted;  // Type/id of every DELETE entry
    std::vector<std::string> errors;     // diagnostics of the error OperationOutcomes
    std::map<std::string, int> files_per_type;
    std::vector<std::string> lines;  // raw output lines
  };

  // Reads a job's files as export_file lists them, checking counts, sizes and one type per
  // file, and that the directory holds nothing else.
  Exported ReadExport(const std::string& job) {
    Exported e;
    PgResult files = Exec(
        "SELECT file_name, kind, res_type, resources, bytes FROM export_file "
        "WHERE job_id = $1::uuid ORDER BY file_name",
        {job});
    std::set<std::string> listed;
    for (int i = 0; i < files.rows(); i++) {
      const std::string name = files.str(i, 0), kind = files.str(i, 1), type = files.str(i, 2);
      listed.insert(name);
      std::ifstream in(dir_ + "/" + job + "/" + name);
      EXPECT_TRUE(in.good()) << name;
      std::stringstream ss;
      ss << in.rdbuf();
      const std::string content = ss.str();
      EXPECT_EQ(static_cast<long long>(content.size()), files.int64(i, 4)) << name;
      EXPECT_TRUE(content.empty() || content.back() == '\n') << name;
      // A gzip twin, when there is one, holds exactly the same bytes.
      const std::string twin = dir_ + "/" + job + "/" + name + ".gz";
      if (fs::exists(twin)) {
        EXPECT_EQ(Gunzip(ReadFile(twin)), content) << name << ".gz";
      }
      std::istringstream lines(content);
      std::string line;
      long long count = 0;
      while (std::getline(lines, line)) {
        count++;
        rapidjson::Document d;
        d.Parse(line.c_str());
        EXPECT_FALSE(d.HasParseError()) << name << ": " << line;
        if (d.HasParseError()) continue;
        EXPECT_EQ(std::string(d["resourceType"].GetString()), type) << name;
        if (kind == "output") {
          e.output.insert(type + "/" + d["id"].GetString());
          e.lines.push_back(line);
        } else if (kind == "deleted") {
          EXPECT_STREQ(d["type"].GetString(), "transaction");
          for (const auto& entry : d["entry"].GetArray()) {
            EXPECT_STREQ(entry["request"]["method"].GetString(), "DELETE");
            e.deleted.insert(entry["request"]["url"].GetString());
          }
        } else {
          for (const auto& issue : d["issue"].GetArray()) {
            e.errors.push_back(issue["diagnostics"].GetString());
          }
        }
      }
      EXPECT_EQ(count, files.int64(i, 3)) << name;
      e.files_per_type[type]++;
    }
    if (fs::exists(dir_ + "/" + job)) {
      for (const auto& f : fs::directory_iterator(dir_ + "/" + job)) {
        const std::string name = f.path().filename().string();
        if (name == kJobOwnerFile) continue;  // written at planning (planner.h)
        const bool twin = name.size() > 3 && name.compare(name.size() - 3, 3, ".gz") == 0 &&
                          listed.count(name.substr(0, name.size() - 3));
        EXPECT_TRUE(listed.count(name) || twin) << "unlisted file " << name;
      }
    }
    return e;
  }

  static std::multiset<std::string> Set(std::initializer_list<const char*> items) {
    return std::multiset<std::string>(items.begin(), items.end());
  }
};

// ---- exports ----------------------------------------------------------------------------

TEST_F(WorkerDbTest, SystemExportWritesEveryResourceOnce) {
  StandardData();
  Tombstone("Observation", "o9", {"p1"}, "10 minutes");
  const std::string job = NewJob(Request(ExportLevel::kSystem));
  RunAll(Options());
  ASSERT_EQ(State(job), "completed");
  Exported e = ReadExport(job);
  EXPECT_EQ(e.output, Set({"Patient/p1", "Patient/p2", "Patient/p3", "Observation/o1",
                           "Observation/o2", "Observation/o3", "Observation/o4", "Observation/o5",
                           "Observation/o6", "Condition/c1", "Practitioner/dr1", "Practitioner/dr2",
                           "Practitioner/dr3", "Organization/org1", "Organization/org2",
                           "Device/d1", "Questionnaire/q1", "Group/g1"}));
  EXPECT_TRUE(e.deleted.empty());
  EXPECT_EQ(Scalar("SELECT units_done = units_total AND units_total > 0 AND "
                   "resources_written = 18 AND expires_at > finished_at FROM export_job "
                   "WHERE job_id = $1::uuid",
                   {job}),
            "t");

  // The fast path copies the stored bytes.
  std::set<std::string> stored;
  PgResult bodies = Exec("SELECT body FROM resource WHERE NOT deleted");
  for (int i = 0; i < bodies.rows(); i++) stored.insert(bodies.str(i, 0));
  for (const std::string& line : e.lines) EXPECT_TRUE(stored.count(line)) << line;

  // The manifest, through the lead's job store.
  auto info = GetJob(conn_.get(), job, "test-client");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(info->files.empty()) << "GetJob reads the job's row only";
  ASSERT_TRUE(LoadJobFiles(conn_.get(), &*info).ok());
  rapidjson::Document m;
  m.Parse(ManifestJson(*info, "http://fhir.test/fhir", true).c_str());
  ASSERT_FALSE(m.HasParseError());
  EXPECT_EQ(m["output"].Size(), 8u);  // one file per type
  EXPECT_FALSE(m.HasMember("deleted"));
  EXPECT_EQ(m["error"].Size(), 0u);
}

TEST_F(WorkerDbTest, TypeParameterLimitsTypes) {
  StandardData();
  const std::string job = NewJob(Request(ExportLevel::kSystem, {"Patient", "Condition"}));
  RunAll(Options());
  ASSERT_EQ(State(job), "completed");
  EXPECT_EQ(ReadExport(job).output,
            Set({"Patient/p1", "Patient/p2", "Patient/p3", "Condition/c1"}));
}

TEST_F(WorkerDbTest, SinceExportsChangesAndDeletions) {
  StandardData();
  Put("Observation", "o7", {"p1"}, {}, "1 minute");
  Put("Device", "d2", {}, {}, "2 minutes");
  Tombstone("Observation", "o9", {"p1"}, "10 minutes");
  Tombstone("Device", "d9", {}, "10 minutes");
  Tombstone("Observation", "o8", {"p2"}, "3 days");  // deleted before _since
  ExportRequest r = Request(ExportLevel::kSystem);
  r.since_us = std::stoll(Scalar(
      "SELECT (extract(epoch FROM clock_timestamp() - interval '1 hour') * 1000000)::bigint"));
  const std::string job = NewJob(r);
  RunAll(Options());
  ASSERT_EQ(State(job), "completed");
  Exported e = ReadExport(job);
  EXPECT_EQ(e.output, Set({"Observation/o7", "Device/d2"}));
  EXPECT_EQ(e.deleted, Set({"Observation/o9", "Device/d9"}));
  EXPECT_EQ(Scalar("SELECT string_agg(DISTINCT res_type, ',') FROM export_file "
                   "WHERE job_id = $1::uuid AND kind = 'deleted'",
                   {job}),
            "Bundle");
}

TEST_F(WorkerDbTest, GroupExportCoversActiveMembersAndTheirReferences) {
  StandardData();
  Tombstone("Observation", "o9", {"p1"}, "10 minutes");
  ExportRequest r = Request(ExportLevel::kGroup);
  r.group_id = "g1";
  const std::string job = NewJob(r);
  RunAll(Options());
  ASSERT_EQ(State(job), "completed");
  // p2 is inactive, p3's membership ended; dr1 is referenced by o1. The Group itself is
  // exported only when _type names it.
  EXPECT_EQ(ReadExport(job).output, Set({"Patient/p1", "Observation/o1", "Observation/o2",
                                         "Condition/c1", "Practitioner/dr1"}));
  // One unit per type for group exports.
  EXPECT_EQ(Scalar("SELECT count(*) FROM export_unit WHERE job_id = $1::uuid "
                   "AND (page_lo IS NOT NULL OR page_hi IS NOT NULL)",
                   {job}),
            "0");
}

TEST_F(WorkerDbTest, GroupExportWithPatientListAndNamedGroupType) {
  StandardData();
  Member("g1", 3, "p2");  // p2 active again through another entry
  ExportRequest r = Request(ExportLevel::kGroup, {"Group", "Observation", "Organization"});
  r.group_id = "g1";
  r.patients = {"p2", "p3"};  // p3 is not an active member: intersected away
  const std::string job = NewJob(r);
  RunAll(Options());
  ASSERT_EQ(State(job), "completed");
  EXPECT_EQ(ReadExport(job).output,
            Set({"Group/g1", "Observation/o3", "Observation/o4", "Organization/org1"}));
}

TEST_F(WorkerDbTest, EmptyGroupCompletesWithoutFiles) {
  StandardData();
  Member("g2", 0, "p1", /*inactive=*/true);
  ExportRequest r = Request(ExportLevel::kGroup);
  r.group_id = "g2";
  const std::string job = NewJob(r);
  RunAll(Options());
  EXPECT_EQ(State(job), "completed");
  EXPECT_EQ(Scalar("SELECT units_total FROM export_job WHERE job_id = $1::uuid", {job}), "0");
  EXPECT_EQ(Scalar("SELECT count(*) FROM export_file WHERE job_id = $1::uuid", {job}), "0");
  EXPECT_FALSE(fs::exists(dir_ + "/" + job));
}

TEST_F(WorkerDbTest, PatientLevelExportsCompartmentsAndReferencedSupport) {
  StandardData();
  const std::string job = NewJob(Request(ExportLevel::kPatient));
  RunAll(Options());
  ASSERT_EQ(State(job), "completed");
  // o6 has no patient; Device, Questionnaire and Group are not exported; dr3 is referenced
  // only by o6, org2 by nobody.
  EXPECT_EQ(ReadExport(job).output,
            Set({"Patient/p1", "Patient/p2", "Patient/p3", "Observation/o1", "Observation/o2",
                 "Observation/o3", "Observation/o4", "Observation/o5", "Condition/c1",
                 "Practitioner/dr1", "Practitioner/dr2", "Organization/org1"}));
}

TEST_F(WorkerDbTest, PatientLevelWithPatientListTypeFilterAndSince) {
  StandardData();
  Put("Observation", "o7", {"p2"}, {"Practitioner/dr3"}, "1 minute", "",
      {"code=http://loinc.org|1234-5"});
  Put("Observation", "o8", {"p2"}, {"Practitioner/dr1"}, "1 minute", "", {"code=other"});
  Tombstone("Observation", "o9", {"p2"}, "10 minutes");
  Tombstone("Observation", "o10", {"p1"}, "10 minutes");  // not in the list
  ExportRequest r = Request(ExportLevel::kPatient, {"Observation", "Practitioner"});
  r.patients = {"p2"};
  r.since_us = std::stoll(Scalar(
      "SELECT (extract(epoch FROM clock_timestamp() - interval '1 hour') * 1000000)::bigint"));
  TypeFilterQuery q;
  q.type = "Observation";
  FilterCriterion c;
  c.param = "code";
  c.values = {"http://loinc.org|1234-5"};
  q.criteria.push_back(c);
  r.type_filters.push_back(q);
  const std::string job = NewJob(r);
  RunAll(Options());
  ASSERT_EQ(State(job), "completed");
  Exported e = ReadExport(job);
  // o7 matches everything; o8 fails the filter, so dr1 (referenced only by o8 among p2's
  // recent resources) is not exported; dr3 is, whatever its own age.
  EXPECT_EQ(e.output, Set({"Observation/o7", "Practitioner/dr3"}));
  EXPECT_EQ(e.deleted, Set({"Observation/o9"}));
}

TEST_F(WorkerDbTest, ElementsSubsetOnlyTheNamedType) {
  StandardData();
  ExportRequest r = Request(ExportLevel::kSystem, {"Observation", "Patient"});
  r.elements = {"Observation.subject"};
  const std::string job = NewJob(r);
  RunAll(Options());
  ASSERT_EQ(State(job), "completed");
  Exported e = ReadExport(job);
  EXPECT_EQ(e.output.size(), 9u);
  for (const std::string& line : e.lines) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    if (std::string(d["resourceType"].GetString()) == "Observation") {
      EXPECT_NE(line.find("SUBSETTED"), std::string::npos) << line;
      EXPECT_FALSE(d.HasMember("valueString")) << line;
      if (std::string(d["id"].GetString()) == "o1") {
        EXPECT_TRUE(d.HasMember("subject"));
        EXPECT_TRUE(d.HasMember("status"));
        EXPECT_TRUE(d.HasMember("code"));
      }
    } else {
      EXPECT_EQ(line.find("SUBSETTED"), std::string::npos) << line;
      EXPECT_NE(line.find("\"active\":true"), std::string::npos) << line;
    }
  }
}

TEST_F(WorkerDbTest, LenientIgnoredParametersGoToTheErrorFile) {
  StandardData();
  ExportRequest r = Request(ExportLevel::kSystem, {"Condition"});
  r.lenient = true;
  OutcomeIssue a;
  a.code = "not-supported";
  a.diagnostics = "_foo is not supported";
  OutcomeIssue b = a;
  b.diagnostics = "includeAssociatedData: LatestProvenanceResources is not supported";
  r.ignored = {a, b};
  const std::string job = NewJob(r);
  RunAll(Options());
  ASSERT_EQ(State(job), "completed");
  Exported e = ReadExport(job);
  EXPECT_EQ(e.output, Set({"Condition/c1"}));
  EXPECT_EQ(e.errors, (std::vector<std::string>{a.diagnostics, b.diagnostics}));
  EXPECT_EQ(e.files_per_type["OperationOutcome"], 1);
}

TEST_F(WorkerDbTest, FilesSplitByCountAndBytes) {
  for (int i = 0; i < 7; i++) Put("Observation", "o" + std::to_string(i), {"p1"});
  WorkerOptions o = Options();
  o.max_file_resources = 3;
  const std::string job = NewJob(Request(ExportLevel::kSystem));
  RunAll(o);
  ASSERT_EQ(State(job), "completed");
  EXPECT_EQ(ReadExport(job).output.size(), 7u);
  EXPECT_EQ(Scalar("SELECT string_agg(resources::text, ',' ORDER BY seq) FROM export_file "
                   "WHERE job_id = $1::uuid",
                   {job}),
            "3,3,1");

  o.max_file_resources = 1000;
  o.max_file_bytes = 100;  // each line is ~45 bytes: two per file
  const std::string job2 = NewJob(Request(ExportLevel::kSystem));
  RunAll(o);
  ASSERT_EQ(State(job2), "completed");
  EXPECT_EQ(ReadExport(job2).output.size(), 7u);
  EXPECT_EQ(
      Scalar("SELECT count(*) FROM export_file WHERE job_id = $1::uuid AND bytes > 100", {job2}),
      "0");
  EXPECT_EQ(Scalar("SELECT count(*) FROM export_file WHERE job_id = $1::uuid", {job2}), "4");
}

TEST_F(WorkerDbTest, LargeTypesAreSplitIntoPageRanges) {
  Exec(
      "INSERT INTO resource (res_type, res_id, version, last_updated, body, patients) "
      "SELECT 'Observation', 'o' || g, 1, clock_timestamp() - interval '1 day', "
      "'{\"resourceType\":\"Observation\",\"id\":\"o' || g || '\",\"note\":\"' || "
      "repeat('x', 300) || '\"}', ARRAY['p1'] FROM generate_series(1, 600) g");
  Exec("ANALYZE resource_observation");
  WorkerOptions o = Options();
  o.target_unit_resources = 100;
  const std::string job = NewJob(Request(ExportLevel::kSystem));
  RunAll(o);
  ASSERT_EQ(State(job), "completed");
  Exported e = ReadExport(job);
  EXPECT_EQ(e.output.size(), 600u);
  EXPECT_EQ(std::set<std::string>(e.output.begin(), e.output.end()).size(), 600u);
  EXPECT_EQ(Scalar("SELECT count(*) FROM export_unit WHERE job_id = $1::uuid", {job}), "6");
  // Contiguous ranges: open first and last ends, each lo = previous hi.
  EXPECT_EQ(Scalar("SELECT bool_and(page_lo IS NOT DISTINCT FROM prev) FROM (SELECT page_lo, "
                   "lag(page_hi) OVER (ORDER BY unit_no) AS prev FROM export_unit "
                   "WHERE job_id = $1::uuid) s",
                   {job}),
            "t");
}

TEST_F(WorkerDbTest, UnitsAreSizedByTableBytesAndNumberedLargestFirst) {
  // Observations of ~3 KB each: most of their bytes live in TOAST, so the heap alone would
  // make one unit of them. Pseudo-random text, so that compression keeps them large.
  Exec(
      "INSERT INTO resource (res_type, res_id, version, last_updated, body, patients) "
      "SELECT 'Observation', 'o' || g, 1, clock_timestamp() - interval '1 day', "
      "'{\"resourceType\":\"Observation\",\"id\":\"o' || g || '\",\"note\":\"' || "
      "(SELECT string_agg(md5(g::text || ':' || i), '') FROM generate_series(1, 100) i) || "
      "'\"}', ARRAY['p1'] FROM generate_series(1, 1000) g");
  for (int i = 0; i < 30; i++) Put("Condition", "c" + std::to_string(i), {"p1"});
  Put("Patient", "p1", {"p1"});
  Exec("ANALYZE resource_observation, resource_condition, resource_patient");
  WorkerOptions o = Options();
  o.target_unit_bytes = 256 << 10;
  const std::string job = NewJob(Request(ExportLevel::kSystem));
  auto w = MakeWorker(o);
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->PlanOne().ok());
  const int64_t obs_units = std::stoll(Scalar(
      "SELECT count(*) FROM export_unit WHERE job_id = $1::uuid AND res_type = 'Observation'",
      {job}));
  // ~3.3 MB of table (~15 heap pages, the rest TOAST) in 256 KB units, at most one a heap
  // page; 1000 rows alone would make one.
  EXPECT_GE(obs_units, 8);
  // The Observation ranges come first, in page order, and cover the table without gaps.
  EXPECT_EQ(Scalar("SELECT string_agg(DISTINCT res_type, ',') FROM export_unit "
                   "WHERE job_id = $1::uuid AND unit_no <= $2::int",
                   {job, std::to_string(obs_units)}),
            "Observation");
  EXPECT_EQ(Scalar("SELECT bool_and(page_lo IS NOT DISTINCT FROM prev) FROM (SELECT page_lo, "
                   "lag(page_hi) OVER (ORDER BY unit_no) AS prev FROM export_unit "
                   "WHERE job_id = $1::uuid AND res_type = 'Observation') s",
                   {job}),
            "t");
  ASSERT_TRUE(w->RunUntilIdle().ok());
  ASSERT_EQ(State(job), "completed");
  Exported e = ReadExport(job);
  EXPECT_EQ(e.output.size(), 1031u);
  EXPECT_EQ(std::set<std::string>(e.output.begin(), e.output.end()).size(), 1031u);
}

TEST_F(WorkerDbTest, GroupMembersAndSupportingIdsAreFixedAtPlanning) {
  StandardData();
  ExportRequest r = Request(ExportLevel::kGroup);
  r.group_id = "g1";
  const std::string job = NewJob(r);
  auto w = MakeWorker(Options());
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->PlanOne().ok());
  EXPECT_EQ(Scalar("SELECT patient_scope::text FROM export_job WHERE job_id = $1::uuid", {job}),
            "{p1}");
  EXPECT_EQ(Scalar("SELECT string_agg(res_type || '=' || res_ids::text, ' ' ORDER BY res_type) "
                   "FROM export_unit WHERE job_id = $1::uuid AND res_ids IS NOT NULL",
                   {job}),
            "Organization={} Practitioner={dr1}");
  // The Group is rewritten while the export runs: p1 leaves, p2 becomes active.
  Exec("DELETE FROM group_member WHERE group_id = 'g1'");
  Member("g1", 0, "p2");
  ASSERT_TRUE(w->RunUntilIdle().ok());
  ASSERT_EQ(State(job), "completed");
  EXPECT_EQ(ReadExport(job).output, Set({"Patient/p1", "Observation/o1", "Observation/o2",
                                         "Condition/c1", "Practitioner/dr1"}));
}

TEST_F(WorkerDbTest, UnitsPlannedWithoutScopeColumnsStillSelectTheirRows) {
  // A job planned by a worker that predates sql/0004 has neither patient_scope nor res_ids:
  // its units work both out as they always did.
  StandardData();
  ExportRequest r = Request(ExportLevel::kGroup);
  r.group_id = "g1";
  const std::string job = NewJob(r);
  auto w = MakeWorker(Options());
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->PlanOne().ok());
  Exec("UPDATE export_job SET patient_scope = NULL WHERE job_id = $1::uuid", {job});
  Exec("UPDATE export_unit SET res_ids = NULL WHERE job_id = $1::uuid", {job});
  ASSERT_TRUE(w->RunUntilIdle().ok());
  ASSERT_EQ(State(job), "completed");
  EXPECT_EQ(ReadExport(job).output, Set({"Patient/p1", "Observation/o1", "Observation/o2",
                                         "Condition/c1", "Practitioner/dr1"}));
}

TEST_F(WorkerDbTest, ConsistentAsOfTransactionTime) {
  StandardData();
  Put("Observation", "future", {"p1"}, {}, "-1 hour");
  // A writer that took its xid before the kick-off and commits only later: planning must
  // wait for it, and its row (last_updated before transactionTime) must be exported.
  auto writer = PgConnection::Connect(TestConninfo());
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Exec("BEGIN").ok());
  ASSERT_TRUE((*writer)
                  ->Exec("INSERT INTO resource (res_type, res_id, version, last_updated, body) "
                         "VALUES ('Observation', 'late', 1, clock_timestamp(), "
                         "'{\"resourceType\":\"Observation\",\"id\":\"late\"}')")
                  .ok());
  const std::string job = NewJob(Request(ExportLevel::kSystem, {"Observation"}));
  // Changed after the kick-off: exported as it was at transactionTime (sql/0008).
  Exec(
      "UPDATE resource SET last_updated = clock_timestamp(), version = 2 "
      "WHERE res_type = 'Observation' AND res_id = 'o2'");
  auto w = MakeWorker(Options());
  ASSERT_NE(w, nullptr);
  std::thread run([&] { EXPECT_TRUE(w->RunUntilIdle().ok()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_EQ(State(job), "accepted");  // still waiting for the open transaction
  ASSERT_TRUE((*writer)->Exec("COMMIT").ok());
  run.join();
  ASSERT_EQ(State(job), "completed");
  EXPECT_EQ(ReadExport(job).output,
            Set({"Observation/o1", "Observation/o2", "Observation/o3", "Observation/o4",
                 "Observation/o5", "Observation/o6", "Observation/late"}));
}

TEST_F(WorkerDbTest, GzipTwinOfEveryFileUnlessLevelZero) {
  StandardData();
  WorkerOptions o = Options();
  o.max_file_resources = 2;  // several parts per type
  const std::string job = NewJob(Request(ExportLevel::kSystem));
  RunAll(o);  // the default level: 1
  ASSERT_EQ(State(job), "completed");
  EXPECT_EQ(ReadExport(job).output.size(), 18u);  // also checks every twin's content
  PgResult files = Exec("SELECT file_name, bytes FROM export_file WHERE job_id = $1::uuid", {job});
  ASSERT_GT(files.rows(), 8);
  int64_t plain_bytes = 0, gz_bytes = 0;
  for (int i = 0; i < files.rows(); i++) {
    const std::string path = dir_ + "/" + job + "/" + files.str(i, 0);
    ASSERT_TRUE(fs::exists(path + ".gz")) << files.str(i, 0);
    EXPECT_EQ(static_cast<int64_t>(fs::file_size(path)), files.int64(i, 1)) << "plain size";
    plain_bytes += files.int64(i, 1);
    gz_bytes += static_cast<int64_t>(fs::file_size(path + ".gz"));
  }
  EXPECT_GT(gz_bytes, 0);
  EXPECT_EQ(Scalar("SELECT count(*) FROM export_file WHERE job_id = $1::uuid AND "
                   "file_name LIKE '%.gz'",
                   {job}),
            "0");

  o.gzip_level = 0;
  const std::string plain_job = NewJob(Request(ExportLevel::kSystem));
  RunAll(o);
  ASSERT_EQ(State(plain_job), "completed");
  EXPECT_EQ(ReadExport(plain_job).output.size(), 18u);
  for (const auto& f : fs::directory_iterator(dir_ + "/" + plain_job)) {
    EXPECT_NE(f.path().extension(), ".gz") << f.path().filename();
  }
  EXPECT_EQ(Scalar("SELECT sum(bytes) FROM export_file WHERE job_id = $1::uuid", {plain_job}),
            std::to_string(plain_bytes));

  o.gzip_level = 10;
  EXPECT_EQ(Worker::Create(o).status().code(), Status::Code::kInvalidArgument);
}

TEST_F(WorkerDbTest, TwinsOfEarlierAttemptsAndStrayTwinTempsAreRemoved) {
  for (int i = 0; i < 10; i++) Put("Observation", "o" + std::to_string(i), {"p1"});
  const std::string job = NewJob(Request(ExportLevel::kSystem));
  auto w = MakeWorker(Options());
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->PlanOne().ok());
  Exec(
      "UPDATE export_unit SET state = 'running', worker = 'deadhost-1-0000-t0', "
      "lease_until = now() - interval '1 second', attempts = 1 "
      "WHERE job_id = $1::uuid AND unit_no = 1",
      {job});
  // A killed attempt: a twin under its temp name, and a published part whose commit failed.
  const std::string jd = dir_ + "/" + job;
  std::ofstream(jd + "/Observation.1.1.ndjson.gz.tmp.deadhost-1-0000-t0") << "\x1f\x8b";
  std::ofstream(jd + "/Observation.1.9.ndjson.gz") << "\x1f\x8b";
  ASSERT_TRUE(w->RunUntilIdle().ok());
  ASSERT_EQ(State(job), "completed");
  EXPECT_EQ(ReadExport(job).output.size(), 10u);  // fails on any leftover
  EXPECT_FALSE(fs::exists(jd + "/Observation.1.9.ndjson.gz"));

  // A stray twin temp file in a completed job's directory goes once older than the lease.
  const std::string stray = jd + "/Observation.1.2.ndjson.gz.tmp.gone-t0";
  std::ofstream(stray) << "x";
  struct timeval old_times[2] = {{std::time(nullptr) - 3600, 0}, {std::time(nullptr) - 3600, 0}};
  ASSERT_EQ(::utimes(stray.c_str(), old_times), 0);
  ASSERT_TRUE(w->RunJanitor().ok());
  EXPECT_FALSE(fs::exists(stray));
  EXPECT_TRUE(fs::exists(jd + "/Observation.1.1.ndjson.gz"));
}

// ---- cancellation, crashes, failures ----------------------------------------------------------

TEST_F(WorkerDbTest, CancellationStopsTheUnitAndLeavesNoFiles) {
  for (int i = 0; i < 40; i++) Put("Observation", "o" + std::to_string(i), {"p1"});
  const std::string job = NewJob(Request(ExportLevel::kSystem));
  auto other = PgConnection::Connect(TestConninfo());
  ASSERT_TRUE(other.ok());
  WorkerOptions o = Options();
  o.threads = 1;
  o.check_every_rows = 2;
  o.max_file_resources = 5;  // several temp files exist when the cancel arrives
  int beats = 0;
  o.on_heartbeat = [&](const std::string& id, int, int64_t rows) {
    if (++beats == 3) {
      EXPECT_GE(rows, 5);
      EXPECT_TRUE(CancelJob(other->get(), id, "test-client").ok());
    }
  };
  RunAll(o);
  EXPECT_EQ(State(job), "cancelled");
  EXPECT_EQ(beats, 3);
  EXPECT_EQ(Scalar("SELECT count(*) FROM export_file WHERE job_id = $1::uuid", {job}), "0");
  ASSERT_TRUE(fs::exists(dir_ + "/" + job));
  EXPECT_EQ(Listing(dir_ + "/" + job), ".owner");  // temp files deleted

  auto w = MakeWorker(Options());
  ASSERT_TRUE(w->RunJanitor().ok());
  EXPECT_FALSE(fs::exists(dir_ + "/" + job));
  EXPECT_EQ(Scalar("SELECT count(*) FROM export_job WHERE job_id = $1::uuid", {job}), "0");
}

TEST_F(WorkerDbTest, CancelMeetingACompletingUnitDoesNotDeadlock) {
  // A cancel locks the job row, then deletes the unit rows; a completing unit must take the
  // same order, or the two deadlock and PostgreSQL aborts one of them.
  for (int i = 0; i < 10; i++) Put("Observation", "o" + std::to_string(i), {"p1"});
  const std::string job = NewJob(Request(ExportLevel::kSystem));
  auto canceller = PgConnection::Connect(TestConninfo());
  ASSERT_TRUE(canceller.ok());
  PgConnection* c = canceller->get();
  std::thread finish;
  Status cancel_status = Status::Internal("the cancel did not run");
  WorkerOptions o = Options();
  o.threads = 1;
  o.on_heartbeat = [&](const std::string& id, int, int64_t rows) {
    if (rows < 10 || finish.joinable()) return;  // the last beat, just before completing
    ASSERT_TRUE(c->Exec("BEGIN").ok());
    ASSERT_TRUE(
        c->Exec("UPDATE export_job SET state = 'cancelled' WHERE job_id = $1::uuid", {id}).ok());
    finish = std::thread([&, id] {
      // By now the unit waits for the job row; the old order held its unit row already.
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      auto d = c->Exec("DELETE FROM export_unit WHERE job_id = $1::uuid", {id});
      cancel_status = d.ok() ? c->Exec("COMMIT").status() : d.status();
      if (!d.ok()) (void)c->Exec("ROLLBACK");
    });
  };
  RunAll(o);
  if (finish.joinable()) finish.join();
  EXPECT_TRUE(cancel_status.ok()) << cancel_status.ToString();
  EXPECT_EQ(State(job), "cancelled");
  EXPECT_EQ(Scalar("SELECT count(*) FROM export_file WHERE job_id = $1::uuid", {job}), "0");
  EXPECT_EQ(Listing(dir_ + "/" + job), ".owner");  // the unit's files were not published
}

TEST_F(WorkerDbTest, UnitOfAKilledWorkerIsRedoneWithoutDuplicates) {
  for (int i = 0; i < 10; i++) Put("Observation", "o" + std::to_string(i), {"p1"});
  const std::string job = NewJob(Request(ExportLevel::kSystem));
  WorkerOptions o = Options();
  o.max_file_resources = 4;
  auto w = MakeWorker(o);
  ASSERT_NE(w, nullptr);
  auto planned = w->PlanOne();
  ASSERT_TRUE(planned.ok() && *planned);
  ASSERT_EQ(State(job), "running");
  // The dead worker claimed unit 1 and wrote a temp file; an earlier attempt even got as far
  // as renaming a file before its commit failed.
  Exec(
      "UPDATE export_unit SET state = 'running', worker = 'deadhost-1-0000-t0', "
      "lease_until = now() - interval '1 second', attempts = 1 "
      "WHERE job_id = $1::uuid AND unit_no = 1",
      {job});
  const std::string jd = dir_ + "/" + job;
  std::ofstream(jd + "/Observation.1.1.ndjson.tmp.deadhost-1-0000-t0") << "{\"partial\n";
  std::ofstream(jd + "/Observation.1.9.ndjson")
      << "{\"resourceType\":\"Observation\",\"id\":\"o1\"}\n";
  // A live lease elsewhere is left alone.
  ExportRequest r2 = Request(ExportLevel::kSystem);
  const std::string job2 = NewJob(r2);
  ASSERT_TRUE(w->PlanOne().ok());
  Exec(
      "UPDATE export_unit SET state = 'running', worker = 'alive-t0', "
      "lease_until = now() + interval '1 hour', attempts = 1 WHERE job_id = $1::uuid",
      {job2});

  ASSERT_TRUE(w->RunUntilIdle().ok());
  ASSERT_EQ(State(job), "completed");
  Exported e = ReadExport(job);  // also fails on any unlisted leftover file
  EXPECT_EQ(e.output.size(), 10u);
  EXPECT_EQ(std::set<std::string>(e.output.begin(), e.output.end()).size(), 10u);
  EXPECT_EQ(Scalar("SELECT attempts::text || ' ' || (worker LIKE $2 || '%')::text "
                   "FROM export_unit WHERE job_id = $1::uuid AND unit_no = 1",
                   {job, w->worker_id()}),
            "2 true");
  EXPECT_EQ(State(job2), "running");
  EXPECT_EQ(Scalar("SELECT worker FROM export_unit WHERE job_id = $1::uuid", {job2}), "alive-t0");
}

TEST_F(WorkerDbTest, TooManyAttemptsFailTheJobAsTransient) {
  StandardData();
  const std::string job = NewJob(Request(ExportLevel::kSystem, {"Patient"}));
  auto w = MakeWorker(Options());
  ASSERT_TRUE(w->PlanOne().ok());
  Exec(
      "UPDATE export_unit SET state = 'running', worker = 'x-t0', attempts = 5, "
      "lease_until = now() - interval '1 second' WHERE job_id = $1::uuid",
      {job});
  ASSERT_TRUE(w->RunUntilIdle().ok());
  EXPECT_EQ(State(job), "failed");
  EXPECT_EQ(Scalar("SELECT error_transient::text || ' ' || (error->'issue'->0->>'code') "
                   "FROM export_job WHERE job_id = $1::uuid",
                   {job}),
            "true transient");
  EXPECT_FALSE(fs::exists(dir_ + "/" + job));
}

TEST_F(WorkerDbTest, WriteFailureFailsTheJobAndOthersGoOn) {
  StandardData();
  const std::string bad = NewJob(Request(ExportLevel::kSystem, {"Observation"}));
  const std::string good = NewJob(Request(ExportLevel::kSystem, {"Patient"}));
  auto w = MakeWorker(Options());
  ASSERT_TRUE(w->PlanOne().ok());
  ASSERT_TRUE(w->PlanOne().ok());
  // The bad job's directory vanishes (as a full or broken disk would make writes fail).
  fs::remove_all(dir_ + "/" + bad);
  ASSERT_TRUE(w->RunUntilIdle().ok());
  EXPECT_EQ(State(bad), "failed");
  EXPECT_EQ(Scalar("SELECT error_transient::text FROM export_job WHERE job_id = $1::uuid", {bad}),
            "false");
  EXPECT_NE(Scalar("SELECT error->'issue'->0->>'diagnostics' FROM export_job "
                   "WHERE job_id = $1::uuid",
                   {bad})
                .find("writing the export files failed"),
            std::string::npos);
  EXPECT_EQ(State(good), "completed");
  EXPECT_EQ(ReadExport(good).output.size(), 3u);
}

// ---- janitor, wake-ups, shutdown --------------------------------------------------------

TEST_F(WorkerDbTest, JanitorRemovesExpiredCancelledAndStrayFiles) {
  StandardData();
  WorkerOptions o = Options();
  o.grace_seconds = 3600;
  o.lease_seconds = 30;
  auto w = MakeWorker(o);
  const std::string expired = NewJob(Request(ExportLevel::kSystem, {"Patient"}));
  const std::string kept = NewJob(Request(ExportLevel::kSystem, {"Condition"}));
  const std::string failed = NewJob(Request(ExportLevel::kSystem, {"Device"}));
  ASSERT_TRUE(w->RunUntilIdle().ok());
  Exec("UPDATE export_job SET expires_at = now() - interval '2 hours' WHERE job_id = $1::uuid",
       {expired});
  Exec("UPDATE export_job SET state = 'failed' WHERE job_id = $1::uuid", {failed});
  const std::string kd = dir_ + "/" + kept;
  std::ofstream(kd + "/Condition.1.2.ndjson.tmp.gone-t0") << "x";
  std::ofstream(kd + "/Condition.1.3.ndjson.tmp.gone-t0") << "x";
  struct timeval old_times[2] = {{std::time(nullptr) - 3600, 0}, {std::time(nullptr) - 3600, 0}};
  ASSERT_EQ(::utimes((kd + "/Condition.1.2.ndjson.tmp.gone-t0").c_str(), old_times), 0);
  const std::string orphan = "0a0a0a0a-0000-4000-8000-000000000000";
  fs::create_directory(dir_ + "/" + orphan);
  ASSERT_EQ(::utimes((dir_ + "/" + orphan).c_str(), old_times), 0);
  const std::string renamed = dir_ + "/.cancelled-0b0b0b0b-0000-4000-8000-000000000000";
  fs::create_directory(renamed);
  std::ofstream(renamed + "/Patient.1.1.ndjson") << "x";
  fs::create_directory(dir_ + "/not-a-job");
  // Trees RemoveTree moved aside (files kept appearing in them) and could not finish.
  const std::string aside = dir_ + "/0c0c0c0c-0000-4000-8000-000000000000.removing";
  fs::create_directories(aside + "/sub");
  std::ofstream(aside + "/sub/Patient.1.1.ndjson") << "x";
  const std::string aside_cancelled = renamed + ".removing.removing";
  fs::create_directory(aside_cancelled);
  fs::create_directory(dir_ + "/not-a-job.removing");

  ASSERT_TRUE(w->RunJanitor().ok());
  EXPECT_FALSE(fs::exists(aside));
  EXPECT_FALSE(fs::exists(aside_cancelled));
  EXPECT_TRUE(fs::exists(dir_ + "/not-a-job.removing"));
  EXPECT_FALSE(fs::exists(dir_ + "/" + expired));
  EXPECT_EQ(Scalar("SELECT count(*) FROM export_job WHERE job_id = $1::uuid", {expired}), "0");
  EXPECT_FALSE(fs::exists(dir_ + "/" + failed));
  EXPECT_EQ(State(failed), "failed");  // the row stays until it expires
  EXPECT_FALSE(fs::exists(kd + "/Condition.1.2.ndjson.tmp.gone-t0"));
  EXPECT_TRUE(fs::exists(kd + "/Condition.1.3.ndjson.tmp.gone-t0"));  // younger than the lease
  EXPECT_TRUE(fs::exists(kd + "/Condition.1.1.ndjson"));
  EXPECT_FALSE(fs::exists(dir_ + "/" + orphan));
  EXPECT_FALSE(fs::exists(renamed));
  EXPECT_TRUE(fs::exists(dir_ + "/not-a-job"));
  EXPECT_EQ(State(kept), "completed");
}

// Cancel markers (written by the HTTP side) go once their job's row and directories are gone,
// never while the job's files are still on disk or its row may still plan them.
TEST_F(WorkerDbTest, JanitorRemovesCancelMarkersOnlyAfterTheFiles) {
  StandardData();
  WorkerOptions o = Options();
  o.lease_seconds = 30;
  auto w = MakeWorker(o);
  const std::string cancelled = NewJob(Request(ExportLevel::kSystem, {"Patient"}));
  ASSERT_TRUE(w->RunUntilIdle().ok());
  const std::string queued = NewJob(Request(ExportLevel::kSystem, {"Condition"}));  // no dir yet
  const std::string markers = dir_ + "/.cancels";
  ASSERT_TRUE(fs::create_directory(markers));
  auto touch = [](const std::string& path) { std::ofstream created(path); };
  touch(markers + "/" + cancelled);
  touch(markers + "/" + queued);
  // A job whose row is gone but whose files are not (yet: younger than the lease).
  const std::string orphan = "0c0c0c0c-0000-4000-8000-000000000000";
  fs::create_directory(dir_ + "/" + orphan);
  std::ofstream(dir_ + "/" + orphan + "/Patient.1.1.ndjson") << "x";
  touch(markers + "/" + orphan);
  // A job long gone, and a name that is not a job id.
  const std::string gone = "0e0e0e0e-0000-4000-8000-000000000000";
  touch(markers + "/" + gone);
  touch(markers + "/not-a-job");
  // A marker younger than an hour stays whatever its job (a node may still hold a file of
  // the job open).
  const std::string young = "0f0f0f0f-0000-4000-8000-000000000000";
  touch(markers + "/" + young);
  struct timeval old_times[2] = {{std::time(nullptr) - 7200, 0}, {std::time(nullptr) - 7200, 0}};
  for (const std::string& id : {cancelled, queued, orphan, gone}) {
    ASSERT_EQ(::utimes((markers + "/" + id).c_str(), old_times), 0);
  }
  ASSERT_TRUE(CancelJob(conn_.get(), cancelled, "test-client").ok());
  ASSERT_TRUE(fs::exists(dir_ + "/" + cancelled));

  ASSERT_TRUE(w->RunJanitor().ok());
  EXPECT_FALSE(fs::exists(dir_ + "/" + cancelled));
  EXPECT_EQ(Scalar("SELECT count(*) FROM export_job WHERE job_id = $1::uuid", {cancelled}), "0");
  EXPECT_FALSE(fs::exists(markers + "/" + cancelled));  // its files went first
  EXPECT_FALSE(fs::exists(markers + "/" + gone));
  EXPECT_TRUE(fs::exists(markers + "/" + queued));  // the row may still plan files
  EXPECT_TRUE(fs::exists(dir_ + "/" + orphan + "/Patient.1.1.ndjson"));
  EXPECT_TRUE(fs::exists(markers + "/" + orphan));  // its files are still there
  EXPECT_TRUE(fs::exists(markers + "/not-a-job"));
  EXPECT_TRUE(fs::exists(markers + "/" + young));

  ASSERT_EQ(::utimes((dir_ + "/" + orphan).c_str(), old_times), 0);
  ASSERT_TRUE(w->RunJanitor().ok());
  EXPECT_FALSE(fs::exists(dir_ + "/" + orphan));
  EXPECT_FALSE(fs::exists(markers + "/" + orphan));
  EXPECT_TRUE(fs::exists(markers + "/" + queued));
}

TEST_F(WorkerDbTest, RunWakesOnKickOffAndStopsCleanly) {
  StandardData();
  WorkerOptions o = Options();
  auto w = MakeWorker(o);
  ASSERT_NE(w, nullptr);
  std::thread run([&] { EXPECT_TRUE(w->Run().ok()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // threads idle, listening
  ExportRequest r = Request(ExportLevel::kSystem, {"Patient"});
  r.request_url = "http://fhir.test/fhir/$export";
  auto t0 = std::chrono::steady_clock::now();
  auto created = CreateJob(conn_.get(), "test-client", r, CreateJobOptions());
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  std::string state;
  // Up to 20 s: planning waits for every transaction older than the kick-off in the whole
  // cluster, and tests running in parallel (other schemas) hold some open for seconds on
  // purpose (the lock-holding lease and cancel tests).
  for (int i = 0; i < 4000 && state != "completed"; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    state = State(created->job_id);
  }
  auto latency =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  EXPECT_EQ(state, "completed");
  std::printf("kick-off to completed: %lld ms\n", static_cast<long long>(latency.count()));
  auto s0 = std::chrono::steady_clock::now();
  w->Stop();
  run.join();
  EXPECT_LT(std::chrono::steady_clock::now() - s0, std::chrono::seconds(3));
}

TEST_F(WorkerDbTest, StopHandsUnitsBackWithoutCountingTheAttempt) {
  for (int i = 0; i < 30; i++) Put("Observation", "o" + std::to_string(i), {"p1"});
  const std::string job = NewJob(Request(ExportLevel::kSystem));
  WorkerOptions o = Options();
  o.threads = 1;
  o.check_every_rows = 2;
  Worker* self = nullptr;
  o.on_heartbeat = [&](const std::string&, int, int64_t) { self->Stop(); };
  auto w = MakeWorker(o);
  self = w.get();
  ASSERT_TRUE(w->RunUntilIdle().ok());
  EXPECT_EQ(State(job), "running");
  EXPECT_EQ(Scalar("SELECT state || ' ' || attempts || ' ' || coalesce(worker, '-') "
                   "FROM export_unit WHERE job_id = $1::uuid",
                   {job}),
            "pending 0 -");
  EXPECT_EQ(Listing(dir_ + "/" + job), ".owner");
  RunAll(Options());  // another worker finishes it
  EXPECT_EQ(State(job), "completed");
  EXPECT_EQ(ReadExport(job).output.size(), 30u);
}

// ---- the export tier cannot be stalled (issue 11) ----------------------------------------

// Holds an ACCESS EXCLUSIVE lock on the resource tables from a connection of its own: a unit's
// statement then waits without returning a row, as a selective filter over a large table does.
class TableLock {
 public:
  TableLock() {
    auto c = PgConnection::Connect(TestConninfo());
    EXPECT_TRUE(c.ok());
    if (!c.ok()) return;
    conn_ = std::move(c).value();
    auto pid = conn_->Exec("SELECT pg_backend_pid()");
    EXPECT_TRUE(pid.ok());
    if (pid.ok()) pid_ = pid->str(0, 0);
    EXPECT_TRUE(conn_->Exec("BEGIN; LOCK TABLE resource IN ACCESS EXCLUSIVE MODE").ok());
  }
  const std::string& pid() const { return pid_; }
  ~TableLock() { Release(); }
  void Release() {
    if (conn_ != nullptr) (void)conn_->Exec("COMMIT");
    conn_.reset();
  }

 private:
  std::unique_ptr<PgConnection> conn_;
  std::string pid_;
};

// The unit statements of worker threads waiting for the lock held by backend `pid`.
int WaitingUnitStatements(PgConnection* conn, const std::string& pid) {
  auto r = conn->Exec(
      "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fhir-bulk-worker' "
      "AND state = 'active' AND query LIKE 'COPY (SELECT%' "
      "AND $1::int = ANY(pg_blocking_pids(pid))",
      {pid});
  return r.ok() ? static_cast<int>(r->int64(0, 0)) : -1;
}

template <typename F>
bool WaitFor(F&& cond, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return cond();
}

TEST_F(WorkerDbTest, UnitReturningNoRowsKeepsItsLease) {
  // Row 3: the lease was renewed only between row chunks, so a unit whose query returned no
  // rows for longer than the lease lost it and another thread ran it again.
  StandardData();
  const std::string job = NewJob(Request(ExportLevel::kSystem, {"Observation"}));
  WorkerOptions o = Options();
  o.lease_seconds = 2;
  o.check_every_ms = 200;
  auto w = MakeWorker(o);
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->PlanOne().ok());
  ASSERT_EQ(State(job), "running");
  TableLock lock;
  Status run_status;
  std::thread run([&] { run_status = w->RunUntilIdle(); });  // two threads
  EXPECT_TRUE(WaitFor([&] { return WaitingUnitStatements(conn_.get(), lock.pid()) == 1; },
                      std::chrono::seconds(5)));
  // Three leases long without a row: the lease is renewed all along, nobody else claims it.
  for (int i = 0; i < 12; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(Scalar("SELECT (lease_until > now())::text || ' ' || attempts FROM export_unit "
                     "WHERE job_id = $1::uuid",
                     {job}),
              "true 1")
        << "after " << (i + 1) * 500 << " ms";
  }
  lock.Release();
  run.join();
  ASSERT_TRUE(run_status.ok()) << run_status.ToString();
  EXPECT_EQ(State(job), "completed");
  EXPECT_EQ(Scalar("SELECT attempts FROM export_unit WHERE job_id = $1::uuid", {job}), "1");
  EXPECT_EQ(ReadExport(job).output.size(), 6u);
}

TEST_F(WorkerDbTest, CancelStopsWaitingStatementsOnEveryWorker) {
  // A cancel must stop the job's statements within seconds on every worker, even statements
  // that have not returned a row yet.
  StandardData();
  const std::string job = NewJob(Request(ExportLevel::kSystem, {"Observation", "Patient"}));
  WorkerOptions o = Options();
  o.threads = 1;
  o.check_every_ms = 200;
  auto w1 = MakeWorker(o);
  auto w2 = MakeWorker(o);
  ASSERT_NE(w1, nullptr);
  ASSERT_NE(w2, nullptr);
  ASSERT_TRUE(w1->PlanOne().ok());
  ASSERT_EQ(Scalar("SELECT units_total FROM export_job WHERE job_id = $1::uuid", {job}), "2");
  TableLock lock;
  Status s1, s2;
  std::thread r1([&] { s1 = w1->RunUntilIdle(); });
  std::thread r2([&] { s2 = w2->RunUntilIdle(); });
  ASSERT_TRUE(WaitFor([&] { return WaitingUnitStatements(conn_.get(), lock.pid()) == 2; },
                      std::chrono::seconds(5)));
  EXPECT_EQ(Scalar("SELECT count(DISTINCT worker) FROM export_unit WHERE job_id = $1::uuid "
                   "AND state = 'running'",
                   {job}),
            "2");
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(CancelJob(conn_.get(), job, "test-client").ok());
  // Both statements end while the lock is still held: they were cancelled, not finished.
  const bool stopped = WaitFor([&] { return WaitingUnitStatements(conn_.get(), lock.pid()) == 0; },
                               std::chrono::seconds(3));
  const auto took = std::chrono::steady_clock::now() - t0;
  lock.Release();  // (so that the test ends even when they were not)
  r1.join();
  r2.join();
  EXPECT_TRUE(stopped);
  EXPECT_LT(took, std::chrono::seconds(3));
  EXPECT_TRUE(s1.ok()) << s1.ToString();
  EXPECT_TRUE(s2.ok()) << s2.ToString();
  EXPECT_EQ(State(job), "cancelled");
  EXPECT_EQ(Listing(dir_ + "/" + job), ".owner");
}

// The worker's log lines, collected from whichever of its threads writes them.
class CapturedLog {
 public:
  std::function<void(const std::string&)> Sink() {
    return [this](const std::string& line) {
      std::lock_guard<std::mutex> l(mu_);
      text_ += line + "\n";
    };
  }
  std::string Text() {
    std::lock_guard<std::mutex> l(mu_);
    return text_;
  }

 private:
  std::mutex mu_;
  std::string text_;
};

TEST_F(WorkerDbTest, UnitOverTheTimeLimitFailsTheJobCleanly) {
  StandardData();
  const std::string job = NewJob(Request(ExportLevel::kSystem, {"Observation"}));
  const std::string other = NewJob(Request(ExportLevel::kSystem, {"Patient"}));
  WorkerOptions o = Options();
  o.unit_timeout_seconds = 1;
  o.check_every_ms = 200;
  CapturedLog log;
  o.log = log.Sink();
  auto w = MakeWorker(o);
  ASSERT_TRUE(w->PlanOne().ok());
  ASSERT_TRUE(w->PlanOne().ok());
  // Only the Observation table is locked: the other job goes on.
  auto locker = PgConnection::Connect(TestConninfo());
  ASSERT_TRUE(locker.ok());
  const std::string locker_pid = (*locker)->Exec("SELECT pg_backend_pid()")->str(0, 0);
  ASSERT_TRUE((*locker)
                  ->Exec("BEGIN; LOCK TABLE " +
                         Scalar("SELECT coalesce(to_regclass('resource_observation'), "
                                "'resource_other'::regclass)::text") +
                         " IN ACCESS EXCLUSIVE MODE")
                  .ok());
  auto t0 = std::chrono::steady_clock::now();
  Status s = w->RunUntilIdle();
  auto took = std::chrono::steady_clock::now() - t0;
  const int still_waiting = WaitingUnitStatements(conn_.get(), locker_pid);
  (void)(*locker)->Exec("COMMIT");
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_EQ(State(job), "failed");
  const std::string diagnostics = Scalar(
      "SELECT error->'issue'->0->>'diagnostics' FROM export_job WHERE job_id = $1::uuid", {job});
  EXPECT_NE(diagnostics.find("longer than the server's limit of 1 seconds"), std::string::npos)
      << diagnostics;
  EXPECT_EQ(diagnostics.find("SQLSTATE"), std::string::npos) << diagnostics;
  EXPECT_EQ(diagnostics.find("cancel"), std::string::npos) << diagnostics;
  EXPECT_EQ(State(other), "completed");
  EXPECT_EQ(still_waiting, 0);  // the statement was cancelled, not left waiting
}

TEST_F(WorkerDbTest, TimeLimitHoldsWhileRowsFlow) {
  // The limit is checked while rows arrive too, not only while the statement is silent.
  // Rows of 10 KB: the server sends each at once instead of gathering them in its buffer.
  const std::string big = "\"valueString\":\"" + std::string(10000, 'x') + "\"";
  for (int i = 0; i < 12; ++i) Put("Observation", "o" + std::to_string(i), {}, {}, "1 day", big);
  const std::string job = NewJob(Request(ExportLevel::kSystem, {"Observation"}));
  WorkerOptions o = Options();
  o.unit_timeout_seconds = 1;
  o.check_every_ms = 100;
  std::atomic<int64_t> rows_seen{0};
  o.on_heartbeat = [&](const std::string&, int, int64_t rows) {
    rows_seen = std::max<int64_t>(rows_seen.load(), rows);
  };
  auto w = MakeWorker(o);
  ASSERT_TRUE(w->PlanOne().ok());
  // The unit's table becomes a view yielding one row every 250 ms: 12 rows take 3 s.
  const std::string table = Scalar(
      "SELECT coalesce(to_regclass('resource_observation'), 'resource_other'::regclass)::text");
  Exec("ALTER TABLE " + table + " RENAME TO slow_rows_base");
  Exec("CREATE VIEW " + table +
       " AS SELECT * FROM slow_rows_base WHERE res_type <> 'Observation' OR "
       "pg_sleep(0.25)::text = ''");
  auto t0 = std::chrono::steady_clock::now();
  Status s = w->RunUntilIdle();
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_LT(took, std::chrono::seconds(4));
  EXPECT_GT(rows_seen.load(), 0);  // rows were flowing when the limit struck
  EXPECT_EQ(State(job), "failed");
  const std::string diagnostics = Scalar(
      "SELECT error->'issue'->0->>'diagnostics' FROM export_job WHERE job_id = $1::uuid", {job});
  EXPECT_NE(diagnostics.find("longer than the server's limit of 1 seconds"), std::string::npos)
      << diagnostics;
}

TEST_F(WorkerDbTest, PostgresMessagesAreEscapedInTheLog) {
  // A PostgreSQL message can quote client values; a newline in it must not forge log lines.
  StandardData();
  const std::string job = NewJob(Request(ExportLevel::kSystem, {"Observation"}));
  WorkerOptions o = Options();
  CapturedLog log;
  o.log = log.Sink();
  auto w = MakeWorker(o);
  ASSERT_TRUE(w->PlanOne().ok());
  const std::string table = Scalar(
      "SELECT coalesce(to_regclass('resource_observation'), 'resource_other'::regclass)::text");
  Exec(
      "CREATE FUNCTION forged_line() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN "
      "RAISE EXCEPTION E'bad value\\n2026/01/01 00:00:00 [emerg] 1#1: FAKE'; END $$");
  Exec("ALTER TABLE " + table + " RENAME TO forged_base");
  Exec("CREATE VIEW " + table + " AS SELECT * FROM forged_base WHERE forged_line()");
  ASSERT_TRUE(w->RunUntilIdle().ok());
  EXPECT_EQ(State(job), "failed");
  const std::string text = log.Text();
  EXPECT_NE(text.find("FAKE"), std::string::npos) << text;
  EXPECT_EQ(text.find("\n2026/01/01"), std::string::npos) << text;
}

TEST_F(WorkerDbTest, DatabaseErrorsReachTheLogNotTheClient) {
  // Row 11: the failed job's OperationOutcome carried PostgreSQL's raw message.
  StandardData();
  const std::string job = NewJob(Request(ExportLevel::kSystem, {"Observation"}));
  WorkerOptions o = Options();
  CapturedLog log;
  o.log = log.Sink();
  auto w = MakeWorker(o);
  ASSERT_TRUE(w->PlanOne().ok());
  // Planned; now the unit's statement fails inside PostgreSQL.
  Exec("ALTER TABLE resource RENAME COLUMN body TO body_secret_name");
  ASSERT_TRUE(w->RunUntilIdle().ok());
  EXPECT_EQ(State(job), "failed");
  const std::string diagnostics = Scalar(
      "SELECT error->'issue'->0->>'diagnostics' FROM export_job WHERE job_id = $1::uuid", {job});
  EXPECT_EQ(diagnostics.find("body"), std::string::npos) << diagnostics;
  EXPECT_EQ(diagnostics.find("SQLSTATE"), std::string::npos) << diagnostics;
  EXPECT_EQ(diagnostics.find("column"), std::string::npos) << diagnostics;
  const size_t at = diagnostics.find("(reference ");
  ASSERT_NE(at, std::string::npos) << diagnostics;
  const std::string ref = diagnostics.substr(at + 11, 8);
  // The log line with the same reference has the details.
  const std::string text = log.Text();
  const size_t line = text.find("reference " + ref + "): ");
  ASSERT_NE(line, std::string::npos) << text;
  EXPECT_NE(text.find("42703", line), std::string::npos) << text;
}

TEST_F(WorkerDbTest, UnitsAreClaimedFairlyAcrossClients) {
  // Client A has two big jobs and two units running elsewhere; client B's small job comes
  // last. B's units are claimed before any more of A's.
  StandardData();
  const std::vector<std::string> kTypes = {"Observation", "Patient", "Practitioner",
                                           "Organization"};
  const std::string a1 = NewJob(Request(ExportLevel::kSystem, kTypes), "client-a");
  const std::string a2 = NewJob(Request(ExportLevel::kSystem, kTypes), "client-a");
  const std::string b = NewJob(Request(ExportLevel::kSystem, {"Patient", "Condition"}), "client-b");
  WorkerOptions o = Options();
  o.threads = 1;
  auto w = MakeWorker(o);
  for (int i = 0; i < 3; i++) ASSERT_TRUE(w->PlanOne().ok());
  ASSERT_EQ(Scalar("SELECT string_agg(units_total::text, ',' ORDER BY created_at) FROM export_job"),
            "4,4,2");
  Exec(
      "UPDATE export_unit SET state = 'running', worker = 'elsewhere-t0', attempts = 1, "
      "lease_until = now() + interval '1 hour' WHERE job_id = $1::uuid AND unit_no <= 2",
      {a1});
  for (int i = 0; i < 2; i++) {
    auto did = w->RunOneUnit();
    ASSERT_TRUE(did.ok() && *did);
  }
  EXPECT_EQ(State(b), "completed");
  EXPECT_EQ(Scalar("SELECT count(*) FROM export_unit WHERE job_id = ANY($1::uuid[]) "
                   "AND state = 'done'",
                   {"{" + a1 + "," + a2 + "}"}),
            "0");
  // With B done, A's jobs share the threads: the job with fewer units running goes first.
  auto did = w->RunOneUnit();
  ASSERT_TRUE(did.ok() && *did);
  EXPECT_EQ(
      Scalar("SELECT count(*) FROM export_unit WHERE job_id = $1::uuid AND state = 'done'", {a2}),
      "1");
}

TEST_F(WorkerDbTest, FilesAndDirectoriesAreGroupReadableOnly) {
  // Row 6 (worker side): 0640 files and 0750 directories whatever the umask, in the export
  // directory's group.
  StandardData();
  const mode_t old_umask = ::umask(0);
  gid_t group = ::getegid();
  if (::geteuid() == 0) {
    group = 4242;  // root may give the export directory any group
    ASSERT_EQ(::chown(dir_.c_str(), static_cast<uid_t>(-1), group), 0);
  }
  WorkerOptions o = Options();
  o.gzip_level = 1;
  const std::string job = NewJob(Request(ExportLevel::kSystem, {"Patient", "Observation"}));
  RunAll(o);
  ::umask(old_umask);
  ASSERT_EQ(State(job), "completed");
  struct stat st;
  ASSERT_EQ(::stat((dir_ + "/" + job).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 02750u) << std::oct << (st.st_mode & 07777);
  EXPECT_EQ(st.st_gid, group);
  int files = 0;
  for (const auto& f : fs::directory_iterator(dir_ + "/" + job)) {
    ASSERT_EQ(::lstat(f.path().c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode)) << f.path();
    EXPECT_EQ(st.st_mode & 07777, 0640u) << f.path() << " " << std::oct << (st.st_mode & 07777);
    EXPECT_EQ(st.st_gid, group) << f.path();
    files++;
  }
  EXPECT_EQ(files, 5);  // .owner, two files and their gzip twins
}

TEST_F(WorkerDbTest, RetainedExportQuotaCountsJobsAndBytes) {
  // Row 5: only exports in progress were limited; completed ones kept for 24 h were not.
  StandardData();
  const std::string done = NewJob(Request(ExportLevel::kSystem, {"Observation"}), "client-q");
  RunAll(Options());
  ASSERT_EQ(State(done), "completed");
  const long long bytes =
      std::stoll(Scalar("SELECT bytes_written FROM export_job WHERE job_id = $1::uuid", {done}));
  EXPECT_EQ(std::to_string(bytes),
            Scalar("SELECT sum(bytes)::text FROM export_file WHERE job_id = $1::uuid", {done}));
  ASSERT_GT(bytes, 0);

  ExportRequest r = Request(ExportLevel::kSystem, {"Patient"});
  r.request_url = "http://fhir.test/fhir/$export";
  int64_t retry_after = -1;
  CreateJobOptions by_count;
  by_count.max_retained_per_client = 1;
  by_count.retry_after_seconds = &retry_after;
  auto refused = CreateJob(conn_.get(), "client-q", r, by_count);
  ASSERT_EQ(refused.status().code(), Status::Code::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("limit is 1"), std::string::npos);
  // Retry when the completed export expires (retention 24 h by default).
  EXPECT_GT(retry_after, 86000);
  EXPECT_TRUE(CreateJob(conn_.get(), "other-client", r, by_count).ok());  // per client

  CreateJobOptions by_bytes;
  by_bytes.max_retained_bytes_per_client = bytes;
  EXPECT_EQ(CreateJob(conn_.get(), "client-q", r, by_bytes).status().code(),
            Status::Code::kResourceExhausted);
  by_bytes.max_retained_bytes_per_client = bytes + 1;
  EXPECT_TRUE(CreateJob(conn_.get(), "client-q", r, by_bytes).ok());

  // Expired, failed or cancelled exports do not count.
  Exec("UPDATE export_job SET expires_at = now() - interval '1 second' WHERE job_id = $1::uuid",
       {done});
  Exec(
      "UPDATE export_job SET state = 'failed' WHERE client_id = 'client-q' AND job_id <> "
      "$1::uuid",
      {done});
  EXPECT_TRUE(CreateJob(conn_.get(), "client-q", r, by_count).ok());
  EXPECT_EQ(CreateJob(conn_.get(), "client-q", r, by_count).status().code(),
            Status::Code::kResourceExhausted);
  auto last =
      Scalar("SELECT job_id FROM export_job WHERE client_id = 'client-q' AND state = 'accepted'");
  ASSERT_TRUE(CancelJob(conn_.get(), last, "client-q").ok());
  EXPECT_TRUE(CreateJob(conn_.get(), "client-q", r, by_count).ok());
}

}  // namespace
}  // namespace fhirbulk
