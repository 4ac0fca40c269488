// Point-in-time exports (sql/0008, issue 18): the history triggers, the units' as-of reads,
// the janitor's pruning and the planner's horizon check, against a real PostgreSQL.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "export/export_request.h"
#include "schema_db_test.h"
#include "worker/planner.h"
#include "worker/unit_runner.h"
#include "worker/worker.h"

namespace fhirbulk {
namespace {

namespace fs = std::filesystem;

class PointInTimeTest : public SchemaDbTest {
 protected:
  PointInTimeTest() : SchemaDbTest("pit") {}
  static std::string Body(const std::string& type, const std::string& id, int version) {
    return "{\"resourceType\":\"" + type + "\",\"id\":\"" + id +
           "\",\"v\":" + std::to_string(version) + "}";
  }
  // A first version, `age` ago.
  void Put(const std::string& type, const std::string& id, const std::string& patient,
           const std::string& age = "1 day") {
    Exec(
        "INSERT INTO resource (res_type, res_id, version, last_updated, body, patients) "
        "VALUES ($1, $2, 1, clock_timestamp() - $3::interval, $4, $5::text[])",
        {type, id, age, Body(type, id, 1), "{" + patient + "}"});
  }
  // A new version as the loader writes it: the old row deleted, the new one inserted, in one
  // transaction.
  void Rewrite(const std::string& type, const std::string& id, const std::string& patient) {
    const std::string v =
        Scalar("SELECT version + 1 FROM resource WHERE res_type = $1 AND res_id = $2", {type, id});
    Exec("BEGIN");
    Exec("DELETE FROM resource WHERE res_type = $1 AND res_id = $2", {type, id});
    Exec(
        "INSERT INTO resource (res_type, res_id, version, last_updated, body, patients) "
        "VALUES ($1, $2, $3::bigint, clock_timestamp(), $4, $5::text[])",
        {type, id, v, Body(type, id, std::stoi(v)), "{" + patient + "}"});
    Exec("COMMIT");
  }
  // A deletion as the loader writes it: a tombstone.
  void Delete(const std::string& type, const std::string& id) {
    Exec(
        "UPDATE resource SET deleted = true, version = version + 1, "
        "last_updated = clock_timestamp(), body = NULL WHERE res_type = $1 AND res_id = $2",
        {type, id});
  }
  std::string NewJob(const ExportRequest& request) {
    ExportRequest r = request;
    r.request_url = "http://fhir.test/fhir/$export";
    return Scalar(
        "INSERT INTO export_job (client_id, request, request_url, transaction_time, "
        "xmax_at_kickoff) VALUES ('c', $1::jsonb, $2, clock_timestamp(), "
        "pg_current_xact_id()) RETURNING job_id::text",
        {ExportRequestToJson(r), r.request_url});
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
    o.history_retention_seconds = 0;
    if (std::getenv("WORKER_LOG") == nullptr) o.log = [](const std::string&) {};
    return o;
  }
  std::unique_ptr<Worker> MakeWorker(const WorkerOptions& o) {
    auto w = Worker::Create(o);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    return w.ok() ? std::move(w).value() : nullptr;
  }
  void RunAll(const WorkerOptions& o) {
    auto w = MakeWorker(o);
    ASSERT_NE(w, nullptr);
    Status s = w->RunUntilIdle();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  std::string State(const std::string& job) {
    return Scalar("SELECT state FROM export_job WHERE job_id = $1::uuid", {job});
  }
  // Every line of the job's NDJSON files (not the gzip twins), counted.
  std::map<std::string, int> Lines(const std::string& job) {
    std::map<std::string, int> lines;
    if (!fs::exists(dir_ + "/" + job)) return lines;
    for (const auto& f : fs::directory_iterator(dir_ + "/" + job)) {
      const std::string name = f.path().filename().string();
      if (name.size() < 7 || name.compare(name.size() - 7, 7, ".ndjson") != 0) continue;
      std::ifstream in(f.path());
      std::string line;
      while (std::getline(in, line)) lines[line]++;
    }
    return lines;
  }
};

TEST_F(PointInTimeTest, TriggersKeepReplacedVersionsWithTheirInterval) {
  Put("Observation", "o1", "p1");
  Put("Observation", "o2", "p1");
  Rewrite("Observation", "o1", "p1");
  Delete("Observation", "o2");
  // Each kept version ends exactly where its successor starts.
  EXPECT_EQ(Scalar("SELECT count(*) FROM resource_history h JOIN resource r USING (res_type, "
                   "res_id) WHERE h.valid_to = r.last_updated AND h.version = r.version - 1 "
                   "AND NOT h.deleted AND h.body = '" +
                   Body("Observation", "o1", 1) + "'"),
            "1");
  EXPECT_EQ(Scalar("SELECT count(*) FROM resource_history h JOIN resource r USING (res_type, "
                   "res_id) WHERE r.res_id = 'o2' AND r.deleted AND h.valid_to = r.last_updated"),
            "1");
  // Re-created after its deletion: the tombstone is kept too.
  Rewrite("Observation", "o2", "p1");
  EXPECT_EQ(Scalar("SELECT count(*) FROM resource_history WHERE res_id = 'o2' AND deleted AND "
                   "valid_to = (SELECT last_updated FROM resource WHERE res_id = 'o2')"),
            "1");
  // First versions cost no history; an UPDATE that changes no version neither.
  Put("Observation", "o3", "p1");
  Exec("UPDATE resource SET tokens = '{a}' WHERE res_id = 'o3'");
  EXPECT_EQ(Scalar("SELECT count(*) FROM resource_history WHERE res_id = 'o3'"), "0");
}

TEST_F(PointInTimeTest, GroupMembershipOfTheReplacedVersionIsKept) {
  Put("Group", "g", "");
  Exec(
      "INSERT INTO group_member VALUES ('g', 0, 'p1', false, NULL, NULL), "
      "('g', 1, 'p2', false, NULL, NULL)");
  Exec("BEGIN");
  Exec("DELETE FROM resource WHERE res_type = 'Group' AND res_id = 'g'");
  Exec(
      "INSERT INTO resource (res_type, res_id, version, last_updated, body) VALUES "
      "('Group', 'g', 2, clock_timestamp(), '{}')");
  Exec("DELETE FROM group_member WHERE group_id = 'g'");
  Exec("INSERT INTO group_member VALUES ('g', 0, 'p3', false, NULL, NULL)");
  Exec("COMMIT");
  EXPECT_EQ(Scalar("SELECT string_agg(patient_id || ':' || group_version, ',' ORDER BY "
                   "patient_id) FROM group_member_history"),
            "p1:1,p2:1");
}

TEST_F(PointInTimeTest, ExportReadsEveryResourceAsOfTransactionTime) {
  for (int i = 0; i < 300; i++) Put("Observation", "o" + std::to_string(i), "p1");
  Put("Patient", "p1", "p1");
  Exec("ANALYZE resource_observation");
  const std::string job = NewJob(Request(ExportLevel::kSystem, {"Observation", "Patient"}));
  // After transactionTime: updates (one of them twice), deletions, a creation.
  for (int i = 0; i < 300; i += 7) Rewrite("Observation", "o" + std::to_string(i), "p1");
  Rewrite("Observation", "o0", "p1");
  for (int i = 1; i < 300; i += 11) Delete("Observation", "o" + std::to_string(i));
  Delete("Patient", "p1");
  Put("Observation", "new", "p1", "0 seconds");
  WorkerOptions o = Options();
  o.target_unit_resources = 50;  // page ranges: the kept versions must still come once
  RunAll(o);
  ASSERT_EQ(State(job), "completed");
  EXPECT_GT(std::stoi(Scalar("SELECT count(*) FROM export_unit WHERE job_id = $1::uuid "
                             "AND res_type = 'Observation'",
                             {job})),
            1);
  std::map<std::string, int> expected;
  for (int i = 0; i < 300; i++) expected[Body("Observation", "o" + std::to_string(i), 1)] = 1;
  expected[Body("Patient", "p1", 1)] = 1;
  EXPECT_EQ(Lines(job), expected);
}

// organizeOutputBy=Patient reads blocks of patients, not types: the same as-of rows. Found
// missing in review: the block units read only current rows, so a resource replaced after
// transactionTime was in no file.
TEST_F(PointInTimeTest, PatientBlocksReadEveryResourceAsOfTransactionTime) {
  for (int i = 0; i < 60; i++)
    Put("Observation", "o" + std::to_string(i), "p" + std::to_string(i % 3));
  for (int p = 0; p < 3; p++) Put("Patient", "p" + std::to_string(p), "p" + std::to_string(p));
  ExportRequest r = Request(ExportLevel::kSystem, {"Observation", "Patient"});
  r.organize_output_by = "Patient";
  const std::string job = NewJob(r);
  for (int i = 0; i < 60; i += 4)
    Rewrite("Observation", "o" + std::to_string(i), "p" + std::to_string(i % 3));
  for (int i = 1; i < 60; i += 9) Delete("Observation", "o" + std::to_string(i));
  Rewrite("Patient", "p1", "p1");
  Put("Observation", "new", "p0", "0 seconds");
  RunAll(Options());
  ASSERT_EQ(State(job), "completed");
  std::map<std::string, int> expected;
  for (int i = 0; i < 60; i++) expected[Body("Observation", "o" + std::to_string(i), 1)] = 1;
  for (int p = 0; p < 3; p++) expected[Body("Patient", "p" + std::to_string(p), 1)] = 1;
  std::map<std::string, int> resources;  // the block files' lines but the Parameters headers
  for (const auto& [line, n] : Lines(job)) {
    if (line.rfind("{\"resourceType\":\"Parameters\"", 0) != 0) resources[line] = n;
  }
  EXPECT_EQ(resources, expected);
}

// includeAssociatedData reads its Provenance and their targets as of transactionTime too.
// Found as a debt of issue 18: the assoc unit read the current rows only, so a Provenance
// replaced after transactionTime, or one whose target was deleted since, was in no file.
TEST_F(PointInTimeTest, AssociatedProvenanceIsReadAsOfTransactionTime) {
  // After transactionTime, either only a Provenance is replaced (the unit must see history
  // of Provenance itself, not only of its targets' types), or also a target is deleted and a
  // newer Provenance of another target appears.
  for (const bool targets_change : {false, true}) {
    for (const std::string mode : {"RelevantProvenanceResources", "LatestProvenanceResources"}) {
      SCOPED_TRACE(mode + (targets_change ? ", targets change" : ", only pv1 changes"));
      Exec("TRUNCATE resource, resource_history");
      const auto provenance = [&](const std::string& id, const std::string& target, int version,
                                  const std::string& age) {
        Exec(
            "INSERT INTO resource (res_type, res_id, version, last_updated, body, refs) VALUES "
            "('Provenance', $1, $2::bigint, clock_timestamp() - $3::interval, $4, $5::text[])",
            {id, std::to_string(version), age, Body("Provenance", id, version),
             "{target=Observation/" + target + "}"});
      };
      Put("Observation", "o1", "p1");
      Put("Observation", "o2", "p1");
      provenance("pv1", "o1", 1, "1 day");
      provenance("pv2", "o2", 1, "1 day");
      ExportRequest r = Request(ExportLevel::kSystem, {"Observation"});
      r.include_associated_data = {mode};
      const std::string job = NewJob(r);
      Exec("BEGIN");
      Exec("DELETE FROM resource WHERE res_type = 'Provenance' AND res_id = 'pv1'");
      provenance("pv1", "o1", 2, "0 seconds");
      Exec("COMMIT");
      if (targets_change) {
        Delete("Observation", "o2");
        provenance("pv3", "o1", 1, "0 seconds");
      }
      RunAll(Options());
      ASSERT_EQ(State(job), "completed");
      const std::map<std::string, int> expected = {{Body("Observation", "o1", 1), 1},
                                                   {Body("Observation", "o2", 1), 1},
                                                   {Body("Provenance", "pv1", 1), 1},
                                                   {Body("Provenance", "pv2", 1), 1}};
      EXPECT_EQ(Lines(job), expected);
    }
  }
}

// A blocks unit reads in its own REPEATABLE READ transaction with SET LOCAL planner settings
// (index order): the data connection serves the next unit of any kind with the settings,
// isolation and transaction state it had before.
TEST_F(PointInTimeTest, BlockUnitsLeaveTheDataConnectionAsTheyFoundIt) {
  for (int i = 0; i < 12; i++)
    Put("Observation", "o" + std::to_string(i), "p" + std::to_string(i % 3));
  for (int p = 0; p < 3; p++) Put("Patient", "p" + std::to_string(p), "p" + std::to_string(p));
  ExportRequest r = Request(ExportLevel::kSystem, {"Observation", "Patient"});
  r.organize_output_by = "Patient";
  const std::string job = NewJob(r);
  auto control = ConnectTestDb();
  auto data = ConnectTestDb();
  ASSERT_NE(control, nullptr);
  ASSERT_NE(data, nullptr);
  constexpr const char* kSettings =
      "SELECT current_setting('enable_sort') || current_setting('enable_bitmapscan') || "
      "current_setting('max_parallel_workers_per_gather') || "
      "current_setting('transaction_isolation')";
  auto before = data->Exec(kSettings);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  PlannerOptions po;
  po.export_dir = dir_;
  po.worker_id = "test-planner";
  po.log = [](const std::string&) {};
  auto planned = PlanNextJob(control.get(), po);
  ASSERT_TRUE(planned.ok() && *planned) << planned.status().ToString();
  UnitRunnerOptions uo;
  uo.export_dir = dir_;
  uo.worker_id = "test-unit";
  uo.log = [](const std::string&) {};
  int units = 0;
  while (true) {
    auto ran = RunNextUnit(control.get(), data.get(), uo);
    ASSERT_TRUE(ran.ok()) << ran.status().ToString();
    if (!*ran) break;
    units++;
    EXPECT_TRUE(data->idle()) << "unit " << units << " left a transaction open";
    auto after = data->Exec(kSettings);
    ASSERT_TRUE(after.ok()) << after.status().ToString();
    EXPECT_EQ(after->str(0, 0), before->str(0, 0)) << "after unit " << units;
  }
  EXPECT_GT(units, 0);
  EXPECT_EQ(State(job), "completed");
}

TEST_F(PointInTimeTest, SinceGroupAndDeletedListAsOfTransactionTime) {
  Put("Patient", "p1", "p1", "2 days");
  Put("Patient", "p2", "p2", "2 days");
  Put("Condition", "c1", "p1", "2 days");
  Put("Condition", "c2", "p2", "2 days");
  Put("Condition", "gone", "p1", "2 days");
  Put("Group", "g", "", "2 days");
  Exec("INSERT INTO group_member VALUES ('g', 0, 'p1', false, NULL, NULL)");
  const std::string since_us =
      Scalar("SELECT (extract(epoch FROM clock_timestamp() - interval '1 day') * 1000000)::bigint");
  Delete("Condition", "gone");  // before transactionTime: in `deleted`
  ExportRequest sr = Request(ExportLevel::kSystem, {"Condition"});
  sr.since_us = std::stoll(since_us);
  const std::string since_job = NewJob(sr);
  ExportRequest gr = Request(ExportLevel::kGroup, {"Patient", "Condition"});
  gr.group_id = "g";
  const std::string group_job = NewJob(gr);
  // After: the deleted one re-created, the Group now has p2 only, c1 rewritten.
  Rewrite("Condition", "gone", "p1");
  Exec("BEGIN");
  Exec("DELETE FROM resource WHERE res_type = 'Group' AND res_id = 'g'");
  Exec(
      "INSERT INTO resource (res_type, res_id, version, last_updated, body) VALUES "
      "('Group', 'g', 2, clock_timestamp(), '{}')");
  Exec("DELETE FROM group_member WHERE group_id = 'g'");
  Exec("INSERT INTO group_member VALUES ('g', 0, 'p2', false, NULL, NULL)");
  Exec("COMMIT");
  Rewrite("Condition", "c1", "p1");
  RunAll(Options());
  ASSERT_EQ(State(since_job), "completed");
  ASSERT_EQ(State(group_job), "completed");
  std::map<std::string, int> deleted_only = {
      {"{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"request\":"
       "{\"method\":\"DELETE\",\"url\":\"Condition/gone\"}}]}",
       1}};
  EXPECT_EQ(Lines(since_job), deleted_only);  // c1, c2 older than _since
  std::map<std::string, int> group = {{Body("Patient", "p1", 1), 1},
                                      {Body("Condition", "c1", 1), 1}};
  EXPECT_EQ(Lines(group_job), group);
}

// A type split into two page ranges, its units run at different moments (each its own
// snapshot), and versions current at T replaced between the two: one whose row lies in the
// second range (read by neither unit before sql/0019) and one in the first range (must not
// be read twice).
TEST_F(PointInTimeTest, SplitTypeUnitsReadEachVersionOnceWhateverTheyRunBetween) {
  const int kRows = 400;
  for (int i = 0; i < kRows; i++) Put("Observation", "o" + std::to_string(i), "p1");
  const std::string pages = Scalar(
      "SELECT pg_relation_size('resource_observation') / current_setting('block_size')::int");
  ASSERT_GE(std::stoi(pages), 4) << "the rows should fill several pages";
  const int64_t split = std::stoi(pages) / 2;
  const std::string in_first = Scalar(
      "SELECT res_id FROM resource_observation WHERE ctid < '(1,0)'::tid ORDER BY res_id LIMIT 1");
  const std::string in_second = Scalar("SELECT res_id FROM resource_observation WHERE ctid >= '(" +
                                       std::to_string(split) + ",0)'::tid ORDER BY res_id LIMIT 1");
  ASSERT_FALSE(in_first.empty() || in_second.empty());
  const int64_t t =
      std::stoll(Scalar("SELECT (extract(epoch FROM clock_timestamp()) * 1e6)::bigint"));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));

