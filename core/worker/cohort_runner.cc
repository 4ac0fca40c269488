#include "worker/cohort_runner.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "export/cohort.h"
#include "export/group_store.h"
#include "http/outcome.h"
#include "worker/planner.h"

namespace fhirbulk {

namespace {

struct CohortRequest {
  std::string request_id, client_id, group_id, op, body, base_url;
  GroupLimits limits;
};

// Steps 1-4 of the header; *status: 201 or 200.
Status EvaluateAndStore(PgConnection* conn, const CohortRequest& q, int* status) {
  const bool create = q.op == "create";
  ParsedGroup parsed;
  FHIRBULK_RETURN_IF_ERROR(
      ParseGroupBody(q.body, q.base_url, q.limits, create ? nullptr : &q.group_id, &parsed));
  if (parsed.filters.empty()) return Status::InvalidArgument("the request holds no member-filter");
  int64_t version = 1;
  int64_t not_after = 0;
  if (!create) {
    auto g = FindGroup(conn, q.group_id, /*for_update=*/true);
    if (!g.ok()) return g.status();
    if (!g->has_value() || ((*g)->owner && *(*g)->owner != q.client_id)) {
      return Status::NotFound("Group/" + q.group_id + " does not exist");
    }
    if (!(*g)->owner) {
      return Status::PermissionDenied("Group/" + q.group_id +
                                      " is managed by the server (loaded), not through the API");
    }
    version = (*g)->version + 1;
    auto lu = conn->Exec(
        "SELECT (extract(epoch FROM last_updated) * 1000000)::int8 FROM resource"
        " WHERE res_type = 'Group' AND res_id = $1",
        {q.group_id});
    if (!lu.ok()) return lu.status();
    if (lu->rows() > 0) not_after = lu->int64(0, 0);
  }
  int64_t refreshed = 0;
  auto members = EvaluateCohort(conn, parsed.filters,
                                parsed.patient_ids.empty() ? nullptr : &parsed.patient_ids,
                                q.limits.cohort_timeout_ms, q.limits.max_members, &refreshed);
  if (!members.ok()) return members.status();
  auto clock = WriteClock(conn, not_after);
  if (!clock.ok()) return clock.status();
  std::string body;
  FHIRBULK_RETURN_IF_ERROR(StoreGroup(conn, q.group_id, q.client_id, q.base_url, parsed, &*members,
                                      refreshed, version, *clock, &body));
  *status = create ? 201 : 200;
  return Status::OK();
}

// The client's view of a failed evaluation.
HttpResponse FailureResponse(const Status& s, const CohortRunnerOptions& o,
                             const CohortRequest& q) {
  switch (s.code()) {
    case Status::Code::kAborted:            // the statement timeout (EvaluateCohort)
    case Status::Code::kResourceExhausted:  // the member limit
      return OutcomeResponse(400, "too-costly", s.message());
    case Status::Code::kInvalidArgument:
    case Status::Code::kNotSupported:
    case Status::Code::kNotFound:
    case Status::Code::kPermissionDenied:
      return StatusResponse(s, 0);
    default: {
      const std::string ref = ErrorReference();
      if (o.log) {
        o.log("cohort request " + q.request_id + " (Group/" + q.group_id + "): failed (reference " +
              ref + "): " + s.ToString());
      }
      return OutcomeResponse(500, "exception", FailureDiagnostics("evaluating the cohort", s, ref));
    }
  }
}

}  // namespace

Result<bool> EvaluateNextCohort(PgConnection* conn, const CohortRunnerOptions& o) {
  bool claimed = false;
  Status s = PgTransaction(
      conn,
      [&]() -> Status {
        auto r = conn->Exec(
            "SELECT request_id, client_id, group_id, op, body, base_url, max_members, timeout_ms"
            " FROM group_request WHERE state = 'pending' ORDER BY created_at LIMIT 1"
            " FOR UPDATE SKIP LOCKED");
        if (!r.ok()) return r.status();
        if (r->rows() == 0) return Status::OK();
        claimed = true;
        CohortRequest q;
        q.request_id = r->str(0, 0);
        q.client_id = r->str(0, 1);
        q.group_id = r->str(0, 2);
        q.op = r->str(0, 3);
        q.body = r->str(0, 4);
        q.base_url = r->str(0, 5);
        q.limits.max_members =
            static_cast<size_t>(std::clamp<int64_t>(r->int64(0, 6), 1, o.max_members));
        q.limits.cohort_timeout_ms =
            static_cast<int>(std::clamp<int64_t>(r->int64(0, 7), 1, o.timeout_ms));
        q.limits.max_body_bytes = std::max(q.limits.max_body_bytes, q.body.size());
        auto sp = conn->Exec("SAVEPOINT cohort_request");
        if (!sp.ok()) return sp.status();
        int status = 0;
        Status done = EvaluateAndStore(conn, q, &status);
        std::optional<HttpResponse> failure;
        if (!done.ok()) {
          // Nothing of a failed evaluation is stored. A connection that cannot even roll back
          // fails the whole transaction: the request stays pending for the next worker.
          auto back = conn->Exec("ROLLBACK TO SAVEPOINT cohort_request");
          if (!back.ok()) return back.status();
          failure = FailureResponse(done, o, q);
        }
        auto mark = conn->Exec(
            "UPDATE group_request SET state = 'done', http_status = $2::int4, error_json = $3,"
            " finished_at = now() WHERE request_id = $1",
            {q.request_id, std::to_string(failure ? failure->status : status),
             failure ? PgParam(failure->body) : PgParam()});
        if (!mark.ok()) return mark.status();
        if (o.log) {
          o.log("cohort request " + q.request_id + " (Group/" + q.group_id + ", " + q.op + "): " +
                (failure ? "refused, " + std::to_string(failure->status) + ": " + done.message()
                         : "stored"));
        }
        return Status::OK();
      },
      "BEGIN; SET LOCAL synchronous_commit = on");
  if (!s.ok()) return s;
  return claimed;
}

Result<bool> FixCohortScope(PgConnection* conn, const ExportRequest& request,
                            const std::string& job_id, int64_t transaction_time_us,
                            int64_t max_members, int64_t* size) {
  if (request.level != ExportLevel::kGroup) return false;
  auto def = LoadCohortDefinition(conn, request.group_id, transaction_time_us);
  if (!def.ok()) return def.status();
  if (!def->has_value()) return false;
  std::string sql;
  std::vector<std::string> params;
  FHIRBULK_RETURN_IF_ERROR(CohortSql((*def)->filters,
                                     (*def)->candidates ? &*(*def)->candidates : nullptr, &sql,
                                     &params, transaction_time_us));
  // The whole membership is counted (the limit applies to the Group, whatever the `patient`
  // list narrows the export to); the scope keeps the listed members only.
  std::string narrow;
  if (!request.patients.empty()) {
    params.push_back(PgTextArrayLiteral(request.patients));
    narrow = " FILTER (WHERE m.p = ANY($" + std::to_string(params.size()) + "::text[]))";
  }
  params.push_back(std::to_string(max_members));
  const std::string limit = "$" + std::to_string(params.size()) + "::int8";
  params.push_back(job_id);
  auto fixed = conn->Exec(
      "WITH m AS MATERIALIZED (" + sql +
          "), agg AS (SELECT count(*) AS n, coalesce(array_agg(m.p ORDER BY m.p)" + narrow +
          ", '{}'::text[]) AS s FROM m AS m(p)) "
          "UPDATE export_job SET patient_scope = CASE WHEN agg.n <= " +
          limit + " THEN agg.s END FROM agg WHERE job_id = $" + std::to_string(params.size()) +
          "::uuid RETURNING agg.n, cardinality(patient_scope)",
      std::vector<PgParam>(params.begin(), params.end()));
  if (!fixed.ok()) return fixed.status();
  if (fixed->rows() != 1) return Status::Aborted("the job is gone");
  const int64_t members = fixed->int64(0, 0);
  if (members > max_members) {
    return Status::ResourceExhausted(
        "Group/" + request.group_id + " has " + std::to_string(members) +
        " members as of this export's transactionTime (its member-filters evaluated then), over "
        "this server's limit of " +
        std::to_string(max_members));
  }
  *size = fixed->int64(0, 1);
  return true;
}

}  // namespace fhirbulk
