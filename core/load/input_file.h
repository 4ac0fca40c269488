// InputFile: reads an input file, plain or gzip-compressed, line by line or whole.
//
// Compression is recognized from the content (zlib's gzread passes other files through), so
// a .gz name is not required and a misnamed file still reads. Lines are read through a
// buffer that grows only as far as the longest line: memory stays flat however large the
// file is. Lines end at \n; a \r before it is dropped.
//
// Limits: a line longer than max_line_bytes is not buffered: NextLine skips it to its end and
// returns it empty with line_too_long() set, so memory stays below about twice the limit.
// ReadRest stops with ResourceExhausted once the text would exceed its max_bytes.
//
// Thread-safety: one thread at a time.

#ifndef FHIRBULK_LOAD_INPUT_FILE_H_
#define FHIRBULK_LOAD_INPUT_FILE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "util/status.h"

namespace fhirbulk {

class InputFile {
 public:
  // IOError when the file cannot be opened.
  static Result<std::unique_ptr<InputFile>> Open(const std::string& path,
                                                 size_t max_line_bytes = SIZE_MAX);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  // The next line, without its terminator; valid until the next call. False at the end of the
  // file or on a read error (then status() is not OK).
  bool NextLine(std::string_view* line);
  // True when the line NextLine returned last was longer than max_line_bytes (it was skipped
  // and returned empty).
  bool line_too_long() const { return line_too_long_; }
  void set_max_line_bytes(size_t max) { max_line_bytes_ = max; }
  // 1-based number of the line NextLine returned last.
  uint64_t line_number() const { return line_number_; }

  // Appends everything not yet returned by NextLine to *out. ResourceExhausted (and *out
  // partly filled) when *out would grow beyond max_bytes.
  Status ReadRest(std::string* out, size_t max_bytes = SIZE_MAX);

  const Status& status() const { return status_; }
  // How much of the file (as stored, i.e. compressed bytes for .gz) has been read so far.
  uint64_t consumed_bytes() const;

 private:
  explicit InputFile(void* gz, std::string path, size_t max_line_bytes);
  // Reads more data after the unread part of buf_; false at end of file or error.
  bool Fill();

  void* gz_;  // gzFile
  std::string path_;
  std::string buf_;
  size_t pos_ = 0, end_ = 0;  // unread data is buf_[pos_, end_)
  bool eof_ = false;
  uint64_t line_number_ = 0;
  size_t max_line_bytes_;
  bool line_too_long_ = false;
  // Drops the rest of an over-long line; sets *line to it (empty) like NextLine.
  bool SkipLongLine(std::string_view* line);
  Status status_;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_LOAD_INPUT_FILE_H_
