#include "client/file_download.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "client/display.h"
#include "client/http_client.h"
#include "client/http_status.h"
#include "client/interrupt.h"
#include "client/retry_after.h"
#include "client/token_source.h"
#include "util/errno_text.h"
#include "util/fhir_time.h"
#include "util/progress.h"

namespace fhirbulk {
namespace client {

namespace {

// A server that keeps answering 429 with Retry-After is still told to stop at some point.
constexpr int kMaxThrottled = 100;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Status Errno(const std::string& what) {
  return Status::IOError(what + ": " + ErrnoText(errno));
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("write " + path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

// Feeds the file's bytes from the start to the validator; returns its size.
Result<uint64_t> Scan(int fd, NdjsonValidator* validator, const std::string& path) {
  std::vector<char> buf(1 << 20);
  uint64_t size = 0;
  if (lseek(fd, 0, SEEK_SET) < 0) return Errno("seek " + path);
  while (true) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("read " + path);
    }
    if (n == 0) return size;
    validator->Feed(std::string_view(buf.data(), static_cast<size_t>(n)));
    size += static_cast<uint64_t>(n);
  }
}

Status Truncate(int fd, const std::string& path) {
  if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) < 0) return Errno("truncate " + path);
  return Status::OK();
}

// "bytes 100-199/200": the first byte (100); "bytes */200": nullopt.
std::optional<uint64_t> RangeStart(const std::string& content_range) {
  if (content_range.rfind("bytes ", 0) != 0) return std::nullopt;
  const char* p = content_range.c_str() + 6;
  if (*p < '0' || *p > '9') return std::nullopt;
  return std::strtoull(p, nullptr, 10);
}

// "bytes */200" or "bytes 0-9/200": 200.
std::optional<uint64_t> RangeTotal(const std::string& content_range) {
  size_t slash = content_range.rfind('/');
  if (slash == std::string::npos || slash + 1 >= content_range.size() ||
      content_range[slash + 1] < '0' || content_range[slash + 1] > '9') {
    return std::nullopt;
  }
  return std::strtoull(content_range.c_str() + slash + 1, nullptr, 10);
}

}  // namespace

FileDownloader::FileDownloader(HttpClient* http, TokenSource* tokens, LinkSource* links,
                               Display* display, const Interrupt* interrupt, DownloadPolicy policy)
    : http_(http),
      tokens_(tokens),
      links_(links),
      display_(display),
      interrupt_(interrupt),
      policy_(policy) {}

