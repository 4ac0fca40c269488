// Metrics in the Prometheus text exposition format (version 0.0.4), behind the C ABI's
// fhirbulk_metrics_render() (fhirbulk/fhirbulk.h), and the tags that say what a response
// counts as.
//
// Two kinds of figures, documented in README "Metrics":
//  - per-node counters (fhirbulk_counters_t): the nginx module counts every response in a
//    shared memory zone, summed over its worker processes; Prometheus scrapes each node and
//    sums across nodes (sum by ... in queries);
//  - global gauges read from PostgreSQL (jobs, units, queue age, durations, workers): the same
//    on every node; query them from one node or with max(), not sum().
// The database query runs at most once a second per process (a cache shared by its threads),
// on a thread-pool thread, never on the event loop.

#ifndef FHIRBULK_SERVER_METRICS_H_
#define FHIRBULK_SERVER_METRICS_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "db/pg.h"
#include "fhirbulk/fhirbulk.h"
#include "http/http.h"
#include "server/routes.h"
#include "util/mutex.h"
#include "util/status.h"

namespace fhirbulk {

// What a response to `route` with `method` counts as.
fhirbulk_metric_route_e MetricRoute(const Route& route, HttpMethod method);
// A token answer's outcome from its OAuth error code ("" = granted).
fhirbulk_token_outcome_e TokenOutcome(std::string_view oauth_error);
// The status class of fhirbulk_metric_code_index(), and its label value.
int MetricCodeIndex(int status);
const char* MetricCodeLabel(int index);

// Prometheus text format, written strictly: one HELP and TYPE per family, before its samples;
// label values escaped (\\, \", \n).
class PromWriter {
 public:
  explicit PromWriter(std::string* out) : out_(out) {}
  void Family(std::string_view name, std::string_view type, std::string_view help);
  // labels: name/value pairs (names are ours: [a-z_]+).
  void Sample(std::string_view name,
              const std::vector<std::pair<std::string_view, std::string_view>>& labels,
              double value);
  void Sample(std::string_view name, double value) { Sample(name, {}, value); }

 private:
  std::string* out_;
};

// The node's counters.
void FormatCounters(const fhirbulk_counters_t& c, std::string* out);

// The global gauges, as read from the database.
struct DbGauges {
  static constexpr std::array<double, 10> kDurationBuckets = {1,   5,    15,   60,    300,
                                                              900, 1800, 3600, 10800, 43200};
  int schema_version = 0;
  // export_job by state (the five states of sql/0002)
  std::vector<std::pair<std::string, int64_t>> jobs;
  int64_t units_pending = 0;
  int64_t units_running = 0;
  double oldest_queued_age_seconds = 0;  // accepted or running; 0 when none
  // completed jobs still retained: durations (created_at to finished_at), cumulative buckets
  std::array<int64_t, kDurationBuckets.size()> duration_le{};
  int64_t duration_count = 0;
  double duration_sum = 0;
  int64_t resources_exported = 0;  // resources_written of retained jobs
  struct Worker {
    std::string id, host;
    double age_seconds = 0;
    int64_t threads = 0, units_in_flight = 0;
  };
  std::vector<Worker> workers;  // live ones (FHIRBULK_WORKER_LIVE_SECONDS)
};
Result<DbGauges> QueryDbGauges(PgConnection* conn);
// up false: only fhir_bulk_database_up 0.
void FormatDbGauges(const DbGauges* gauges, std::string* out);

// The database side of one metrics location.
class MetricsSource {
 public:
  explicit MetricsSource(std::string conninfo) : conninfo_(std::move(conninfo)) {}
  // The whole exposition: counters, then the (cached) database gauges.
  HttpResponse Render(const fhirbulk_counters_t& counters) const EXCLUDES(mu_);

 private:
  std::string conninfo_;
  mutable Mutex mu_;  // held across the query: one query at a time per process
  mutable std::string cached_ GUARDED_BY(mu_);
  mutable std::chrono::steady_clock::time_point cached_at_ GUARDED_BY(mu_){};
  mutable std::unique_ptr<PgConnection> conn_ GUARDED_BY(mu_);
  mutable std::chrono::steady_clock::time_point retry_not_before_ GUARDED_BY(mu_){};
};

}  // namespace fhirbulk

#endif  // FHIRBULK_SERVER_METRICS_H_
