#include "export/manifest_pages.h"

#include <algorithm>

#include "fhirbulk/defaults.h"
#include "http/query_string.h"

namespace fhirbulk {

namespace {

// The page's bounds recorded so far: page_no - 1 (lo) and page_no (hi), when recorded.
struct Bounds {
  bool have_prev = false;
  int64_t lo = 0;
  bool have_hi = false;
  int64_t hi = 0;
};

Result<Bounds> ReadBounds(PgConnection* conn, const std::string& job_id, int page_no) {
  auto r = conn->Exec(
      "SELECT page_no, hi_ordinal FROM export_manifest_page WHERE job_id = $1::uuid "
      "AND page_no IN ($2::int - 1, $2::int)",
      {job_id, std::to_string(page_no)});
  if (!r.ok()) return r.status();
  Bounds b;
  b.have_prev = page_no == 1;
  for (int i = 0; i < r->rows(); i++) {
    if (r->int64(i, 0) == page_no) {
      b.have_hi = true;
      b.hi = r->int64(i, 1);
    } else {
      b.have_prev = true;
      b.lo = r->int64(i, 1);
    }
  }
  return b;
}

}  // namespace

int64_t NextPageBound(const std::vector<int64_t>& ordinals_after, int page_size) {
  if (ordinals_after.empty() || page_size <= 0) return 0;
  return ordinals_after[std::min(ordinals_after.size(), static_cast<size_t>(page_size)) - 1];
}

Result<int> ParseManifestPageQuery(std::string_view query) {
  if (query.empty()) return 1;
  auto params = SplitQueryString(query);
  if (!params.ok()) return params.status();
  int page = 1;
  for (const QueryParam& p : *params) {
    if (p.name != "page") continue;
    const std::string& v = p.raw_value;
    if (v.empty() || v.size() > 7 || v.find_first_not_of("0123456789") != std::string::npos) {
      return Status::InvalidArgument("page: not a page number");
    }
    page = std::stoi(v);
    if (page < 1 || page > kMaxManifestPageNo) {
      return Status::InvalidArgument("page: not a page number");
    }
  }
  return page;
}

Result<ManifestPage> GetManifestPage(PgConnection* conn, const JobInfo& job, int page_no,
                                     int page_size) {
  if (page_size <= 0) page_size = FHIRBULK_DEFAULT_MANIFEST_PAGE_SIZE;
  ManifestPage page;
  page.page_no = page_no;
  if (page_no < 1 || page_no > kMaxManifestPageNo) {
    return Status::NotFound("no manifest page " + std::to_string(page_no));
  }
  auto bounds = ReadBounds(conn, job.job_id, page_no);
  if (!bounds.ok()) return bounds.status();
  if (!bounds->have_prev) {
    return Status::NotFound("no manifest page " + std::to_string(page_no));
  }
  const std::string lo = std::to_string(bounds->lo);
  if (!bounds->have_hi) {
    // A new page: the next page_size listable files above lo, in commit order. One statement,
    // so the job's state, its error unit and its files come from one snapshot.
    auto next = conn->Exec(
        "SELECT j.state, "
        "NOT EXISTS (SELECT 1 FROM export_unit u WHERE u.job_id = j.job_id AND u.kind = 'error' "
        "AND u.state <> 'done'), "
        "(SELECT max(o) FROM (SELECT f.ordinal AS o FROM export_file f WHERE f.job_id = j.job_id "
        "AND f.kind <> 'error' AND f.ordinal > $2::bigint ORDER BY f.ordinal LIMIT $3::int) s) "
        "FROM export_job j WHERE j.job_id = $1::uuid",
        {job.job_id, lo, std::to_string(page_size)});
    if (!next.ok()) return next.status();
    if (next->rows() == 0) return Status::NotFound("no export job " + job.job_id);
    const std::string state = next->str(0, 0);
    const bool errors_final = next->get(0, 1) == std::string_view("t");
    const bool have_files = !next->is_null(0, 2);
    int64_t hi = have_files ? next->int64(0, 2) : 0;
    if (state == "completed") {
      if (!have_files && page_no > 1) {
        return Status::NotFound("no manifest page " + std::to_string(page_no));
      }
    } else if (state == "running" || state == "accepted") {
      if (!have_files || !errors_final) return page;  // nothing to list yet
    } else {
      return Status::NotFound("no manifest page " + std::to_string(page_no));
    }
    if (!have_files) hi = bounds->lo;  // a completed export without (more) files
    // Recorded durably before it is returned (module connections commit asynchronously);
    // a concurrent request on another node may have recorded it first: theirs stands.
    Status s = PgTransaction(conn, [&]() -> Status {
      auto durable = conn->Exec("SET LOCAL synchronous_commit = on");
      if (!durable.ok()) return durable.status();
      auto ins = conn->Exec(
          "INSERT INTO export_manifest_page (job_id, page_no, hi_ordinal) "
          "VALUES ($1::uuid, $2::int, $3::bigint) ON CONFLICT DO NOTHING",
          {job.job_id, std::to_string(page_no), std::to_string(hi)});
      return ins.ok() ? Status::OK() : ins.status();
    });
    if (!s.ok()) return s;
    auto again = ReadBounds(conn, job.job_id, page_no);
    if (!again.ok()) return again.status();
    if (!again->have_hi) return Status::NotFound("no manifest page " + std::to_string(page_no));
    bounds = std::move(again);
  }
  const std::string hi = std::to_string(bounds->hi);
  // The page's ordinal range (index export_file_job_ordinal) and the error files (partial
  // index export_file_job_errors, sql/0013): rows read grow with the page, not the job.
  auto files = conn->Exec(
      "SELECT file_name, kind, res_type, resources, bytes, coalesce(continues_in, ''), "
      "EXISTS (SELECT 1 FROM export_file n WHERE n.job_id = $1::uuid AND n.kind <> 'error' "
      "AND n.ordinal > $3::bigint) "
      "FROM (SELECT * FROM export_file WHERE job_id = $1::uuid AND ordinal > $2::bigint "
      "AND ordinal <= $3::bigint AND kind <> 'error' "
      "UNION ALL SELECT * FROM export_file WHERE job_id = $1::uuid AND kind = 'error') f "
      "ORDER BY kind DESC, res_type, unit_no, seq",
      {job.job_id, lo, hi});
  if (!files.ok()) return files.status();
  page.available = true;
  for (int i = 0; i < files->rows(); i++) {
    JobFile f;
    f.file_name = files->str(i, 0);
    f.kind = files->str(i, 1);
    f.res_type = files->str(i, 2);
    f.resources = files->int64(i, 3);
    f.bytes = files->int64(i, 4);
    f.continues_in = files->str(i, 5);
    page.files.push_back(std::move(f));
    page.has_next = files->get(i, 6) == std::string_view("t");
  }
  if (files->rows() == 0) {
    auto more = conn->Exec(
        "SELECT EXISTS (SELECT 1 FROM export_file WHERE job_id = $1::uuid AND kind <> 'error' "
        "AND ordinal > $2::bigint)",
        {job.job_id, hi});
    if (!more.ok()) return more.status();
    page.has_next = more->get(0, 0) == std::string_view("t");
  }
  return page;
}

}  // namespace fhirbulk
