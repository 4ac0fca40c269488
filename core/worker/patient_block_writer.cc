#include "worker/patient_block_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "export/job_dir.h"
#include "util/errno_text.h"

namespace fhirbulk {

namespace {

constexpr size_t kCopyChunk = 1 << 20;

Status ErrnoStatus(const char* what, const std::string& name, int err) {
  return Status::IOError(std::string(what) + " " + name + ": " + ErrnoText(err));
}

Status WriteFd(int fd, const char* data, size_t n, const std::string& name) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return ErrnoStatus("writing", name, w < 0 ? errno : EIO);
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::OK();
}

int OpenForWrite(const std::string& path) {
  // Read too: a block that moves to the next file is read back from this one.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, kExportFileMode);
  if (fd >= 0 && ::fchmod(fd, kExportFileMode) != 0) {
    int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

// A patient id as a JSON string body: ids are FHIR ids ([A-Za-z0-9.-]), but escape anyway.
void AppendEscaped(std::string_view s, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(ch);
    } else if (c < 0x20) {
      out->append("\\u00");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    } else {
      out->push_back(ch);
    }
  }
}

}  // namespace

std::string PatientBlockHeader(std::string_view patient_id) {
  std::string out =
      "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"header\",\"valueReference\":"
      "{\"reference\":\"Patient/";
  AppendEscaped(patient_id, &out);
  out += "\"}}]}";
  return out;
}

PatientBlockWriter::PatientBlockWriter(NdjsonWriterOptions options) : options_(std::move(options)) {
  options_.max_resources = std::max<int64_t>(1, options_.max_resources);
  options_.max_bytes = std::max<int64_t>(1, options_.max_bytes);
}

PatientBlockWriter::~PatientBlockWriter() { Cancel(); }

std::string PatientBlockWriter::FinalPath(const NdjsonFile& f) const {
  return options_.dir + "/" + f.name;
}
std::string PatientBlockWriter::TempPath(const NdjsonFile& f) const {
  return FinalPath(f) + TempFileSuffix(options_.worker_id);
}
std::string PatientBlockWriter::TwinFinalPath(const NdjsonFile& f) const {
  return FinalPath(f) + std::string(kGzipTwinSuffix);
}
std::string PatientBlockWriter::TwinTempPath(const NdjsonFile& f) const {
  return TwinFinalPath(f) + TempFileSuffix(options_.worker_id);
}

bool PatientBlockWriter::Fits(size_t n) const {
  return cur_.lines == 0 || (cur_.bytes + static_cast<int64_t>(n) <= options_.max_bytes &&
                             cur_.lines + 1 <= options_.max_resources);
}

Status PatientBlockWriter::StartFile() {
  NdjsonFile f;
  f.seq = static_cast<int>(files_.size()) + 1;
  f.name = ExportFileNameOf(options_.type, options_.unit_no, f.seq);
  int fd = OpenForWrite(TempPath(f));
  if (fd < 0) return ErrnoStatus("creating", f.name, errno);
  files_.push_back(f);
  continues_in_.emplace_back();
  cur_ = Open();
  cur_.fd = fd;
  file_has_blocks_ = false;
  return Status::OK();
}

Status PatientBlockWriter::Flush() {
  if (buffer_.empty() || cur_.fd < 0) return Status::OK();
  Status s = WriteFd(cur_.fd, buffer_.data(), buffer_.size(), files_.back().name);
  buffer_.clear();
  return s;
}

