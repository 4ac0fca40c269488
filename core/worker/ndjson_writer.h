// NdjsonWriter: the files of one export work unit, written so that no reader ever sees a
// partial file.
//
// A unit's lines go to "<dir>/<Type>.<unit_no>.<seq>.ndjson" (seq from 1; the grammar of
// export/job_dir.h), each written first as "<final name>.tmp.<worker-id>" through a large
// buffer. A new file starts before a line that would take
// the current file past max_resources lines or max_bytes bytes (a single longer line gets a
// file of its own; lines are never split). Nothing is created before the first line, so a
// unit without lines has no file.
//
// With gzip_level 1..9 every file also gets a gzip twin "<final name>.gz" (temp name
// "<final name>.gz.tmp.<worker-id>") that the HTTP side sends as-is to clients accepting gzip,
// so no request ever compresses. The twin is compressed while streaming, from the same
// buffers the plain file is written from (never by reading the file back), on the writer's
// thread (a second compressing thread per unit measured slower on two cores). Level 1, the
// default, uses ISA-L's igzip when the build found it (FHIRBULK_HAVE_ISAL): ~1.8 GB/s on
// FHIR JSON to ~8.7% of its size, where zlib's level 1 gave 150-230 MB/s and ~9.6%, which
// made compression a third of the export's CPU (benchmarks/RESULTS.md); levels 2..9 are
// zlib's. Plain file and twin are synced, published (twin first) and cancelled together;
// files() lists the plain files only, and their bytes are the plain sizes.
//
// Life cycle: Append* -> Seal (flush + fdatasync every file; still invisible) -> Publish
// (rename each temp file to its final name, then fsync the directory) or Cancel (delete the
// temp files). While writing, every 8 MB are handed to the kernel's writeback
// (sync_file_range), so the final fdatasync is short and disk writes overlap the reading.
// Publish is meant to run inside the database transaction that records the files
// (see unit_runner.h); if a rename fails, Publish removes what it already renamed and returns
// the error. The destructor deletes leftover temp files of an unfinished writer (best effort,
// nothing else).
//
// Files are created with mode kExportFileMode (0640, set with fchmod whatever the umask); their
// group is the directory's (job directories are setgid, planner.h MakeDirectory), so the
// group shared by the worker and nginx can read them and nobody else on the host can.
//
// Errors are IOError with the file's name (not its directory) and strerror text, e.g.
// "writing Observation.3.1.ndjson: No space left on device".
//
// Thread-safety: one thread at a time.

#ifndef FHIRBULK_WORKER_NDJSON_WRITER_H_
#define FHIRBULK_WORKER_NDJSON_WRITER_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace fhirbulk {

// Modes of what the worker writes: export files and job directories (setgid: new files get
// the directory's group).
inline constexpr mode_t kExportFileMode = 0640;
inline constexpr mode_t kExportDirMode = 02750;

struct NdjsonWriterOptions {
  std::string dir;        // the job directory; must exist
  std::string type;       // the files' manifest type, which starts their names
  int unit_no = 0;        // names: ExportFileNameOf(type, unit_no, seq) (export/job_dir.h)
  std::string worker_id;  // temp names end in TempFileSuffix(worker_id)
  int64_t max_resources = 100000;
  int64_t max_bytes = 256 << 20;
  size_t buffer_bytes = 1 << 20;
  int gzip_level = 1;  // 0: no gzip twins; 1 (fastest) .. 9 (smallest)
};

struct NdjsonFile {
  std::string name;  // final name, without the directory
  int seq = 0;
  int64_t resources = 0;
  int64_t bytes = 0;
};

// Gzip (RFC 1952: one member: header, deflate data, CRC-32 and length trailer) of a byte
// stream, with ISA-L's igzip at level 1 when built with it, else with zlib. Compressed bytes
// go to `sink` in chunks of up to 256 KB, whenever the output buffer fills and at Finish.
// After an error the Deflater is unusable.
class Deflater {
 public:
  using Sink = std::function<Status(const char* data, size_t n)>;

  Deflater();
  ~Deflater();
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  // Starts a stream at `level` (1..9). May be called again after Finish for a new stream.
  Status Init(int level);
  // REQUIRES: Init succeeded, Finish not yet called.
  Status Compress(std::string_view data, const Sink& sink);
  // Writes the rest of the stream and its trailer. REQUIRES: Init succeeded.
  Status Finish(const Sink& sink);

 private:
  Status Drain(const Sink& sink);

  struct Stream;
  std::unique_ptr<Stream> z_;
  std::vector<char> out_;
  bool active_ = false;  // between a successful Init and Finish
};

class GzipTwin;  // the twin of the current file (ndjson_writer.cc)

class NdjsonWriter {
 public:
  explicit NdjsonWriter(NdjsonWriterOptions options);
  ~NdjsonWriter();
  NdjsonWriter(const NdjsonWriter&) = delete;
  NdjsonWriter& operator=(const NdjsonWriter&) = delete;

  // Writes `line` plus '\n'. REQUIRES: line holds no '\n'; not sealed.
  Status Append(std::string_view line);

  // Flushes and fdatasyncs the current file. REQUIRES: not sealed.
  Status Seal();

  // Renames the sealed temp files into place and fsyncs the directory. REQUIRES: sealed.
  Status Publish();

  // Deletes the temp files (best effort). The writer is finished afterwards.
  void Cancel();

  // Files so far (the last one may still be open), in seq order.
  const std::vector<NdjsonFile>& files() const { return files_; }
  int64_t total_resources() const { return total_resources_; }
  int64_t total_bytes() const { return total_bytes_; }

 private:
  Status StartFile();
  Status CloseFile(bool sync);
  Status Flush();
  void StartWriteback();
  Status WriteAll(const char* data, size_t n);
  std::string TempPath(const NdjsonFile& f) const;
  std::string FinalPath(const NdjsonFile& f) const;
  std::string TwinTempPath(const NdjsonFile& f) const;
  std::string TwinFinalPath(const NdjsonFile& f) const;

  NdjsonWriterOptions options_;
  std::vector<NdjsonFile> files_;
  std::vector<char> buffer_;
  size_t buffered_ = 0;
  int64_t synced_offset_ = 0;  // of the current file, handed to writeback so far
  int fd_ = -1;
  std::unique_ptr<GzipTwin> twin_;  // of the open file; null without gzip
  bool sealed_ = false;
  bool finished_ = false;  // published or cancelled
  int64_t total_resources_ = 0;
  int64_t total_bytes_ = 0;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_WORKER_NDJSON_WRITER_H_