FileOutcome FileDownloader::Download(const FileJob& job) {
  FileOutcome out(job);

  // Complete from an earlier run: check it again, from disk.
  if (access(job.path.c_str(), F_OK) == 0) {
    Fd fd(open(job.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      out.status = Errno("open " + job.path);
      return out;
    }
    auto size = Scan(fd.get(), &out.validation, job.path);
    if (!size.ok()) {
      out.status = size.status();
      return out;
    }
    out.validation.Finish();
    out.bytes = *size;
    out.from_earlier_run = true;
    return out;
  }

  const std::string part = job.path + ".part";
  // Health data: readable by the owner only.
  Fd fd(open(part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    out.status = Errno("open " + part);
    return out;
  }
  auto kept = Scan(fd.get(), &out.validation, part);  // leaves the offset at the end
  if (!kept.ok()) {
    out.status = kept.status();
    return out;
  }
  uint64_t offset = *kept;
  out.resumed_from = offset;
  const int handle = display_->FileStarted(job.name, job.item.count);
  display_->FileProgress(handle, offset, out.validation.lines());
  if (offset > 0) {
    display_->Log(job.name + ": resuming after " + Progress::Bytes(offset) + " from earlier");
  }

  auto link = links_->Current(job);
  std::string url = link.ok() ? *link : "";
  if (!link.ok()) out.status = link.status();

  Backoff backoff;
  int failures = 0, throttled = 0;
  bool token_renewed = false, link_refreshed = false, done = false;
  while (out.status.ok() && !done) {
    if (interrupt_ != nullptr && interrupt_->triggered()) {
      out.status = Status::Aborted("interrupted");
      break;
    }
    Request req;
    req.url = url;
    req.follow_redirects = true;
    req.headers.push_back("Accept: application/fhir+ndjson");
    std::string token;
    if (job.send_token && tokens_ != nullptr) {
      auto t = tokens_->Get();
      if (!t.ok()) {
        out.status = t.status();
        break;
      }
      token = std::move(t).value();
      req.headers.push_back("Authorization: Bearer " + token);
    }
    const bool ranged = offset > 0;
    const uint64_t asked = offset;
    if (ranged) req.headers.push_back("Range: bytes=" + std::to_string(offset) + "-");
    req.accept_gzip = !ranged && policy_.accept_gzip;

    bool first_chunk = true, other_range = false;
    auto sink = [&](const Response& head, std::string_view chunk) -> Status {
      if (first_chunk) {
        first_chunk = false;
        // This link and token work: a later failure may refresh either once more.
        link_refreshed = token_renewed = false;
        if (ranged && head.status == 206) {
          if (RangeStart(head.Header("content-range")) != asked) {
            other_range = true;
            return Status::Unavailable("a 206 for another range than asked for");
          }
        } else if (ranged) {  // the whole file instead of the rest
          FHIRBULK_RETURN_IF_ERROR(Truncate(fd.get(), part));
          out.validation.Reset();
          offset = 0;
        }
      }
      FHIRBULK_RETURN_IF_ERROR(WriteAll(fd.get(), chunk, part));
      out.validation.Feed(chunk);
      offset += chunk.size();
      display_->FileProgress(handle, offset, out.validation.lines());
      return Status::OK();
    };
    out.requests++;
    auto res = http_->Stream(req, sink);

    Status failure;  // set when another attempt may succeed
    std::optional<int64_t> retry_after;
    if (!res.ok()) {
      if (res.status().code() != Status::Code::kUnavailable) {
        out.status = res.status();  // interrupted, local I/O, a bad URL
        break;
      }
      failure = res.status();
      if (other_range) {
        Status s = Truncate(fd.get(), part);
        if (!s.ok()) {
          out.status = s;
          break;
        }
        out.validation.Reset();
        offset = 0;
      }
    } else {
      out.wire_bytes += res->wire_bytes;
      const long code = res->status;
      if (code >= 200 && code < 300) {
        if (ranged && code != 206 && first_chunk) {  // an empty 200 to a range request
          out.status = Truncate(fd.get(), part);
          out.validation.Reset();
          offset = 0;
        }
        done = true;
        continue;
      }
      const std::string what = "GET " + job.name;
      if (code == 416 && ranged) {
        if (RangeTotal(res->Header("content-range")) == offset) {
          done = true;  // the earlier attempt got it all
          continue;
        }
        out.status = Truncate(fd.get(), part);
        out.validation.Reset();
        offset = 0;
        failure = Status::Unavailable("416: the partial file is longer than the file");
      } else if (code == 401 && !token.empty() && !token_renewed) {
        tokens_->Invalidate(token);  // revoked or expired early: one fresh token
        token_renewed = true;
        continue;
      } else if (((code == 401 || code == 403) && token.empty()) || code == 404 || code == 410) {
        Status refused = HttpStatusToStatus(code, what, res->body);
        if (link_refreshed) {
          out.status = refused;
          break;
        }
        link_refreshed = true;
        auto fresh = links_->Refresh(job, url);
        if (!fresh.ok()) {
          out.status = refused;
          break;
        }
        display_->Log(job.name + ": HTTP " + std::to_string(code) +
                      "; retrying with the link of a re-fetched manifest");
        url = std::move(fresh).value();
        continue;
      } else if (code == 429) {
        if (++throttled > kMaxThrottled) {
          out.status = HttpStatusToStatus(code, what, res->body);
          break;
        }
        retry_after = ParseRetryAfter(res->Header("retry-after"), NowMicros());
        double wait = backoff.Next(retry_after);
        display_->Log(job.name + ": the server asks to slow down (429); waiting " +
                      Display::Seconds(wait));
        if (interrupt_ != nullptr && !interrupt_->SleepFor(wait)) {
          out.status = Status::Aborted("interrupted");
        }
        continue;
      } else if (code == 408 || code >= 500) {
        retry_after = ParseRetryAfter(res->Header("retry-after"), NowMicros());
        failure = HttpStatusToStatus(code, what, res->body);
      } else {
        out.status = HttpStatusToStatus(code, what, res->body);
        break;
      }
    }
    if (!out.status.ok()) break;
    if (++failures > policy_.retries) {
      out.status = failure.WithContext(job.name + ": gave up after " + std::to_string(failures) +
                                       " attempts");
      break;
    }
    double wait = backoff.Next(retry_after);
    display_->Warn(job.name + ": " + failure.message() + "; retrying in " + Display::Seconds(wait) +
                   (offset > 0 ? " from byte " + std::to_string(offset) : ""));
    if (interrupt_ != nullptr && !interrupt_->SleepFor(wait)) {
      out.status = Status::Aborted("interrupted");
    }
  }

  out.bytes = offset;
  if (out.status.ok()) {
    out.validation.Finish();
    // Under its final name only once whole and on disk.
    if (fdatasync(fd.get()) != 0) {
      out.status = Errno("fsync " + part);
    } else if (std::rename(part.c_str(), job.path.c_str()) != 0) {
      out.status = Errno("rename " + part);
    }
  }
  display_->FileDone(handle, out.status.ok());
  return out;
}

}  // namespace client
}  // namespace fhirbulk
