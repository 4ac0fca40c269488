// /_health: the whole system's health in one cheap query (database, schema, workers, queue),
// answered as application/health+json (draft-inadarei-api-health-check).
//
// The verdict:
//   fail (503)  the database is unreachable; or no worker is live (worker_heartbeat, see
//               sql/0006_worker_heartbeat.sql) while a job has waited (accepted or running)
//               longer than FHIRBULK_HEALTH_QUEUE_FAIL_SECONDS: exports are stuck;
//   warn (200)  no worker is live, but nothing has waited that long yet (exports would stall;
//               a worker may be restarting), or the schema predates the heartbeat table;
//   pass (200)  otherwise.
// warn keeps 200 so that a load balancer does not take a node out of service for what no
// node can fix; alerting reads the body (or /metrics).

#ifndef FHIRBULK_SERVER_HEALTH_H_
#define FHIRBULK_SERVER_HEALTH_H_

#include <cstdint>
#include <string>

#include "db/pg.h"
#include "http/http.h"
#include "util/status.h"

namespace fhirbulk {

struct HealthReport {
  int schema_version = 0;
  bool has_heartbeats = true;  // false: schema older than 0006 (run `fhir-bulk migrate`)
  int64_t live_workers = 0;
  int64_t queued_jobs = 0;                // accepted or running
  double oldest_queued_age_seconds = -1;  // < 0: none queued
};

// One round trip. A schema without worker_heartbeat is reported (has_heartbeats false), not
// an error.
Result<HealthReport> QueryHealth(PgConnection* conn);

// The answer for a report; fail_after_seconds is FHIRBULK_HEALTH_QUEUE_FAIL_SECONDS in
// production (a parameter for tests).
HttpResponse HealthResponse(const HealthReport& report, int fail_after_seconds);

}  // namespace fhirbulk

#endif  // FHIRBULK_SERVER_HEALTH_H_
