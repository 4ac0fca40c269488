// ExportSummary: the client's account of a finished download: summary.json, the lines on
// stdout, and the Status (hence exit status) of the run.
//
// summary.json: {statusUrl, request, transactionTime, startedAt, finishedAt,
//   seconds {export (kick-off to manifest; absent when resumed), download, total},
//   complete (every file on disk), files, bytes (on disk), wireBytes (received this run,
//   compressed when gzip), resources {type: valid lines of output files}, deleted (lines of
//   deleted files), serverIssues {severity: issues in the error files}, validationErrors,
//   problems [{file, url, line?, message}] (the first 50)}.
//
// Thread-safety: an immutable value once built.

#ifndef FHIRBULK_CLIENT_EXPORT_SUMMARY_H_
#define FHIRBULK_CLIENT_EXPORT_SUMMARY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "client/file_download.h"
#include "client/manifest.h"
#include "util/status.h"

namespace fhirbulk {
namespace client {

struct ExportTimes {
  int64_t started_at_us = 0;
  double export_seconds = -1;  // < 0: not measured (a resumed export)
  double download_seconds = 0;
  double total_seconds = 0;
};

class ExportSummary {
 public:
  // outcomes[i] belongs to jobs[i]; null when the file was never tried (interrupted).
  ExportSummary(const Manifest& manifest, std::string status_url, const std::vector<FileJob>& jobs,
                const std::vector<std::unique_ptr<FileOutcome>>& outcomes);

  // OK; Aborted when interrupted; the first failure (a refused token before other ones);
  // else Corruption when files failed validation.
  Status status() const;

  std::string Json(const ExportTimes& times) const;
  // The human summary: totals, resources per type, deleted, server issues, problems.
  std::string Text(const ExportTimes& times, const std::string& out_dir) const;

 private:
  struct Problem {
    std::string file, url;
    int64_t line;
    std::string message;
  };

  std::string status_url_, request_, transaction_time_;
  bool has_deleted_ = false;
  size_t files_ = 0;
  int failed_ = 0, invalid_files_ = 0;
  int64_t validation_errors_ = 0, deleted_ = 0, resources_total_ = 0;
  uint64_t bytes_ = 0, wire_bytes_ = 0;
  std::map<std::string, int64_t> resources_, output_files_, severities_;
  std::vector<std::string> server_issues_;
  std::vector<Problem> problems_;
  Status first_failure_;
};

}  // namespace client
}  // namespace fhirbulk

#endif  // FHIRBULK_CLIENT_EXPORT_SUMMARY_H_
