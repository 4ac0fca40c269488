// Metrics and health: the Prometheus text the core writes (checked by a strict line parser),
// the status classes and token outcomes the module counts by, the health verdicts, and, with
// a database, the gauges, health query and worker heartbeat against real rows.

#include "server/metrics.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "server/health.h"
#include "test_db.h"
#include "util/version.h"
#include "worker/heartbeat.h"

namespace fhirbulk {
namespace {

// A strict reader of the text exposition format 0.0.4: every line is a HELP, a TYPE or a
// sample; a family's HELP and TYPE come once, before its samples; label syntax and escapes
// are checked. Returns "" or the first problem; *samples maps "name{labels}" to the value.
std::string ParseExposition(const std::string& text, std::map<std::string, double>* samples) {
  static const std::regex kHelp(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) [^\n]*$)");
  static const std::regex kType(
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  static const std::regex kSample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})? ([-+]?([0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|Inf)|NaN)$)");
  if (text.empty() || text.back() != '\n') return "does not end with a newline";
  std::set<std::string> helped, typed, sampled;
  std::map<std::string, std::string> types;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    n++;
    std::smatch m;
    std::string where = "line " + std::to_string(n) + ": " + line;
    if (std::regex_match(line, m, kHelp)) {
      if (!helped.insert(m[1]).second) return "second HELP, " + where;
      if (sampled.count(m[1])) return "HELP after samples, " + where;
    } else if (std::regex_match(line, m, kType)) {
      if (!typed.insert(m[1]).second) return "second TYPE, " + where;
      if (sampled.count(m[1])) return "TYPE after samples, " + where;
      types[m[1]] = m[2];
    } else if (std::regex_match(line, m, kSample)) {
      std::string name = m[1];
      std::string family = name;
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        std::string s = suffix;
        if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0 &&
            types.count(name.substr(0, name.size() - s.size())) &&
            types[name.substr(0, name.size() - s.size())] == "histogram") {
          family = name.substr(0, name.size() - s.size());
        }
      }
      if (!typed.count(family)) return "sample without TYPE, " + where;
      sampled.insert(family);
      std::string key = name + std::string(m[2]);
      if (samples->count(key)) return "duplicate sample, " + where;
      std::string v = m[7];
      (*samples)[key] = v == "+Inf" || v == "Inf" ? 1e300 : std::strtod(v.c_str(), nullptr);
    } else {
      return "not a HELP, TYPE or sample line, " + where;
    }
  }
  return "";
}

TEST(MetricsTest, StatusClasses) {
  EXPECT_STREQ(MetricCodeLabel(MetricCodeIndex(200)), "200");
  EXPECT_STREQ(MetricCodeLabel(MetricCodeIndex(202)), "202");
  EXPECT_STREQ(MetricCodeLabel(MetricCodeIndex(206)), "2xx");
  EXPECT_STREQ(MetricCodeLabel(MetricCodeIndex(304)), "304");
  EXPECT_STREQ(MetricCodeLabel(MetricCodeIndex(301)), "3xx");
  EXPECT_STREQ(MetricCodeLabel(MetricCodeIndex(401)), "401");
  EXPECT_STREQ(MetricCodeLabel(MetricCodeIndex(429)), "429");
  EXPECT_STREQ(MetricCodeLabel(MetricCodeIndex(406)), "4xx");
  EXPECT_STREQ(MetricCodeLabel(MetricCodeIndex(503)), "503");
  EXPECT_STREQ(MetricCodeLabel(MetricCodeIndex(500)), "5xx");
  EXPECT_STREQ(MetricCodeLabel(MetricCodeIndex(0)), "5xx");
  EXPECT_STREQ(MetricCodeLabel(MetricCodeIndex(999)), "5xx");
  for (int s = 0; s < 1000; s++) {
    int i = MetricCodeIndex(s);
    ASSERT_GE(i, 0);
    ASSERT_LT(i, FHIRBULK_METRIC_CODES);
  }
  EXPECT_EQ(fhirbulk_metric_code_index(429), MetricCodeIndex(429));
}

