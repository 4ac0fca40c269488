#include "worker/ndjson_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#ifdef FHIRBULK_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "export/job_dir.h"
#include "util/errno_text.h"

namespace fhirbulk {

namespace {

Status ErrnoStatus(const char* what, const std::string& name, int err) {
  return Status::IOError(std::string(what) + " " + name + ": " + ErrnoText(err));
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

// Starts writing out everything from `offset` to the end of the file, before a fdatasync.
void StartWritebackOfRest(int fd, int64_t offset) {
#ifdef __linux__
  ::sync_file_range(fd, offset, 0, SYNC_FILE_RANGE_WRITE);
#else
  (void)fd, (void)offset;
#endif
}

}  // namespace

// ---- Deflater ---------------------------------------------------------------------------

// zlib, or at level 1 ISA-L's igzip when built with it (see the header).
struct Deflater::Stream {
  z_stream z;
  bool allocated = false;  // deflateInit2 succeeded: deflateEnd is due
#ifdef FHIRBULK_HAVE_ISAL
  bool isal = false;  // this stream is igzip's
  std::unique_ptr<isal_zstream> iz;
  std::vector<uint8_t> level_buf;
#endif

  // The output cursor of whichever library runs this stream.
  size_t avail_out() const {
#ifdef FHIRBULK_HAVE_ISAL
    if (isal) return iz->avail_out;
#endif
    return z.avail_out;
  }
  void set_out(char* p, size_t n) {
#ifdef FHIRBULK_HAVE_ISAL
    if (isal) {
      iz->next_out = reinterpret_cast<uint8_t*>(p);
      iz->avail_out = static_cast<uint32_t>(n);
      return;
    }
#endif
    z.next_out = reinterpret_cast<Bytef*>(p);
    z.avail_out = static_cast<uInt>(n);
  }
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
  if (out_.size() != kDeflateOutBytes) out_.resize(kDeflateOutBytes);
#ifdef FHIRBULK_HAVE_ISAL
  z_->isal = level == 1;
  if (z_->isal) {
    if (z_->iz == nullptr) z_->iz = std::make_unique<isal_zstream>();
    isal_zstream* iz = z_->iz.get();
    ::isal_deflate_init(iz);
    iz->gzip_flag = IGZIP_GZIP;  // gzip header and CRC-32/length trailer
    iz->level = 1;
    z_->level_buf.resize(ISAL_DEF_LVL1_DEFAULT);
    iz->level_buf = z_->level_buf.data();
    iz->level_buf_size = static_cast<uint32_t>(z_->level_buf.size());
    iz->flush = NO_FLUSH;
    z_->set_out(out_.data(), out_.size());
    active_ = true;
    return Status::OK();
  }
#endif
  // windowBits 15 + 16: a gzip header and trailer instead of zlib's.
  if (::deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Status::Internal("deflateInit2 failed");
  }
  z_->allocated = true;
  z_->set_out(out_.data(), out_.size());
  active_ = true;
  return Status::OK();
}

Status Deflater::Drain(const Sink& sink) {
  const size_t n = out_.size() - z_->avail_out();
  z_->set_out(out_.data(), out_.size());
  if (n == 0) return Status::OK();
  Status s = sink(out_.data(), n);
  if (!s.ok()) active_ = false;
  return s;
}

Status Deflater::Compress(std::string_view data, const Sink& sink) {
  if (!active_) return Status::Internal("Deflater: Compress without Init");
#ifdef FHIRBULK_HAVE_ISAL
  if (z_->isal) {
    isal_zstream* iz = z_->iz.get();
    while (!data.empty()) {
      const size_t chunk = std::min<size_t>(data.size(), 1u << 30);  // avail_in is 32 bits
      iz->next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(data.data()));
      iz->avail_in = static_cast<uint32_t>(chunk);
      iz->end_of_stream = 0;
      // igzip keeps whatever input it has not encoded yet in its own history buffer, so
      // `data` may be reused once avail_in is 0.
      while (iz->avail_in > 0) {
        if (iz->avail_out == 0) FHIRBULK_RETURN_IF_ERROR(Drain(sink));
        if (::isal_deflate(iz) != COMP_OK) {
          active_ = false;
          return Status::Internal("isal_deflate failed");
        }
      }
      data.remove_prefix(chunk);
    }
    return Status::OK();
  }
#endif
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
#ifdef FHIRBULK_HAVE_ISAL
  if (z_->isal) {
    isal_zstream* iz = z_->iz.get();
    iz->next_in = nullptr;
    iz->avail_in = 0;
    iz->end_of_stream = 1;
    while (iz->internal_state.state != ZSTATE_END) {
      if (iz->avail_out == 0) FHIRBULK_RETURN_IF_ERROR(Drain(sink));
      if (::isal_deflate(iz) != COMP_OK) {
        active_ = false;
        return Status::Internal("isal_deflate failed");
      }
    }
    Status s = Drain(sink);
    active_ = false;
    return s;
  }
#endif

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
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, kExportFileMode);
    if (fd < 0) return ErrnoStatus("creating", name, errno);
    if (::fchmod(fd, kExportFileMode) != 0) {  // whatever the umask
      int err = errno;
      ::close(fd);
      return ErrnoStatus("creating", name, err);
    }
    std::unique_ptr<GzipTwin> t(new GzipTwin(fd, std::move(name)));
    FHIRBULK_RETURN_IF_ERROR(t->deflater_.Init(level));
    return t;
  }

  ~GzipTwin() {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Write(std::string_view data) { return deflater_.Compress(data, sink_); }

  // Completes the stream (trailer) and, when `sync`, hands the rest to writeback, so that
  // the plain file's fdatasync and this twin's overlap.
  Status Finish(bool sync) {
    Status s = deflater_.Finish(sink_);
    if (s.ok() && sync) StartWritebackOfRest(fd_, writeback_offset_);
    return s;
  }

  // fdatasyncs when `sync` and closes. REQUIRES: Finish.
  Status Close(bool sync) {
    Status s;
    if (sync && ::fdatasync(fd_) != 0) s = ErrnoStatus("syncing", name_, errno);
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
  return FinalPath(f) + TempFileSuffix(options_.worker_id);
}

std::string NdjsonWriter::TwinFinalPath(const NdjsonFile& f) const {
  return FinalPath(f) + std::string(kGzipTwinSuffix);
}

std::string NdjsonWriter::TwinTempPath(const NdjsonFile& f) const {
  return TwinFinalPath(f) + TempFileSuffix(options_.worker_id);
}

Status NdjsonWriter::StartFile() {
  NdjsonFile f;
  f.seq = static_cast<int>(files_.size()) + 1;
  f.name = ExportFileNameOf(options_.type, options_.unit_no, f.seq);
  files_.push_back(f);
  std::string path = TempPath(files_.back());
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, kExportFileMode);
  if (fd_ >= 0 && ::fchmod(fd_, kExportFileMode) != 0) {  // whatever the umask
    int err = errno;
    ::close(fd_);
    fd_ = -1;
    errno = err;
  }
  if (fd_ < 0) {
    int err = errno;
    files_.pop_back();
    return ErrnoStatus("creating", f.name, err);
  }
  if (options_.gzip_level > 0) {
    auto twin =
        GzipTwin::Open(TwinTempPath(f), f.name + std::string(kGzipTwinSuffix), options_.gzip_level);
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
  if (s.ok() && twin_ != nullptr) s = twin_->Finish(sync);
  // fdatasync before the rename makes the rename publish complete contents after a crash.
  // Both files' writeback starts before either sync waits.
  if (s.ok() && sync) StartWritebackOfRest(fd_, synced_offset_);
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
      Status s = ErrnoStatus("renaming",
                             gzip && !twin_renamed ? f.name + std::string(kGzipTwinSuffix) : f.name,
                             errno);
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

}  // namespace fhirbulk
