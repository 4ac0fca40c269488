// The layout of the export directory, shared by the process that writes it (worker/) and the
// ones that serve and cancel its files (server/ and the nginx module, which reads the
// cancel-marker directory's name from fhirbulk/defaults.h as this file does):
//
//   <export_dir>/<job_id>/                     a job's directory (JobDirectory)
//   <export_dir>/<job_id>/.owner               the owning client_id (kJobOwnerFile)
//   <export_dir>/<job_id>/<type>.<unit>.<seq>.ndjson[.gz][.tmp.<worker-id>]
//                                              files (ExportFileNameOf, ParseExportFileName)
//   <export_dir>/.cancels/<job_id>             cancel markers (CancelMarkerDirectory)
//   <export_dir>/.cancelled-<job_id>/          directories older servers moved cancelled jobs
//                                              to; the janitor still removes them
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_EXPORT_JOB_DIR_H_
#define FHIRBULK_EXPORT_JOB_DIR_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fhirbulk/defaults.h"

namespace fhirbulk {

// The job directory: <export_dir>/<job_id>.
std::string JobDirectory(const std::string& export_dir, const std::string& job_id);

// Name of the file in a job directory that holds the owning client_id (written at planning,
// under kJobOwnerTempFile and renamed, so a reader sees the whole id or no file).
inline constexpr std::string_view kJobOwnerFile = ".owner";
inline constexpr std::string_view kJobOwnerTempFile = ".owner.tmp";

// The name of a unit's seq-th file: "<type>.<unit_no>.<seq>.ndjson". Its gzip twin adds
// kGzipTwinSuffix; while a worker thread writes either, TempFileSuffix(worker_id) follows.
std::string ExportFileNameOf(std::string_view type, int unit_no, int seq);
inline constexpr std::string_view kGzipTwinSuffix = ".gz";
std::string TempFileSuffix(std::string_view worker_id);  // ".tmp.<worker_id>"

// The parts of an export file name (the grammar above). nullopt for any other name.
struct ExportFileName {
  std::string type;
  int unit_no = 0;
  int seq = 0;
  bool gzip = false;
  bool temp = false;
};
std::optional<ExportFileName> ParseExportFileName(std::string_view name);

// The HTTP side's cancel markers live in <export_dir>/.cancels (a directory of nginx's user:
// recording a cancel needs no write access to the export directory itself). While
// <export_dir>/.cancels/<job_id> exists no node serves that job's files.
inline constexpr std::string_view kCancelMarkerDir = FHIRBULK_CANCEL_MARKER_DIR;
std::string CancelMarkerDirectory(const std::string& export_dir);
// A marker is kept at least this long after it was written, by whoever removes it (the
// HTTP side's sweep, the worker's janitor): a file a node opened before the cancel (nginx's
// open_file_cache may keep its descriptor after the file is deleted) must still meet it.
inline constexpr int64_t kCancelMarkerKeepSeconds = 3600;

// <export_dir>/.cancelled-<job_id>: see the layout above.
inline constexpr std::string_view kCancelledDirPrefix = ".cancelled-";
std::string CancelledJobDirectory(const std::string& export_dir, std::string_view job_id);
// The <job_id> part of a ".cancelled-<job_id>" name (not validated); nullopt for other names.
std::optional<std::string_view> CancelledDirJobId(std::string_view name);

}  // namespace fhirbulk

#endif  // FHIRBULK_EXPORT_JOB_DIR_H_