  const ExportRequest r = Request(ExportLevel::kSystem, {"Observation"});
  UnitPlan first;
  first.res_type = "Observation";
  first.page_hi = split;
  UnitPlan second = first;
  second.page_lo = split;
  second.page_hi.reset();
  // The unit's rows as a query instead of a COPY, to count them here.
  auto rows = [&](const UnitPlan& unit) {
    auto sql = BuildUnitCopySql(conn_.get(), r, "00000000-0000-4000-8000-000000000000", t, unit,
                                "resource_observation");
    EXPECT_TRUE(sql.ok()) << sql.status().ToString();
    std::string q = sql.ok() ? *sql : "";
    const std::string head = "COPY (", tail = ") TO STDOUT (FORMAT binary)";
    EXPECT_EQ(q.rfind(head, 0), 0u);
    EXPECT_GE(q.size(), head.size() + tail.size());
    q = "SELECT body FROM (" + q.substr(head.size(), q.size() - head.size() - tail.size()) + ") u";
    std::multiset<std::string> out;
    PgResult res = Exec(q);
    for (int i = 0; i < res.rows(); i++) out.insert(res.str(i, 0));
    return out;
  };

  std::multiset<std::string> read = rows(first);
  Rewrite("Observation", in_second, "p1");  // after the first unit, before the second
  Rewrite("Observation", in_first, "p1");
  std::multiset<std::string> later = rows(second);
  read.insert(later.begin(), later.end());

