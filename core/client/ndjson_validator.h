// NdjsonValidator: checks an export file line by line while it streams to disk.
//
// Bulk Data IG §5: one resource per line, '\n'-separated; §3.1: one type per file, and
// `count` (when the manifest gives one) is the number of resources in it. Each line must be
// a JSON object (UTF-8), with a top-level resourceType equal to the manifest item's type;
// an empty line, bad JSON, a wrong or missing resourceType is an error at that line, and a
// line total different from `count` is an error of the file. A last line without '\n'
// counts as a line. Memory is one line (the longest resource), never the file.
//
// Limits (the file comes from a server the client does not control): a line longer than
// max_line_bytes is an error at that line and is skipped, not buffered (memory stays at
// max_line_bytes, however long the line); a line nested deeper than kMaxJsonDepth
// (client/bounded_json.h) is invalid JSON. Parsing never recurses.
//
// Files of OperationOutcomes (the manifest's `error` section) are tallied as well: issues
// per severity, and the first few diagnostics, so the client can report what the server
// said went wrong.
//
// Thread-safety: one thread at a time.

#ifndef FHIRBULK_CLIENT_NDJSON_VALIDATOR_H_
#define FHIRBULK_CLIENT_NDJSON_VALIDATOR_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace fhirbulk {
namespace client {

struct ValidationIssue {
  int64_t line;  // 1-based; 0 for the file as a whole
  std::string message;
};

class NdjsonValidator {
 public:
  static constexpr size_t kDefaultMaxLineBytes = 64u << 20;  // --max-line-bytes

  // An empty expected_type is an organizeOutputBy=Patient file (IG 3.0.0): any resourceType,
  // and either a file without header lines or one of patient blocks: it starts with a header
  // (Parameters, parameter "header", valueReference "Patient/<id>"), a patient's block is not
  // split inside the file, the block's Patient (if there) comes first and has the header's
  // id. The count is of resources, not headers.
  NdjsonValidator(std::string expected_type, std::optional<int64_t> expected_count,
                  size_t max_issues = 20, size_t max_line_bytes = kDefaultMaxLineBytes);

  // Bytes of the file, in order, in chunks of any size.
  void Feed(std::string_view bytes);
  // The end of the file: checks the last line and the count. Call once.
  void Finish();
  // Forget everything fed so far (the download restarts from byte 0).
  void Reset();

  int64_t lines() const { return lines_; }
  // Lines holding a valid resource of the expected type.
  int64_t good_lines() const { return good_lines_; }
  int64_t error_count() const { return error_count_; }
  // The first max_issues errors.
  const std::vector<ValidationIssue>& issues() const { return issues_; }

  // organizeOutputBy files: the patient ids of the first and the last block header ("" for a
  // file without header lines). A block that goes on in another file (continuesInFile) is
  // this file's last block and that file's first (client/block_links.h checks the pairs).
  const std::string& first_block() const { return first_block_; }
  const std::string& last_block() const { return current_patient_; }

  // For OperationOutcome files: issue.severity -> number of issues; first diagnostics.
  const std::map<std::string, int64_t>& outcome_severities() const { return severities_; }
  const std::vector<std::string>& outcome_samples() const { return samples_; }

 private:
  void CheckLine(std::string_view line);
  void SkipLongLine();  // counts and reports the line that was over max_line_bytes_
  void AddIssue(int64_t line, std::string message);
  void TallyOutcome(std::string_view line);
  void CheckBlockLine(int64_t n, std::string_view type, std::string_view line);

  std::string expected_type_;
  // organizeOutputBy files (expected_type ""): see the constructor's comment.
  bool file_has_blocks_ = false;
  int64_t header_lines_ = 0;
  int64_t lines_since_header_ = 0;
  std::string current_patient_;
  std::string first_block_;
  std::set<std::string> seen_headers_;
  std::optional<int64_t> expected_count_;
  size_t max_issues_;
  size_t max_line_bytes_;
  std::string pending_;       // an incomplete last line
  size_t skipped_bytes_ = 0;  // > 0: inside a line over max_line_bytes, not buffered
  int64_t lines_ = 0;
  int64_t good_lines_ = 0;
  int64_t error_count_ = 0;
  std::vector<ValidationIssue> issues_;
  std::map<std::string, int64_t> severities_;
  std::vector<std::string> samples_;
};

}  // namespace client
}  // namespace fhirbulk

#endif  // FHIRBULK_CLIENT_NDJSON_VALIDATOR_H_
