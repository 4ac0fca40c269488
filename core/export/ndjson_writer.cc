#include "export/ndjson_writer.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace fhirbulk {

namespace {

Status ErrnoStatus(const char* what, const std::string& name, int err) {
  return Status::IOError(std::string(what) + " " + name + ": " + std::strerror(err));
}

constexpr int64_t kWritebackChunk = 8 << 20;
constexpr size_t kDeflateOutBytes = 256 << 10;

Status WriteFd(int fd, const char* data, size_t n, const std::string& name) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("writing", name, errno);
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::OK();
}

// Starts writing dirty pages out now, asynchronously, once `written` is a chunk past
// *offset, so the fdatasync at the end of the file finds little left to do and the disk works
// while we read the next rows.
void StartWritebackOf(int fd, int64_t written, int64_t* offset) {
#ifdef __linux__
  if (written - *offset >= kWritebackChunk) {
    ::sync_file_range(fd, *offset, written - *offset, SYNC_FILE_RANGE_WRITE);
    *offset = written;
  }
#else
  (void)fd, (void)written, (void)offset;
#endif
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

// ---- Deflater ---------------------------------------------------------------------------

struct Deflater::Stream {
  z_stream z;
  bool allocated = false;  // deflateInit2 succeeded: deflateEnd is due
};

Deflater::Deflater() : z_(new Stream) { std::memset(&z_->z, 0, sizeof(z_->z)); }

Deflater::~Deflater() {
  if (z_->allocated) ::deflateEnd(&z_->z);
}

Status Deflater::Init(int level) {
  if (level < 1 || level > 9) return Status::InvalidArgument("gzip level must be 1..9");
  active_ = false;
  z_stream& z = z_->z;
  if (z_->allocated) {
    ::deflateEnd(&z);
    z_->allocated = false;
  }
  std::memset(&z, 0, sizeof(z));
  // windowBits 15 + 16: a gzip header and trailer instead of zlib's.
  if (::deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Status::Internal("deflateInit2 failed");
  }
  z_->allocated = true;
  if (out_.size() != kDeflateOutBytes) out_.resize(kDeflateOutBytes);
  z.next_out = reinterpret_cast<Bytef*>(out_.data());
  z.avail_out = static_cast<uInt>(out_.size());
  active_ = true;
  return Status::OK();
}

Status Deflater::Drain(const Sink& sink) {
  z_stream& z = z_->z;
  const size_t n = out_.size() - z.avail_out;
  z.next_out = reinterpret_cast<Bytef*>(out_.data());
  z.avail_out = static_cast<uInt>(out_.size());
  if (n == 0) return Status::OK();
  Status s = sink(out_.data(), n);
  if (!s.ok()) active_ = false;
  return s;
}

Status Deflater::Compress(std::string_view data, const Sink& sink) {
  if (!active_) return Status::Internal("Deflater: Compress without Init");
  z_stream& z = z_->z;
  while (!data.empty()) {
    const size_t chunk = std::min<size_t>(data.size(), 1u << 30);  // avail_in is 32 bits
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(chunk);
    while (z.avail_in > 0) {
      if (z.avail_out == 0) FHIRBULK_RETURN_IF_ERROR(Drain(sink));
      if (::deflate(&z, Z_NO_FLUSH) != Z_OK) {
        active_ = false;
        return Status::Internal("deflate failed");
      }
    }
    data.remove_prefix(chunk);
  }
  return Status::OK();
}

Status Deflater::Finish(const Sink& sink) {
  if (!active_) return Status::Internal("Deflater: Finish without Init");
  z_stream& z = z_->z;
  z.next_in = nullptr;
  z.avail_in = 0;
  while (true) {
    if (z.avail_out == 0) FHIRBULK_RETURN_IF_ERROR(Drain(sink));
    int rc = ::deflate(&z, Z_FINISH);
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK) {
      active_ = false;
      return Status::Internal("deflate failed");
    }
  }
  Status s = Drain(sink);
  active_ = false;
  return s;
}

// ---- GzipTwin -----------------------------------------------------------------------------

// The gzip twin of the file being written: its descriptor and its Deflater. Compression runs
// on the writer's thread, on the buffers the plain file was just written from: the unit's
// COPY keeps streaming into the socket meanwhile, so this overlaps with the database's work
// (a second compressing thread per unit measured slower on two cores; see the header).
class GzipTwin {
 public:
  static Result<std::unique_ptr<GzipTwin>> Open(const std::string& path, std::string name,
                                                int level) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus("creating", name, errno);
    std::unique_ptr<GzipTwin> t(new GzipTwin(fd, std::move(name)));
    FHIRBULK_RETURN_IF_ERROR(t->deflater_.Init(level));
    return t;
  }

  ~GzipTwin() {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Write(std::string_view data) { return deflater_.Compress(data, sink_); }

  // Completes the stream (trailer), fdatasyncs when `sync` and closes.
  Status Close(bool sync) {
    Status s = deflater_.Finish(sink_);
    if (s.ok() && sync && ::fdatasync(fd_) != 0) s = ErrnoStatus("syncing", name_, errno);
    if (::close(fd_) != 0 && s.ok()) s = ErrnoStatus("closing", name_, errno);
    fd_ = -1;
    return s;
  }

 private:
  GzipTwin(int fd, std::string name) : fd_(fd), name_(std::move(name)) {
    sink_ = [this](const char* data, size_t n) -> Status {
      FHIRBULK_RETURN_IF_ERROR(WriteFd(fd_, data, n, name_));
      written_ += static_cast<int64_t>(n);
      StartWritebackOf(fd_, written_, &writeback_offset_);
      return Status::OK();
    };
  }

  int fd_;
  const std::string name_;
  Deflater deflater_;
  Deflater::Sink sink_;
  int64_t written_ = 0;
  int64_t writeback_offset_ = 0;
};