TEST(MetricsTest, RoutesAndTokenOutcomes) {
  EXPECT_EQ(MetricRoute(MatchRoute("/$export"), HttpMethod::kGet), FHIRBULK_METRIC_KICKOFF_SYSTEM);
  EXPECT_EQ(MetricRoute(MatchRoute("/Patient/$export"), HttpMethod::kPost),
            FHIRBULK_METRIC_KICKOFF_PATIENT);
  EXPECT_EQ(MetricRoute(MatchRoute("/Group/g1/$export"), HttpMethod::kGet),
            FHIRBULK_METRIC_KICKOFF_GROUP);
  EXPECT_EQ(MetricRoute(MatchRoute("/$export-status/abc"), HttpMethod::kGet), FHIRBULK_METRIC_POLL);
  EXPECT_EQ(MetricRoute(MatchRoute("/$export-status/abc"), HttpMethod::kDelete),
            FHIRBULK_METRIC_CANCEL);
  EXPECT_EQ(MetricRoute(MatchRoute("/auth/token"), HttpMethod::kPost), FHIRBULK_METRIC_TOKEN);
  EXPECT_EQ(MetricRoute(MatchRoute("/_health"), HttpMethod::kGet), FHIRBULK_METRIC_HEALTH);
  EXPECT_EQ(MetricRoute(MatchRoute("/metadata"), HttpMethod::kGet), FHIRBULK_METRIC_OTHER);
  EXPECT_EQ(MetricRoute(MatchRoute("/nope"), HttpMethod::kGet), FHIRBULK_METRIC_OTHER);

  EXPECT_EQ(TokenOutcome(""), FHIRBULK_TOKEN_GRANTED);
  EXPECT_EQ(TokenOutcome("invalid_client"), FHIRBULK_TOKEN_INVALID_CLIENT);
  EXPECT_EQ(TokenOutcome("invalid_grant"), FHIRBULK_TOKEN_INVALID_GRANT);
  EXPECT_EQ(TokenOutcome("invalid_scope"), FHIRBULK_TOKEN_INVALID_SCOPE);
  EXPECT_EQ(TokenOutcome("unsupported_grant_type"), FHIRBULK_TOKEN_UNSUPPORTED_GRANT_TYPE);
  EXPECT_EQ(TokenOutcome("temporarily_unavailable"), FHIRBULK_TOKEN_UNAVAILABLE);
  EXPECT_EQ(TokenOutcome("invalid_request"), FHIRBULK_TOKEN_INVALID_REQUEST);
}

