#include "synth/sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/errno_text.h"

namespace fhirbulk {
namespace synth {

namespace {

constexpr const char* kKindNames[kKindCount] = {
    "Patient",
    "Encounter",
    "Condition",
    "Observation",
    "DiagnosticReport",
    "Procedure",
    "MedicationRequest",
    "Immunization",
    "AllergyIntolerance",
    "CarePlan",
    "CareTeam",
    "Device",
    "ImagingStudy",
    "DocumentReference",
    "Claim",
    "ExplanationOfBenefit",
    "Provenance",
    "Organization",
    "Practitioner",
    "Location",
    "Group",
};

constexpr size_t kFileBufferBytes = 1 << 20;

Status WriteAll(int fd, const char* data, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::IOError("write " + path + ": " + ErrnoText(errno));
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::OK();
}

}  // namespace

const char* KindName(Kind kind) { return kKindNames[static_cast<size_t>(kind)]; }

Status ResourceSink::PutLines(Kind kind, std::string_view ndjson, size_t /*count*/) {
  size_t start = 0;
  while (start < ndjson.size()) {
    size_t nl = ndjson.find('\n', start);
    if (nl == std::string_view::npos) nl = ndjson.size();
    FHIRBULK_RETURN_IF_ERROR(Put(kind, ndjson.substr(start, nl - start)));
    start = nl + 1;
  }
  return Status::OK();
}

// --- NdjsonDirSink -------------------------------------------------------------------------

NdjsonDirSink::NdjsonDirSink(std::string dir) : dir_(std::move(dir)) {}

NdjsonDirSink::~NdjsonDirSink() {
  if (!closed_) Close();  // errors surface only through an explicit Close()
}

Result<std::unique_ptr<NdjsonDirSink>> NdjsonDirSink::Open(const std::string& dir) {
  if (dir.empty()) return Status::InvalidArgument("empty output directory");
  if (::mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST) {
    return Status::IOError("mkdir " + dir + ": " + ErrnoText(errno));
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::IOError(dir + " is not a directory");
  }
  return std::unique_ptr<NdjsonDirSink>(new NdjsonDirSink(dir));
}

Status NdjsonDirSink::Flush(Kind kind) {
  File& f = files_[static_cast<size_t>(kind)];
  if (f.buffer.empty()) return Status::OK();
  std::string path = dir_ + "/" + KindName(kind) + ".ndjson";
  if (f.fd < 0) {
    f.fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (f.fd < 0) return Status::IOError("open " + path + ": " + ErrnoText(errno));
  }
  Status s = WriteAll(f.fd, f.buffer.data(), f.buffer.size(), path);
  f.buffer.clear();
  return s;
}

// Buffers `bytes`, flushing first when they would not fit. A block larger than the buffer
// (a big Group) still goes through the buffer in one piece: rare, and it keeps one code path.
Status NdjsonDirSink::Append(Kind kind, std::string_view bytes) {
  File& f = files_[static_cast<size_t>(kind)];
  if (f.buffer.capacity() < kFileBufferBytes) f.buffer.reserve(kFileBufferBytes);
  if (f.buffer.size() + bytes.size() > kFileBufferBytes) FHIRBULK_RETURN_IF_ERROR(Flush(kind));
  f.buffer.append(bytes.data(), bytes.size());
  return Status::OK();
}

Status NdjsonDirSink::Put(Kind kind, std::string_view json) {
  FHIRBULK_RETURN_IF_ERROR(Append(kind, json));
  return Append(kind, "\n");
}

Status NdjsonDirSink::PutLines(Kind kind, std::string_view ndjson, size_t /*count*/) {
  return Append(kind, ndjson);
}

Status NdjsonDirSink::Close() {
  if (closed_) return Status::OK();
  closed_ = true;
  Status first;
  for (size_t k = 0; k < kKindCount; k++) {
    Status s = Flush(static_cast<Kind>(k));
    if (first.ok() && !s.ok()) first = s;
    File& f = files_[k];
    if (f.fd >= 0) {
      if (::close(f.fd) != 0 && first.ok()) {
        first = Status::IOError("close " + dir_ + "/" + KindName(static_cast<Kind>(k)) +
                                ".ndjson: " + ErrnoText(errno));
      }
      f.fd = -1;
    }
    std::string().swap(f.buffer);
  }
  return first;
}

// --- BatchBuffer ---------------------------------------------------------------------------

Status BatchBuffer::Put(Kind kind, std::string_view json) {
  std::string& t = text_[static_cast<size_t>(kind)];
  t.append(json.data(), json.size());
  t.push_back('\n');
  count_[static_cast<size_t>(kind)]++;
  return Status::OK();
}

Status BatchBuffer::Drain(ResourceSink* to) {
  for (size_t k = 0; k < kKindCount; k++) {
    if (count_[k] == 0) continue;
    FHIRBULK_RETURN_IF_ERROR(to->PutLines(static_cast<Kind>(k), text_[k], count_[k]));
  }
  Clear();
  return Status::OK();
}

void BatchBuffer::Clear() {
  for (size_t k = 0; k < kKindCount; k++) {
    text_[k].clear();
    count_[k] = 0;
  }
}

}  // namespace synth
}  // namespace fhirbulk
