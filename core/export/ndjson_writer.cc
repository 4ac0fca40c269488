#include "export/ndjson_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace fhirbulk {

namespace {

Status ErrnoStatus(const char* what, const std::string& name, int err) {
  return Status::IOError(std::string(what) + " " + name + ": " + std::strerror(err));
}

bool ParseSmallInt(std::string_view s, int* out) {
  if (s.empty() || s.size() > 9) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

NdjsonWriter::NdjsonWriter(NdjsonWriterOptions options) : options_(std::move(options)) {
  if (options_.buffer_bytes < 4096) options_.buffer_bytes = 4096;
  if (options_.max_resources < 1) options_.max_resources = 1;
  if (options_.max_bytes < 1) options_.max_bytes = 1;
}

NdjsonWriter::~NdjsonWriter() {
  if (!finished_) Cancel();
}

std::string NdjsonWriter::FinalPath(const NdjsonFile& f) const {
  return options_.dir + "/" + f.name;
}

std::string NdjsonWriter::TempPath(const NdjsonFile& f) const {
  return FinalPath(f) + options_.temp_suffix;
}

Status NdjsonWriter::StartFile() {
  NdjsonFile f;
  f.seq = static_cast<int>(files_.size()) + 1;
  f.name = options_.prefix + "." + std::to_string(f.seq) + ".ndjson";
  files_.push_back(f);
  std::string path = TempPath(files_.back());
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    int err = errno;
    files_.pop_back();
    return ErrnoStatus("creating", f.name, err);
  }
  if (buffer_.size() != options_.buffer_bytes) buffer_.resize(options_.buffer_bytes);
  buffered_ = 0;
  synced_offset_ = 0;
  return Status::OK();
}

Status NdjsonWriter::WriteAll(const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd_, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("writing", files_.back().name, errno);
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::OK();
}

Status NdjsonWriter::Flush() {
  if (buffered_ == 0) return Status::OK();
  Status s = WriteAll(buffer_.data(), buffered_);
  buffered_ = 0;
  if (s.ok()) StartWriteback();
  return s;
}

void NdjsonWriter::StartWriteback() {
#ifdef __linux__
  // Start writing dirty pages out now, asynchronously, so the fdatasync at the end of the
  // file finds little left to do and the disk works while we read the next rows.
  const int64_t written = files_.back().bytes - static_cast<int64_t>(buffered_);
  if (written - synced_offset_ >= kWritebackChunk) {
    ::sync_file_range(fd_, synced_offset_, written - synced_offset_, SYNC_FILE_RANGE_WRITE);
    synced_offset_ = written;
  }
#endif
}

Status NdjsonWriter::CloseFile(bool sync) {
  if (fd_ < 0) return Status::OK();
  Status s = Flush();
  // fdatasync before the rename makes the rename publish complete contents after a crash.
  if (s.ok() && sync && ::fdatasync(fd_) != 0)
    s = ErrnoStatus("syncing", files_.back().name, errno);
  if (::close(fd_) != 0 && s.ok()) s = ErrnoStatus("closing", files_.back().name, errno);
  fd_ = -1;
  return s;
}

Status NdjsonWriter::Append(std::string_view line) {
  if (sealed_ || finished_) return Status::Internal("NdjsonWriter: append after Seal/Cancel");
  const int64_t line_bytes = static_cast<int64_t>(line.size()) + 1;
  if (fd_ >= 0) {
    const NdjsonFile& cur = files_.back();
    if (cur.resources >= options_.max_resources ||
        (cur.bytes > 0 && cur.bytes + line_bytes > options_.max_bytes)) {
      FHIRBULK_RETURN_IF_ERROR(CloseFile(/*sync=*/true));
    }
  }
  if (fd_ < 0) FHIRBULK_RETURN_IF_ERROR(StartFile());
  if (buffered_ + static_cast<size_t>(line_bytes) > buffer_.size()) {
    FHIRBULK_RETURN_IF_ERROR(Flush());
  }
  if (static_cast<size_t>(line_bytes) > buffer_.size()) {  // huge line: bypass the buffer
    FHIRBULK_RETURN_IF_ERROR(WriteAll(line.data(), line.size()));
    FHIRBULK_RETURN_IF_ERROR(WriteAll("\n", 1));
  } else {
    std::memcpy(buffer_.data() + buffered_, line.data(), line.size());
    buffer_[buffered_ + line.size()] = '\n';
    buffered_ += static_cast<size_t>(line_bytes);
  }
  NdjsonFile& cur = files_.back();
  cur.resources++;
  cur.bytes += line_bytes;
  total_resources_++;
  total_bytes_ += line_bytes;
  return Status::OK();
}

Status NdjsonWriter::Seal() {
  if (sealed_ || finished_) return Status::Internal("NdjsonWriter: Seal twice or after Cancel");
  Status s = CloseFile(/*sync=*/true);
  if (s.ok()) sealed_ = true;
  return s;
}

Status NdjsonWriter::Publish() {
  if (!sealed_ || finished_) return Status::Internal("NdjsonWriter: Publish before Seal");
  for (size_t i = 0; i < files_.size(); i++) {
    if (::rename(TempPath(files_[i]).c_str(), FinalPath(files_[i]).c_str()) != 0) {
      Status s = ErrnoStatus("renaming", files_[i].name, errno);
      // Undo: the caller rolls back the transaction that would have listed these files.
      for (size_t j = 0; j < i; j++) ::unlink(FinalPath(files_[j]).c_str());
      for (size_t j = i; j < files_.size(); j++) ::unlink(TempPath(files_[j]).c_str());
      finished_ = true;
      return s;
    }
  }
  finished_ = true;
  if (files_.empty()) return Status::OK();
  // The renames are durable only once the directory is.
  int dfd = ::open(options_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return ErrnoStatus("opening the directory of", files_[0].name, errno);
  Status s;
  if (::fsync(dfd) != 0) s = ErrnoStatus("syncing the directory of", files_[0].name, errno);
  ::close(dfd);
  return s;
}

void NdjsonWriter::Cancel() {
  if (finished_) return;
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  for (const NdjsonFile& f : files_) ::unlink(TempPath(f).c_str());
  finished_ = true;
}

std::optional<ExportFileName> ParseExportFileName(std::string_view name) {
  // <type>.<unit>.<seq>.ndjson[.tmp.<id>]
  std::string_view parts[6];
  size_t n = 0;
  size_t start = 0;
  while (n < 6) {
    size_t dot = name.find('.', start);
    if (n == 5 || dot == std::string_view::npos) {
      parts[n++] = name.substr(start);
      break;
    }
    parts[n++] = name.substr(start, dot - start);
    start = dot + 1;
  }
  if (n != 4 && n != 6) return std::nullopt;
  ExportFileName out;
  if (parts[0].empty() || parts[3] != "ndjson") return std::nullopt;
  if (!ParseSmallInt(parts[1], &out.unit_no) || !ParseSmallInt(parts[2], &out.seq)) {
    return std::nullopt;
  }
  if (n == 6) {
    if (parts[4] != "tmp" || parts[5].empty()) return std::nullopt;
    out.temp = true;
  }
  out.type = std::string(parts[0]);
  return out;
}

}  // namespace fhirbulk