TEST(MetricsTest, CountersFormatStrictlyWithEveryLabel) {
  fhirbulk_counters_t c{};
  c.responses[FHIRBULK_METRIC_KICKOFF_GROUP][MetricCodeIndex(202)] = 3;
  c.responses[FHIRBULK_METRIC_POLL][MetricCodeIndex(429)] = 7;
  c.tokens[FHIRBULK_TOKEN_INVALID_SCOPE] = 2;
  c.download_bytes = 123456789012ULL;
  c.pool_queued = 4;
  std::string text;
  FormatCounters(c, &text);
  std::map<std::string, double> s;
  ASSERT_EQ(ParseExposition(text, &s), "") << text;
  EXPECT_EQ(s["fhir_bulk_requests_total{route=\"kickoff\",level=\"group\",code=\"202\"}"], 3);
  EXPECT_EQ(s["fhir_bulk_requests_total{route=\"kickoff\",level=\"system\",code=\"202\"}"], 0);
  EXPECT_EQ(s["fhir_bulk_requests_total{route=\"poll\",code=\"429\"}"], 7);
  EXPECT_EQ(s["fhir_bulk_token_requests_total{outcome=\"invalid_scope\"}"], 2);
  EXPECT_EQ(s["fhir_bulk_token_requests_total{outcome=\"granted\"}"], 0);
  EXPECT_EQ(s["fhir_bulk_download_bytes_total"], 123456789012.0);
  EXPECT_EQ(s["fhir_bulk_thread_pool_queued"], 4);
  // every route x class, every outcome but "none"
  size_t requests = 0;
  for (const auto& [k, v] : s) requests += k.rfind("fhir_bulk_requests_total{", 0) == 0;
  EXPECT_EQ(requests, static_cast<size_t>(FHIRBULK_METRIC_ROUTES * FHIRBULK_METRIC_CODES));
  EXPECT_EQ(text.find("outcome=\"\""), std::string::npos);
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  std::string text;
  PromWriter w(&text);
  w.Family("x", "gauge", "test");
  w.Sample("x", {{"worker", "a\"b\\c\nd"}, {"empty", ""}}, 1.5);
  EXPECT_EQ(text, "# HELP x test\n# TYPE x gauge\nx{worker=\"a\\\"b\\\\c\\nd\"} 1.5\n");
  std::map<std::string, double> s;
  EXPECT_EQ(ParseExposition(text, &s), "");
  std::map<std::string, double> bad;
  EXPECT_NE(ParseExposition("x{worker=\"a\"b\"} 1\n", &bad), "");  // the parser can fail
  EXPECT_NE(ParseExposition("# TYPE x gauge\nx 1\n# TYPE x gauge\n", &bad), "");
}

TEST(MetricsTest, DatabaseGaugesFormat) {
  DbGauges g;
  g.schema_version = 6;
  g.jobs = {{"accepted", 1}, {"running", 2}, {"completed", 3}, {"failed", 0}, {"cancelled", 0}};
  g.duration_le = {0, 1, 2, 3, 3, 3, 3, 3, 3, 3};
  g.duration_count = 4;
  g.duration_sum = 12345.5;
  g.workers.push_back({"host-1-ab\"cd", "host", 1.25, 2, 1});
  std::string text;
  FormatDbGauges(&g, &text);
  std::map<std::string, double> s;
  ASSERT_EQ(ParseExposition(text, &s), "") << text;
  EXPECT_EQ(s["fhir_bulk_database_up"], 1);
  EXPECT_EQ(s["fhir_bulk_jobs{state=\"running\"}"], 2);
  EXPECT_EQ(s["fhir_bulk_export_duration_seconds_bucket{le=\"5\"}"], 1);
  EXPECT_EQ(s["fhir_bulk_export_duration_seconds_bucket{le=\"+Inf\"}"], 4);
  EXPECT_EQ(s["fhir_bulk_export_duration_seconds_count"], 4);
  EXPECT_EQ(s["fhir_bulk_workers_live"], 1);
  EXPECT_EQ(s["fhir_bulk_worker_units_in_flight{worker=\"host-1-ab\\\"cd\",host=\"host\"}"], 1);

  std::string down;
  FormatDbGauges(nullptr, &down);
  EXPECT_EQ(down,
            "# HELP fhir_bulk_database_up 1 when this node could read the database for "
            "these metrics.\n# TYPE fhir_bulk_database_up gauge\nfhir_bulk_database_up 0\n");
}

rapidjson::Document Json(const HttpResponse& r) {
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  EXPECT_FALSE(d.HasParseError()) << r.body;
  return d;
}