Status PatientBlockWriter::MakeTwin(const NdjsonFile& f) {
  int in = ::open(TempPath(f).c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return ErrnoStatus("reading", f.name, errno);
  const std::string twin_name = f.name + std::string(kGzipTwinSuffix);
  int out = OpenForWrite(TwinTempPath(f));
  if (out < 0) {
    int err = errno;
    ::close(in);
    return ErrnoStatus("creating", twin_name, err);
  }
  Deflater deflater;
  const Deflater::Sink sink = [&](const char* data, size_t n) {
    return WriteFd(out, data, n, twin_name);
  };
  Status s = deflater.Init(options_.gzip_level);
  std::string chunk(kCopyChunk, '\0');
  while (s.ok()) {
    ssize_t n = ::read(in, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      s = ErrnoStatus("reading", f.name, errno);
      break;
    }
    if (n == 0) break;
    s = deflater.Compress(std::string_view(chunk.data(), static_cast<size_t>(n)), sink);
  }
  if (s.ok()) s = deflater.Finish(sink);
  if (s.ok() && ::fdatasync(out) != 0) s = ErrnoStatus("syncing", twin_name, errno);
  ::close(in);
  if (::close(out) != 0 && s.ok()) s = ErrnoStatus("closing", twin_name, errno);
  return s;
}

Status PatientBlockWriter::CloseFile() {
  if (cur_.fd < 0) return Status::OK();
  Status s = Flush();
  const NdjsonFile& f = files_.back();
  if (s.ok() && ::fdatasync(cur_.fd) != 0) s = ErrnoStatus("syncing", f.name, errno);
  if (::close(cur_.fd) != 0 && s.ok()) s = ErrnoStatus("closing", f.name, errno);
  cur_ = Open();
  if (s.ok() && options_.gzip_level > 0) s = MakeTwin(f);
  return s;
}

Status PatientBlockWriter::WriteLine(std::string_view line, bool header) {
  if (line.find('\n') != std::string_view::npos) {
    return Status::InvalidArgument("a line holds a newline");
  }
  buffer_.append(line.data(), line.size());
  buffer_.push_back('\n');
  const int64_t n = static_cast<int64_t>(line.size()) + 1;
  cur_.bytes += n;
  cur_.lines++;
  files_.back().bytes += n;
  total_bytes_ += n;
  if (!header) {
    files_.back().resources++;
    total_resources_++;
  }
  if (buffer_.size() >= options_.buffer_bytes) return Flush();
  return Status::OK();
}

Status PatientBlockWriter::MoveBlockToNewFile() {
  FHIRBULK_RETURN_IF_ERROR(Flush());
  const size_t old_index = files_.size() - 1;
  const Open old = cur_;
  const int64_t start = block_offset_;
  const int64_t len = old.bytes - start;
  const int64_t moved_lines = old.lines - block_lines_before_;
  const int64_t moved_resources = files_[old_index].resources - block_resources_before_;
  cur_ = Open();
  Status s = StartFile();
  if (!s.ok()) {
    cur_ = old;  // still ours to close (Cancel)
    return s;
  }
  std::string chunk(kCopyChunk, '\0');
  int64_t done = 0;
  while (s.ok() && done < len) {
    const size_t want = static_cast<size_t>(std::min<int64_t>(len - done, kCopyChunk));
    ssize_t n = ::pread(old.fd, chunk.data(), want, start + done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      s = ErrnoStatus("reading", files_[old_index].name, n < 0 ? errno : EIO);
      break;
    }
    s = WriteFd(cur_.fd, chunk.data(), static_cast<size_t>(n), files_.back().name);
    done += n;
  }
  if (s.ok() && ::ftruncate(old.fd, start) != 0) {
    s = ErrnoStatus("truncating", files_[old_index].name, errno);
  }
  NdjsonFile& old_file = files_[old_index];
  old_file.bytes -= len;
  old_file.resources -= moved_resources;
  if (s.ok() && ::fdatasync(old.fd) != 0) s = ErrnoStatus("syncing", old_file.name, errno);
  if (::close(old.fd) != 0 && s.ok()) s = ErrnoStatus("closing", old_file.name, errno);
  if (s.ok() && options_.gzip_level > 0) s = MakeTwin(old_file);
  cur_.bytes = len;
  cur_.lines = moved_lines;
  files_.back().bytes = len;
  files_.back().resources = moved_resources;
  file_has_blocks_ = true;
  block_offset_ = 0;
  block_lines_before_ = 0;
  block_resources_before_ = 0;
  return s;
}

Status PatientBlockWriter::Append(std::string_view patient_id, std::string_view line) {
  if (sealed_ || finished_) return Status::Internal("PatientBlockWriter: Append after Seal");
  if (!in_block_ || patient_id != key_) {
    in_block_ = true;
    key_.assign(patient_id.data(), patient_id.size());
    if (key_.empty()) {
      // Unattached resources never share a file with blocks.
      if (cur_.fd >= 0 && file_has_blocks_) FHIRBULK_RETURN_IF_ERROR(CloseFile());
    } else {
      const std::string header = PatientBlockHeader(key_);
      if (cur_.fd >= 0 && cur_.lines > 0 && (!file_has_blocks_ || !Fits(header.size() + 1))) {
        FHIRBULK_RETURN_IF_ERROR(CloseFile());
      }
      if (cur_.fd < 0) FHIRBULK_RETURN_IF_ERROR(StartFile());
      block_offset_ = cur_.bytes;
      block_lines_before_ = cur_.lines;
      block_resources_before_ = files_.back().resources;
      file_has_blocks_ = true;
      FHIRBULK_RETURN_IF_ERROR(WriteLine(header, /*header=*/true));
    }
  }
  if (cur_.fd < 0) FHIRBULK_RETURN_IF_ERROR(StartFile());
  const size_t n = line.size() + 1;
  if (!Fits(n)) {
    if (key_.empty()) {
      FHIRBULK_RETURN_IF_ERROR(CloseFile());
      FHIRBULK_RETURN_IF_ERROR(StartFile());
    } else {
      if (block_lines_before_ > 0) FHIRBULK_RETURN_IF_ERROR(MoveBlockToNewFile());
      if (!Fits(n)) {
        // The block alone is over the limit: it goes on in the next file, header repeated.
        const size_t from = files_.size() - 1;
        FHIRBULK_RETURN_IF_ERROR(CloseFile());
        FHIRBULK_RETURN_IF_ERROR(StartFile());
        continues_in_[from] = files_.back().name;
        file_has_blocks_ = true;
        block_offset_ = 0;
        block_lines_before_ = 0;
        block_resources_before_ = 0;
        FHIRBULK_RETURN_IF_ERROR(WriteLine(PatientBlockHeader(key_), /*header=*/true));
      }
    }
  }
  return WriteLine(line, /*header=*/false);
}

Status PatientBlockWriter::Seal() {
  if (sealed_ || finished_) return Status::Internal("PatientBlockWriter: sealed twice");
  FHIRBULK_RETURN_IF_ERROR(CloseFile());
  sealed_ = true;
  return Status::OK();
}

Status PatientBlockWriter::Publish() {
  if (!sealed_ || finished_) return Status::Internal("PatientBlockWriter: Publish before Seal");
  const bool gzip = options_.gzip_level > 0;
  for (size_t i = 0; i < files_.size(); i++) {
    const NdjsonFile& f = files_[i];
    const bool twin_renamed =
        gzip && ::rename(TwinTempPath(f).c_str(), TwinFinalPath(f).c_str()) == 0;
    if ((gzip && !twin_renamed) || ::rename(TempPath(f).c_str(), FinalPath(f).c_str()) != 0) {
      Status s = ErrnoStatus("renaming", f.name, errno);
      for (size_t j = 0; j < i; j++) {
        ::unlink(FinalPath(files_[j]).c_str());
        if (gzip) ::unlink(TwinFinalPath(files_[j]).c_str());
      }
      if (twin_renamed) ::unlink(TwinFinalPath(f).c_str());
      for (size_t j = i; j < files_.size(); j++) {
        ::unlink(TempPath(files_[j]).c_str());
        if (gzip) ::unlink(TwinTempPath(files_[j]).c_str());
      }
      finished_ = true;
      return s;
    }
  }
  finished_ = true;
  if (files_.empty()) return Status::OK();
  int dfd = ::open(options_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return ErrnoStatus("opening the directory of", files_[0].name, errno);
  Status s;
  if (::fsync(dfd) != 0) s = ErrnoStatus("syncing the directory of", files_[0].name, errno);
  ::close(dfd);
  return s;
}

void PatientBlockWriter::Cancel() {
  if (finished_) return;
  if (cur_.fd >= 0) ::close(cur_.fd);
  cur_ = Open();
  for (const NdjsonFile& f : files_) {
    ::unlink(TempPath(f).c_str());
    ::unlink(TwinTempPath(f).c_str());
  }
  finished_ = true;
}

}  // namespace fhirbulk