// ---- NdjsonWriter -----------------------------------------------------------------------

NdjsonWriter::NdjsonWriter(NdjsonWriterOptions options) : options_(std::move(options)) {
  if (options_.buffer_bytes < 4096) options_.buffer_bytes = 4096;
  if (options_.max_resources < 1) options_.max_resources = 1;
  if (options_.max_bytes < 1) options_.max_bytes = 1;
  options_.gzip_level = std::clamp(options_.gzip_level, 0, 9);
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

std::string NdjsonWriter::TwinFinalPath(const NdjsonFile& f) const { return FinalPath(f) + ".gz"; }

std::string NdjsonWriter::TwinTempPath(const NdjsonFile& f) const {
  return TwinFinalPath(f) + options_.temp_suffix;
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
  if (options_.gzip_level > 0) {
    auto twin = GzipTwin::Open(TwinTempPath(f), f.name + ".gz", options_.gzip_level);
    if (!twin.ok()) {
      ::close(fd_);
      fd_ = -1;
      ::unlink(path.c_str());
      ::unlink(TwinTempPath(f).c_str());
      files_.pop_back();
      return twin.status();
    }
    twin_ = std::move(twin).value();
  }
  if (buffer_.size() != options_.buffer_bytes) buffer_.resize(options_.buffer_bytes);
  buffered_ = 0;
  synced_offset_ = 0;
  return Status::OK();
}

Status NdjsonWriter::WriteAll(const char* data, size_t n) {
  return WriteFd(fd_, data, n, files_.back().name);
}

Status NdjsonWriter::Flush() {
  if (buffered_ == 0) return Status::OK();
  Status s = WriteAll(buffer_.data(), buffered_);
  // The twin is compressed from the very buffer the plain file was written from.
  if (s.ok() && twin_ != nullptr) s = twin_->Write(std::string_view(buffer_.data(), buffered_));
  buffered_ = 0;
  if (s.ok()) StartWriteback();
  return s;
}

void NdjsonWriter::StartWriteback() {
  StartWritebackOf(fd_, files_.back().bytes - static_cast<int64_t>(buffered_), &synced_offset_);
}

Status NdjsonWriter::CloseFile(bool sync) {
  if (fd_ < 0) return Status::OK();
  Status s = Flush();
  // fdatasync before the rename makes the rename publish complete contents after a crash.
  if (s.ok() && sync && ::fdatasync(fd_) != 0)
    s = ErrnoStatus("syncing", files_.back().name, errno);
  if (::close(fd_) != 0 && s.ok()) s = ErrnoStatus("closing", files_.back().name, errno);
  fd_ = -1;
  if (twin_ != nullptr) {
    if (s.ok()) s = twin_->Close(sync);
    twin_.reset();
  }
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
    if (twin_ != nullptr) {
      FHIRBULK_RETURN_IF_ERROR(twin_->Write(line));
      FHIRBULK_RETURN_IF_ERROR(twin_->Write("\n"));
    }
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
  const bool gzip = options_.gzip_level > 0;
  for (size_t i = 0; i < files_.size(); i++) {
    const NdjsonFile& f = files_[i];
    // The twin first: whenever a plain file is in place, so is its twin.
    const bool twin_renamed =
        gzip && ::rename(TwinTempPath(f).c_str(), TwinFinalPath(f).c_str()) == 0;
    if ((gzip && !twin_renamed) || ::rename(TempPath(f).c_str(), FinalPath(f).c_str()) != 0) {
      Status s = ErrnoStatus("renaming", gzip && !twin_renamed ? f.name + ".gz" : f.name, errno);
      // Undo: the caller rolls back the transaction that would have listed these files.
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
  twin_.reset();
  for (const NdjsonFile& f : files_) {
    ::unlink(TempPath(f).c_str());
    if (options_.gzip_level > 0) ::unlink(TwinTempPath(f).c_str());
  }
  finished_ = true;
}

std::optional<ExportFileName> ParseExportFileName(std::string_view name) {
  // <type>.<unit>.<seq>.ndjson[.gz][.tmp.<id>]
  std::string_view parts[3];
  for (std::string_view& part : parts) {
    size_t dot = name.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    part = name.substr(0, dot);
    name.remove_prefix(dot + 1);
  }
  ExportFileName out;
  if (parts[0].empty() || !ParseSmallInt(parts[1], &out.unit_no) ||
      !ParseSmallInt(parts[2], &out.seq)) {
    return std::nullopt;
  }
  constexpr std::string_view kNdjson = "ndjson", kGz = ".gz", kTmp = ".tmp.";
  if (name.substr(0, kNdjson.size()) != kNdjson) return std::nullopt;
  name.remove_prefix(kNdjson.size());
  if (name.substr(0, kGz.size()) == kGz && (name.size() == kGz.size() || name[kGz.size()] == '.')) {
    out.gzip = true;
    name.remove_prefix(kGz.size());
  }
  if (!name.empty()) {
    if (name.size() <= kTmp.size() || name.substr(0, kTmp.size()) != kTmp) return std::nullopt;
    out.temp = true;
  }
  out.type = std::string(parts[0]);
  return out;
}

}  // namespace fhirbulk