TEST(HealthTest, Verdicts) {
  HealthReport h;
  h.schema_version = 6;
  h.live_workers = 1;
  h.queued_jobs = 2;
  h.oldest_queued_age_seconds = 500;
  HttpResponse r = HealthResponse(h, 30);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/health+json");
  auto d = Json(r);
  EXPECT_STREQ(d["status"].GetString(), "pass");
  EXPECT_EQ(d["workers"].GetInt(), 1);
  EXPECT_EQ(d["queuedJobs"].GetInt(), 2);
  EXPECT_EQ(d["schemaVersion"].GetInt(), 6);

  h.live_workers = 0;  // nothing serves the queue, and a job waited past the limit
  r = HealthResponse(h, 30);
  EXPECT_EQ(r.status, 503);
  d = Json(r);
  EXPECT_STREQ(d["status"].GetString(), "fail");
  EXPECT_STREQ(d["checks"]["workers:live"][0]["status"].GetString(), "fail");

  h.oldest_queued_age_seconds = 10;  // waited, not yet long
  r = HealthResponse(h, 30);
  EXPECT_EQ(r.status, 200);
  EXPECT_STREQ(Json(r)["status"].GetString(), "warn");

  h.queued_jobs = 0;  // no worker, nothing queued
  h.oldest_queued_age_seconds = -1;
  r = HealthResponse(h, 30);
  EXPECT_EQ(r.status, 200);
  d = Json(r);
  EXPECT_STREQ(d["status"].GetString(), "warn");
  EXPECT_TRUE(d["oldestQueuedJobAgeSeconds"].IsNull());

  HealthReport old;
  old.schema_version = 5;
  old.has_heartbeats = false;
  r = HealthResponse(old, 30);
  EXPECT_EQ(r.status, 200);
  EXPECT_STREQ(Json(r)["status"].GetString(), "warn");
}

class MetricsDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FHIRBULK_REQUIRE_TEST_DB();
    Status s = schema_.Enter("metrics_test");
    ASSERT_TRUE(s.ok()) << s.ToString();
    conn_ = ConnectTestDb();
    ASSERT_NE(conn_, nullptr);
  }
  void TearDown() override {
    conn_.reset();
    schema_.Leave();
  }
  void Exec(const std::string& sql) {
    auto r = conn_->Exec(sql);
    ASSERT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  }
  std::string Scalar(const std::string& sql) {
    auto r = conn_->Exec(sql);
    EXPECT_TRUE(r.ok()) << sql;
    return r.ok() && r->rows() > 0 && !r->is_null(0, 0) ? r->str(0, 0) : "";
  }
  // A job in `state`, created `age` ago, finished `took` after that (completed ones).
  void Job(const std::string& state, const std::string& age, const std::string& took = "",
           int resources = 0) {
    Exec(
        "INSERT INTO export_job (client_id, state, request, request_url, transaction_time,"
        " xmax_at_kickoff, created_at, finished_at, resources_written) VALUES ('c', '" +
        state + "', '{}', 'x', now(), pg_current_xact_id(), now() - interval '" + age + "', " +
        (took.empty() ? "NULL" : "now() - interval '" + age + "' + interval '" + took + "'") +
        ", " + std::to_string(resources) + ")");
  }

  TestSchema schema_;
  std::unique_ptr<PgConnection> conn_;
};