  EXPECT_EQ(read.size(), static_cast<size_t>(kRows));
  for (int i = 0; i < kRows; i++) {
    const std::string body = Body("Observation", "o" + std::to_string(i), 1);
    EXPECT_EQ(read.count(body), 1u) << body;
  }
}

TEST_F(PointInTimeTest, JanitorPrunesWhatNoRetainedExportNeeds) {
  Put("Observation", "o1", "p1");
  Put("Observation", "o2", "p1");
  Rewrite("Observation", "o1", "p1");  // replaced before the job: never needed by it
  const std::string job = NewJob(Request(ExportLevel::kSystem, {"Observation"}));
  Rewrite("Observation", "o2", "p1");  // replaced after: needed while the job is kept
  auto w = MakeWorker(Options());
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->RunJanitor().ok());
  EXPECT_EQ(Scalar("SELECT string_agg(res_id, ',') FROM resource_history"), "o2");
  ASSERT_TRUE(w->RunUntilIdle().ok());
  ASSERT_EQ(State(job), "completed");
  ASSERT_TRUE(w->RunJanitor().ok());  // completed, not expired: still kept
  EXPECT_EQ(Scalar("SELECT count(*) FROM resource_history"), "1");
  Exec("UPDATE export_job SET expires_at = now() - interval '1 second'");
  ASSERT_TRUE(w->RunJanitor().ok());
  EXPECT_EQ(Scalar("SELECT count(*) FROM resource_history"), "0");
  EXPECT_EQ(Scalar("SELECT pruned_before > now() - interval '1 minute' FROM history_horizon"), "t");
}

