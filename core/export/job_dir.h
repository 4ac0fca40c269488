// The layout of an export's directory, shared by the process that writes it (worker/) and
// the ones that serve and cancel it (server/, the nginx module): today the grammar of its file
// names.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_EXPORT_JOB_DIR_H_
#define FHIRBULK_EXPORT_JOB_DIR_H_

#include <optional>
#include <string>
#include <string_view>

namespace fhirbulk {

// The job directory: <export_dir>/<job_id>.
std::string JobDirectory(const std::string& export_dir, const std::string& job_id);

// Name of the file in a job directory that holds the owning client_id (written at planning).
inline constexpr std::string_view kJobOwnerFile = ".owner";

// The parts of an export file name: "<type>.<unit_no>.<seq>.ndjson", optionally followed by
// ".gz" (a gzip twin), then optionally by ".tmp.<worker-id>". nullopt for any other name.
struct ExportFileName {
  std::string type;
  int unit_no = 0;
  int seq = 0;
  bool gzip = false;
  bool temp = false;
};
std::optional<ExportFileName> ParseExportFileName(std::string_view name);

}  // namespace fhirbulk

#endif  // FHIRBULK_EXPORT_JOB_DIR_H_