TEST_F(MetricsDbTest, GaugesMatchTheRows) {
  Job("accepted", "40 seconds");
  Job("running", "10 seconds");
  Job("completed", "1 hour", "3 seconds", 100);
  Job("completed", "1 hour", "100 seconds", 50);
  Job("completed", "1 hour", "20000 seconds", 1);
  Exec(
      "INSERT INTO export_unit (job_id, unit_no, kind, state, worker) SELECT job_id, 0,"
      " 'output', 'running', 'w1-t0' FROM export_job WHERE state = 'running'");
  Exec(
      "INSERT INTO export_unit (job_id, unit_no, kind, state) SELECT job_id, 1, 'output',"
      " 'pending' FROM export_job WHERE state = 'running'");
  Exec(
      "INSERT INTO worker_heartbeat (worker_id, host, pid, started_at, version, threads,"
      " units_in_flight, last_seen) VALUES ('w1', 'h', 1, now(), '0', 2, 1, now()),"
      " ('dead', 'h', 2, now(), '0', 2, 0, now() - interval '1 minute')");
  auto g = QueryDbGauges(conn_.get());
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  std::map<std::string, int64_t> jobs(g->jobs.begin(), g->jobs.end());
  EXPECT_EQ(jobs["accepted"], 1);
  EXPECT_EQ(jobs["running"], 1);
  EXPECT_EQ(jobs["completed"], 3);
  EXPECT_EQ(jobs["failed"], 0);
  EXPECT_EQ(g->units_running, 1);
  EXPECT_EQ(g->units_pending, 1);
  EXPECT_NEAR(g->oldest_queued_age_seconds, 40, 5);
  EXPECT_EQ(g->resources_exported, 151);
  EXPECT_EQ(g->duration_count, 3);
  EXPECT_NEAR(g->duration_sum, 20103, 1);
  // buckets 1 5 15 60 300 900 1800 3600 10800 43200
  EXPECT_EQ(g->duration_le[0], 0);
  EXPECT_EQ(g->duration_le[1], 1);  // 3 s
  EXPECT_EQ(g->duration_le[3], 1);
  EXPECT_EQ(g->duration_le[4], 2);  // 100 s
  EXPECT_EQ(g->duration_le[8], 2);
  EXPECT_EQ(g->duration_le[9], 3);   // 20000 s
  ASSERT_EQ(g->workers.size(), 1u);  // the dead one is not live
  EXPECT_EQ(g->workers[0].id, "w1");
  EXPECT_EQ(g->workers[0].units_in_flight, 1);

  auto h = QueryHealth(conn_.get());
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->live_workers, 1);
  EXPECT_EQ(h->queued_jobs, 2);
  EXPECT_NEAR(h->oldest_queued_age_seconds, 40, 5);
  EXPECT_TRUE(h->has_heartbeats);
}

TEST_F(MetricsDbTest, HeartbeatWritesCountsAndRemovesItsRow) {
  Job("running", "1 second");
  Exec(
      "INSERT INTO export_unit (job_id, unit_no, kind, state, worker) SELECT job_id, n,"
      " 'output', 'running', CASE WHEN n < 2 THEN 'me-1-t' || n ELSE 'other-t0' END"
      " FROM export_job, generate_series(0, 2) n");
  Exec(
      "INSERT INTO worker_heartbeat (worker_id, host, pid, started_at, version, threads,"
      " last_seen) VALUES ('forgotten', 'h', 1, now(), '0', 1, now() - interval '2 hours')");
  HeartbeatOptions o;
  o.conninfo = TestConninfo();
  o.worker_id = "me-1";
  o.threads = 3;
  Heartbeat hb(o);
  ASSERT_TRUE(hb.Beat(conn_.get()).ok());
  EXPECT_EQ(Scalar("SELECT units_in_flight || ' ' || threads || ' ' || version"
                   " FROM worker_heartbeat WHERE worker_id = 'me-1'"),
            "2 3 " FHIRBULK_VERSION);
  EXPECT_EQ(Scalar("SELECT count(*) FROM worker_heartbeat WHERE worker_id = 'forgotten'"), "0");
  ASSERT_TRUE(hb.Beat(conn_.get()).ok());  // an upsert: still one row
  EXPECT_EQ(Scalar("SELECT count(*) FROM worker_heartbeat"), "1");
  ASSERT_TRUE(hb.Remove(conn_.get()).ok());
  EXPECT_EQ(Scalar("SELECT count(*) FROM worker_heartbeat"), "0");

  // The thread: a row at once, none after Stop().
  hb.Start();
  bool seen = false;
  for (int i = 0; i < 100 && !seen; i++) {
    seen = Scalar("SELECT count(*) FROM worker_heartbeat WHERE worker_id = 'me-1'") == "1";
    if (!seen) usleep(50000);
  }
  EXPECT_TRUE(seen);
  hb.Stop();
  EXPECT_EQ(Scalar("SELECT count(*) FROM worker_heartbeat"), "0");
}

}  // namespace
}  // namespace fhirbulk