// Every planner checks the horizon row the pruning pass locks: a pass waiting on a lock of
// resource_history (a DDL, a VACUUM FULL) while holding that row stalled every kick-off for as
// long (seen in t/29 under load). The pass now gives up at once and planning goes on.
TEST_F(PointInTimeTest, PruningSkipsItsPassWhileTheHistoryIsLockedAndPlanningGoesOn) {
  Put("Observation", "o1", "p1");
  Rewrite("Observation", "o1", "p1");
  // Kicked off before the lock: the planner waits for transactions older than the kick-off.
  const std::string job = NewJob(Request(ExportLevel::kSystem, {"Observation"}));
  auto holder = ConnectTestDb();
  ASSERT_NE(holder, nullptr);
  ASSERT_TRUE(holder->Exec("BEGIN; LOCK TABLE resource_history IN ACCESS EXCLUSIVE MODE").ok());
  auto w = MakeWorker(Options());
  ASSERT_NE(w, nullptr);
  auto janitor = std::async(std::launch::async, [&] { return w->RunJanitor(); });
  const bool returned = janitor.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  if (!returned) (void)holder->Exec("ROLLBACK");  // lets the pass end, so the test can fail
  ASSERT_TRUE(returned) << "the pruning pass waited for the lock";
  Status s = janitor.get();
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Scalar("SELECT pruned_before = '-infinity' FROM history_horizon"), "t");

  // With the lock still held, the kick-off is planned.
  auto planned = w->PlanOne();
  ASSERT_TRUE(planned.ok()) << planned.status().ToString();
  EXPECT_TRUE(*planned);
  EXPECT_EQ(State(job), "running");
  ASSERT_TRUE(holder->Exec("COMMIT").ok());

  ASSERT_TRUE(w->RunJanitor().ok());  // unlocked: the next pass prunes
  EXPECT_EQ(Scalar("SELECT count(*) FROM resource_history"), "0");
}

TEST_F(PointInTimeTest, JobOlderThanThePrunedHorizonFailsAsTransient) {
  Put("Observation", "o1", "p1");
  const std::string job = NewJob(Request(ExportLevel::kSystem, {"Observation"}));
  // As if a janitor pass had pruned past it before its kick-off committed.
  Exec("UPDATE history_horizon SET pruned_before = clock_timestamp()");
  RunAll(Options());
  EXPECT_EQ(State(job), "failed");
  EXPECT_EQ(Scalar("SELECT error_transient FROM export_job WHERE job_id = $1::uuid", {job}), "t");
}

}  // namespace
}  // namespace fhirbulk
