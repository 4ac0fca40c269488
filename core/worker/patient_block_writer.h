// PatientBlockWriter: the files of one organizeOutputBy=Patient work unit (IG 3.0.0 STU3).
//
// A block is a header line
//   {"resourceType":"Parameters","parameter":[{"name":"header","valueReference":
//    {"reference":"Patient/<id>"}}]}
// followed by the block's resources (the unit sends the Patient first, then the resources of
// its compartment, by type). Rows arrive grouped by block key (Append with the patient id);
// a new key starts a new block. Rows with the empty key are "unattached" (resources in no
// patient's compartment, supporting resources): they get no header and never share a file
// with blocks.
//
// File limits (max_lines lines, headers included, or max_bytes bytes) are kept like
// NdjsonWriter's, but a block is not split across files unless it alone exceeds a limit:
// when a line would overflow the current file and the current block did not start the file,
// the block's lines so far are moved to a new file (copied from the file in 1 MB chunks, and
// the old file truncated before the block), so memory stays bounded whatever the block's
// size. When the block alone overflows, the file ends there, its `continues_in` names the
// next file, and the next file starts with the block's header again.
//
// Names, temp files, modes, Seal/Publish/Cancel and the destructor behave as NdjsonWriter's
// (ndjson_writer.h), with the files named ExportFileNameOf(type, unit_no, seq). Each file's
// gzip twin is compressed when the file is closed (read back once: a moved block makes
// compressing while streaming impossible). `resources` of a file counts resource lines, not
// headers.
//
// Thread-safety: one thread at a time.

#ifndef FHIRBULK_WORKER_PATIENT_BLOCK_WRITER_H_
#define FHIRBULK_WORKER_PATIENT_BLOCK_WRITER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"
#include "worker/ndjson_writer.h"

namespace fhirbulk {

// The header line of patient `id`'s block (no newline).
std::string PatientBlockHeader(std::string_view patient_id);

class PatientBlockWriter {
 public:
  explicit PatientBlockWriter(NdjsonWriterOptions options);
  ~PatientBlockWriter();
  PatientBlockWriter(const PatientBlockWriter&) = delete;
  PatientBlockWriter& operator=(const PatientBlockWriter&) = delete;

  // Writes `line` (no '\n' inside) into the block of `patient_id` ("" = unattached). Rows
  // of one block must come together. REQUIRES: not sealed.
  Status Append(std::string_view patient_id, std::string_view line);

  Status Seal();
  Status Publish();
  void Cancel();

  const std::vector<NdjsonFile>& files() const { return files_; }
  // Parallel to files(): the name of the file the file's last block goes on in, or "".
  const std::vector<std::string>& continues_in() const { return continues_in_; }
  int64_t total_resources() const { return total_resources_; }
  int64_t total_bytes() const { return total_bytes_; }

 private:
  struct Open {
    int fd = -1;
    int64_t bytes = 0;  // written + buffered
    int64_t lines = 0;
  };
  Status StartFile();
  Status CloseFile();
  Status Flush();
  Status WriteLine(std::string_view line, bool header);
  Status MoveBlockToNewFile();
  Status MakeTwin(const NdjsonFile& f);
  bool Fits(size_t n) const;
  std::string TempPath(const NdjsonFile& f) const;
  std::string FinalPath(const NdjsonFile& f) const;
  std::string TwinTempPath(const NdjsonFile& f) const;
  std::string TwinFinalPath(const NdjsonFile& f) const;

  NdjsonWriterOptions options_;
  std::vector<NdjsonFile> files_;
  std::vector<std::string> continues_in_;
  std::string buffer_;
  Open cur_;
  bool in_block_ = false;         // a key was seen
  std::string key_;               // the current block's patient ("" = unattached)
  bool file_has_blocks_ = false;  // the open file holds patient blocks
  int64_t block_offset_ = 0;      // where the current block starts in the open file
  int64_t block_lines_before_ = 0;
  int64_t block_resources_before_ = 0;
  bool sealed_ = false;
  bool finished_ = false;
  int64_t total_resources_ = 0;
  int64_t total_bytes_ = 0;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_WORKER_PATIENT_BLOCK_WRITER_H_
