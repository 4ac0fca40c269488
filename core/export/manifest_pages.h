// Partial and paged manifests (IG 3.0.0 allowPartialManifests; sql/0010_manifest_pages.sql).
//
// A job exported with allowPartialManifests=true has its manifest split in pages: page 1 is
// what the status URL answers, page N > 1 is at "<status URL>?page=N", reached through the
// `link` (relation "next") of page N - 1. Pages list the job's output and deleted files by
// their commit ordinal: page N holds the files with ordinals above page N - 1's last one, at
// most page_size of them, chosen and recorded in PostgreSQL the first time page N is asked
// for, so a page once returned lists the same files forever, on every node; only its `link`
// appears later (when more files exist). `error` is the same on every page (the IG asks every
// linked manifest to repeat the other fields): the job's error files, which come from its
// error unit only, so no page is recorded while that unit is not done.
//
// While the job runs, a page is recorded only when it has at least one file; until then it
// is "not available" (the poll answers without a manifest). A completed job's page 1 may be
// empty (an export without data). Pages are per job, and jobs belong to one client: the
// caller checks ownership (GetJob) first.
//
// Thread-safety: stateless functions over a caller-owned connection.

#ifndef FHIRBULK_EXPORT_MANIFEST_PAGES_H_
#define FHIRBULK_EXPORT_MANIFEST_PAGES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "db/pg.h"
#include "export/job_store.h"
#include "util/status.h"

namespace fhirbulk {

struct ManifestPage {
  int page_no = 1;
  bool available = false;      // false: nothing to list yet (the job runs)
  std::vector<JobFile> files;  // the page's output and deleted files, then the error files
  bool has_next = false;       // files beyond this page exist: link to page_no + 1
};

// Page numbers a status URL accepts ("?page=N"): 1..kMaxManifestPageNo.
constexpr int kMaxManifestPageNo = 1000000;

// Parses the status URL's query: "" -> 1, "page=N" -> N. Other parameters are ignored; a
// page that is not a number in 1..kMaxManifestPageNo is InvalidArgument.
Result<int> ParseManifestPageQuery(std::string_view query);

// The page `page_no` of `job` (running or completed), recording it if it is new. NotFound for
// a page whose predecessor was never returned, or beyond the last page of a completed job.
// page_size <= 0 uses FHIRBULK_DEFAULT_MANIFEST_PAGE_SIZE.
Result<ManifestPage> GetManifestPage(PgConnection* conn, const JobInfo& job, int page_no,
                                     int page_size);

// Pure part of the paging rule, for tests: given the ordinals of the job's listable files
// above the previous page (ascending), the upper bound of the next page, or 0 for none.
int64_t NextPageBound(const std::vector<int64_t>& ordinals_after, int page_size);

}  // namespace fhirbulk

#endif  // FHIRBULK_EXPORT_MANIFEST_PAGES_H_
