#include "load/input_file.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "util/errno_text.h"

namespace fhirbulk {

namespace {
constexpr size_t kChunk = 1 << 20;
}  // namespace

Result<std::unique_ptr<InputFile>> InputFile::Open(const std::string& path, size_t max_line_bytes) {
  gzFile gz = gzopen(path.c_str(), "rb");
  if (gz == nullptr) {
    return Status::IOError("cannot open " + path + ": " +
                           (errno != 0 ? ErrnoText(errno) : "out of memory"));
  }
  gzbuffer(gz, 256 * 1024);
  return std::unique_ptr<InputFile>(new InputFile(gz, path, max_line_bytes));
}

InputFile::InputFile(void* gz, std::string path, size_t max_line_bytes)
    : gz_(gz), path_(std::move(path)), max_line_bytes_(max_line_bytes) {
  buf_.resize(kChunk);
}

InputFile::~InputFile() { gzclose(static_cast<gzFile>(gz_)); }

uint64_t InputFile::consumed_bytes() const {
  z_off_t off = gzoffset(static_cast<gzFile>(gz_));
  return off < 0 ? 0 : static_cast<uint64_t>(off);
}

bool InputFile::Fill() {
  if (eof_ || !status_.ok()) return false;
  // Keep the unread part, at the front of the buffer; grow only when it fills the buffer.
  if (pos_ > 0) {
    std::memmove(&buf_[0], buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);
  size_t want = buf_.size() - end_;
  if (want > (1u << 30)) want = 1u << 30;
  int n = gzread(static_cast<gzFile>(gz_), &buf_[end_], static_cast<unsigned>(want));
  if (n < 0) {
    int err = 0;
    const char* msg = gzerror(static_cast<gzFile>(gz_), &err);
    status_ = Status::IOError("reading " + path_ + ": " + (msg ? msg : "read error"));
    return false;
  }
  if (n == 0) {
    eof_ = true;
    // A truncated gzip stream reads as end of file; gzerror tells it apart.
    int err = 0;
    const char* msg = gzerror(static_cast<gzFile>(gz_), &err);
    if (err != Z_OK && err != Z_STREAM_END) {
      status_ = Status::IOError("reading " + path_ + ": " + (msg ? msg : "read error"));
    }
    return false;
  }
  end_ += static_cast<size_t>(n);
  return true;
}

bool InputFile::NextLine(std::string_view* line) {
  line_too_long_ = false;
  size_t scanned = pos_;
  for (;;) {
    const char* start = buf_.data() + pos_;
    const void* nl = std::memchr(buf_.data() + scanned, '\n', end_ - scanned);
    if (nl != nullptr) {
      size_t len = static_cast<const char*>(nl) - start;
      pos_ += len + 1;
      if (len > 0 && start[len - 1] == '\r') len--;
      line_too_long_ = len > max_line_bytes_;
      *line = line_too_long_ ? std::string_view() : std::string_view(start, len);
      line_number_++;
      return true;
    }
    size_t unread = end_ - pos_;
    if (unread > max_line_bytes_) return SkipLongLine(line);
    if (!Fill()) {
      if (!status_.ok() || end_ == pos_) return false;
      // The last line has no terminator.
      const char* s = buf_.data() + pos_;
      size_t len = end_ - pos_;
      pos_ = end_;
      if (len > 0 && s[len - 1] == '\r') len--;
      line_too_long_ = len > max_line_bytes_;
      *line = line_too_long_ ? std::string_view() : std::string_view(s, len);
      line_number_++;
      return true;
    }
    scanned = pos_ + unread;  // Fill moved the unread part to pos_ (== 0)
  }
}

bool InputFile::SkipLongLine(std::string_view* line) {
  line_too_long_ = true;
  line_number_++;
  *line = std::string_view();
  pos_ = end_ = 0;  // drop what was read of the line; the buffer does not grow from here
  while (Fill()) {
    const void* nl = std::memchr(buf_.data(), '\n', end_);
    if (nl != nullptr) {
      pos_ = static_cast<size_t>(static_cast<const char*>(nl) - buf_.data()) + 1;
      return true;
    }
    pos_ = end_ = 0;
  }
  return status_.ok();  // the over-long line was the last one
}

Status InputFile::ReadRest(std::string* out, size_t max_bytes) {
  auto append = [&](const char* data, size_t n) {
    if (out->size() + n > max_bytes) {
      return Status::ResourceExhausted(path_ + " is larger than " + std::to_string(max_bytes) +
                                       " bytes");
    }
    out->append(data, n);
    return Status::OK();
  };
  FHIRBULK_RETURN_IF_ERROR(append(buf_.data() + pos_, end_ - pos_));
  pos_ = end_ = 0;
  while (!eof_ && status_.ok()) {
    if (!Fill()) break;
    FHIRBULK_RETURN_IF_ERROR(append(buf_.data(), end_));
    pos_ = end_ = 0;
  }
  return status_;
}

}  // namespace fhirbulk
