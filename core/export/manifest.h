// The Bulk Data manifest of a completed export job, and the X-Progress text of a running one.
//
// Manifest (IG v2.0.0 §3.1, spec digest):
//   {"transactionTime": FormatInstant(job.transaction_time_us),
//    "request": job.request_url,
//    "requiresAccessToken": <flag>,
//    "output":  [{"type","url","count"}...]   files of kind "output",
//    (organizeOutputBy, STU3: "outputOrganizedBy" before "output", whose items have no
//     "type" and carry "continuesInFile" (the next file's URL) when a block goes on there),
//    "deleted": [{"type":"Bundle","url","count"}...]   only when the request had _since
//                                              (or, should the request not parse, whenever
//                                              there are deleted files),
//    "error":   [{"type":"OperationOutcome","url","count"}...]}
// `output` and `error` are always present ([] when empty). Each list is ordered by type,
// then unit number, then sequence number, whatever order job.files has; file names follow
// the engine's "<Type>.<unit_no>.<seq>.ndjson" (names that do not parse sort after the rest,
// by name). URLs are absolute: "<base_url>/$export-files/<job_id>/<file_name>" (a trailing
// '/' of base_url is dropped).
//
// ProgressText: under 100 characters, e.g. "42% (5/12 parts), 120,000 resources";
// "queued" until a worker has planned the job (accepted), then percent of parts done (never
// 100% before the job is completed), "100%, N resources" when completed.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_EXPORT_MANIFEST_H_
#define FHIRBULK_EXPORT_MANIFEST_H_

#include <functional>
#include <string>

#include "export/job_store.h"

namespace fhirbulk {

// `url_query`, when set, gives the query string (without '?') appended to a file's URL, e.g.
// a signature (auth/signed_url.h); it is called with the file name.
std::string ManifestJson(const JobInfo& job, const std::string& base_url,
                         bool requires_access_token,
                         const std::function<std::string(const std::string&)>& url_query = {});

// One page of a paged manifest (export/manifest_pages.h): the manifest of job.files (the
// page's files), plus "link": [{"relation": "next", "url": next_url}] when next_url is set.
std::string ManifestJson(const JobInfo& job, const std::string& base_url,
                         bool requires_access_token,
                         const std::function<std::string(const std::string&)>& url_query,
                         const std::string& next_url);

std::string ProgressText(const JobInfo& job);

}  // namespace fhirbulk

#endif  // FHIRBULK_EXPORT_MANIFEST_H_
