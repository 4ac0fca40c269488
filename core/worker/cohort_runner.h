// The export workers' side of criteria-based Groups (Bulk Cohort API, issue 14): evaluating a
// queued cohort request (group_request, sql/0012) so that nginx's thread pool never runs one.
//
// EvaluateNextCohort claims the oldest pending request (FOR UPDATE SKIP LOCKED, so workers on
// any host share the queue) and, in that one transaction:
//  1. parses the recorded Group body again (export/group_store.h ParseGroupBody, with the base
//     URL and limits the accepting node recorded);
//  2. for an update, checks that the Group still exists and belongs to the requesting client
//     (else 404, or 403 for a loaded Group), locking its row;
//  3. evaluates the cohort under the recorded statement timeout (at most the worker's own)
//  (EvaluateCohort: inside a
//     savepoint) and checks the member limit;
//  4. stores the Group (StoreGroup: resource row, group_member, group_owner with the criteria
//     and candidates) with members-refreshed = the evaluation's start;
//  5. marks the request done: 201 (create) / 200 (update) with the Group id, or the
//     OperationOutcome of a failure (a timeout or too many members: 400 too-costly naming the
//     limit; a Group gone meanwhile: 404; anything else: 500 with a reference to the log).
// Steps 1-4 run inside a savepoint, so a failure is recorded without storing anything. A worker
// that dies, or loses its database connection, before COMMIT leaves the request pending for the
// next worker.
//
// Thread-safety: a function over a caller-owned connection; one thread per connection.

#ifndef FHIRBULK_WORKER_COHORT_RUNNER_H_
#define FHIRBULK_WORKER_COHORT_RUNNER_H_

#include <cstdint>
#include <functional>
#include <string>

#include "db/pg.h"
#include "export/export_request.h"
#include "fhirbulk/defaults.h"
#include "util/status.h"

namespace fhirbulk {

struct CohortRunnerOptions {
  std::string worker_id;  // for the log
  std::function<void(const std::string&)> log;
  // This worker's limits: a request is evaluated under the smaller of these and its own.
  int64_t timeout_ms = FHIRBULK_DEFAULT_COHORT_TIMEOUT_MS;
  int64_t max_members = FHIRBULK_DEFAULT_GROUP_MAX_MEMBERS;
};

// Claims and evaluates one pending cohort request. False when none was waiting.
Result<bool> EvaluateNextCohort(PgConnection* conn, const CohortRunnerOptions& options);

// Membership of a criteria-based Group as of an export's transactionTime (planner.h): when
// `request` exports a Group created with member-filters whose current version is not newer
// than transaction_time_us, evaluates its filters (export/cohort.h CohortSql, over the data as
// of that instant; within the candidates the Group was created with; intersected with the
// request's `patient` list) into export_job.patient_scope, sets *size to the members' count
// and returns true. More than max_members members then (before the `patient` list narrows
// them): ResourceExhausted with a message for the client. Any other Group (member-based,
// loaded, or changed after transactionTime, whose membership then is the one recorded for its
// version current at that instant): false, nothing done. The caller's transaction and
// statement timeout apply.
Result<bool> FixCohortScope(PgConnection* conn, const ExportRequest& request,
                            const std::string& job_id, int64_t transaction_time_us,
                            int64_t max_members, int64_t* size);

}  // namespace fhirbulk

#endif  // FHIRBULK_WORKER_COHORT_RUNNER_H_
