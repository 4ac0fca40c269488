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
#include "client/retry.h"
#include "client/token_source.h"
#include "util/errno_text.h"
#include "util/progress.h"

namespace fhirbulk {
namespace client {

namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(-1); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset(int fd) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

Status Errno(const std::string& what) { return Status::IOError(what + ": " + ErrnoText(errno)); }

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

// One file's download: the ".part" file it grows (and what the validator has seen of it),
// the link it uses, and the remedies it has left (a fresh token, a fresh link: once each
// until data flows again).
class Transfer {
 public:
  Transfer(const FileJob& job, FileOutcome* out, HttpClient* http, TokenSource* tokens,
           LinkSource* links, Display* display, const DownloadPolicy& policy)
      : job_(job),
        out_(out),
        http_(http),
        tokens_(tokens),
        links_(links),
        display_(display),
        policy_(policy),
        part_(job.path + ".part") {}

  // Opens the ".part" (new, or what an earlier attempt or run left), validates what it
  // holds, and shows the file on the display.
  Status Open();
  // Fetches the rest of the file into the ".part", retrying as policy says.
  Status Run(const Interrupt* interrupt);
  // The file is whole: validation finished, the data on disk, under its final name.
  Status Commit();

  uint64_t size() const { return size_; }
  int handle() const { return handle_; }

 private:
  // One request for the bytes from size_ on (the whole file when size_ is 0).
  Attempt Once();
  // HttpClient's sink: appends a chunk of a 2xx body, checking the first one's range.
  Status Receive(const Response& head, std::string_view chunk, uint64_t asked);
  // What a complete answer to a request for the bytes from `asked` on means.
  Attempt Answer(const Response& res, uint64_t asked, const std::string& token);
  // A link refused as if expired: asks for the file's link in a re-fetched manifest, once.
  Attempt RefreshLink(long code, Status refused);
  // Empties the ".part": what it held is not a prefix of the file.
  Status StartOver();

  const FileJob& job_;
  FileOutcome* out_;
  HttpClient* http_;
  TokenSource* tokens_;
  LinkSource* links_;
  Display* display_;
  const DownloadPolicy& policy_;
  const std::string part_;
  Fd fd_{-1};
  uint64_t size_ = 0;  // bytes in the ".part", all fed to out_->validation
  int handle_ = -1;    // the display's
  std::string url_;
  bool received_ = false;     // the current request's answer has delivered data
  bool other_range_ = false;  // ... for another range than asked for
  bool token_renewed_ = false, link_refreshed_ = false;
};

Status Transfer::Open() {
  // Health data: readable by the owner only.
  fd_.reset(open(part_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (fd_.get() < 0) return Errno("open " + part_);
  auto kept = Scan(fd_.get(), &out_->validation, part_);  // leaves the offset at the end
  if (!kept.ok()) return kept.status();
  size_ = *kept;
  out_->resumed_from = size_;
  handle_ = display_->FileStarted(job_.name, job_.item.count);
  display_->FileProgress(handle_, size_, out_->validation.lines());
  if (size_ > 0) {
    display_->Log(job_.name + ": resuming after " + Progress::Bytes(size_) + " from earlier");
  }
  return Status::OK();
}

Status Transfer::Run(const Interrupt* interrupt) {
  auto link = links_->Current(job_);
  if (!link.ok()) return link.status();
  url_ = std::move(link).value();
  RetryLoop retry(policy_.retry, interrupt);
  auto note = [this](const Attempt& a, double wait) {
    if (a.kind == Attempt::Kind::kThrottled) {
      display_->Log(job_.name + ": the server asks to slow down (429); waiting " +
                    Display::Seconds(wait));
    } else {
      display_->Warn(job_.name + ": " + a.status.message() + "; retrying in " +
                     Display::Seconds(wait) +
                     (size_ > 0 ? " from byte " + std::to_string(size_) : ""));
    }
  };
  return retry.Run([this] { return Once(); }, note);
}

Attempt Transfer::Once() {
  Request req;
  req.url = url_;
  req.follow_redirects = true;
  req.headers.push_back("Accept: application/fhir+ndjson");
  std::string token;
  if (job_.send_token && tokens_ != nullptr) {
    auto t = tokens_->Get();
    if (!t.ok()) return Attempt::Done(t.status());
    token = std::move(t).value();
    req.headers.push_back("Authorization: Bearer " + token);
  }
  const uint64_t asked = size_;
  if (asked > 0) req.headers.push_back("Range: bytes=" + std::to_string(asked) + "-");
  // A resumed request asks for the identity encoding: the range counts stored bytes.
  req.accept_gzip = asked == 0 && policy_.accept_gzip;
  received_ = other_range_ = false;
  out_->requests++;
  auto res = http_->Stream(req, [this, asked](const Response& head, std::string_view chunk) {
    return Receive(head, chunk, asked);
  });
  if (!res.ok()) {
    if (other_range_) {
      Status s = StartOver();
      if (!s.ok()) return Attempt::Done(s);
    }
    return AttemptForError(res.status());  // the network's: retried; else interrupted, I/O
  }
  out_->wire_bytes += res->wire_bytes;
  return Answer(*res, asked, token);
}

Status Transfer::Receive(const Response& head, std::string_view chunk, uint64_t asked) {
  if (!received_) {
    received_ = true;
    // This link and token work: a later failure may refresh either once more.
    link_refreshed_ = token_renewed_ = false;
    if (asked > 0 && head.status == 206) {
      if (RangeStart(head.Header("content-range")) != asked) {
        other_range_ = true;
        return Status::Unavailable("a 206 for another range than asked for");
      }
    } else if (asked > 0) {  // the whole file instead of the rest
      FHIRBULK_RETURN_IF_ERROR(StartOver());
    }
  }
  FHIRBULK_RETURN_IF_ERROR(WriteAll(fd_.get(), chunk, part_));
  out_->validation.Feed(chunk);
  size_ += chunk.size();
  display_->FileProgress(handle_, size_, out_->validation.lines());
  return Status::OK();
}

Attempt Transfer::Answer(const Response& res, uint64_t asked, const std::string& token) {
  const long code = res.status;
  if (code >= 200 && code < 300) {
    // An empty 200 to a range request: the file is empty now.
    if (asked > 0 && code != 206 && !received_) return Attempt::Done(StartOver());
    return Attempt::Done();
  }
  if (code == 416 && asked > 0) {
    // The earlier attempt got it all, or the ".part" is longer than the file.
    if (RangeTotal(res.Header("content-range")) == size_) return Attempt::Done();
    Status s = StartOver();
    if (!s.ok()) return Attempt::Done(s);
    return Attempt::Retry(Status::Unavailable("416: the partial file is longer than the file"));
  }
  if (code == 401 && !token.empty() && !token_renewed_) {
    tokens_->Invalidate(token);  // revoked or expired early: one fresh token
    token_renewed_ = true;
    return Attempt::Again();
  }
  const std::string what = "GET " + job_.name;
  if (((code == 401 || code == 403) && token.empty()) || code == 404 || code == 410) {
    return RefreshLink(code, HttpStatusToStatus(code, what, res.body));
  }
  return AttemptForAnswer(policy_.retry, res, what);
}

Attempt Transfer::RefreshLink(long code, Status refused) {
  if (link_refreshed_) return Attempt::Done(std::move(refused));
  link_refreshed_ = true;
  auto fresh = links_->Refresh(job_, url_);
  if (!fresh.ok()) return Attempt::Done(std::move(refused));
  display_->Log(job_.name + ": HTTP " + std::to_string(code) +
                "; retrying with the link of a re-fetched manifest");
  url_ = std::move(fresh).value();
  return Attempt::Again();
}

Status Transfer::StartOver() {
  if (ftruncate(fd_.get(), 0) != 0 || lseek(fd_.get(), 0, SEEK_SET) < 0) {
    return Errno("truncate " + part_);
  }
  out_->validation.Reset();
  size_ = 0;
  return Status::OK();
}

Status Transfer::Commit() {
  out_->validation.Finish();
  // Under its final name only once whole and on disk.
  if (fdatasync(fd_.get()) != 0) return Errno("fsync " + part_);
  if (std::rename(part_.c_str(), job_.path.c_str()) != 0) return Errno("rename " + part_);
  return Status::OK();
}

// A file complete from an earlier run: checked again, from disk.
FileOutcome CheckEarlierRun(const FileJob& job) {
  FileOutcome out(job);
  out.from_earlier_run = true;
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
  return out;
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
  if (access(job.path.c_str(), F_OK) == 0) return CheckEarlierRun(job);
  FileOutcome out(job);
  Transfer transfer(job, &out, http_, tokens_, links_, display_, policy_);
  out.status = transfer.Open();
  if (!out.status.ok()) return out;
  out.status = transfer.Run(interrupt_);
  out.bytes = transfer.size();
  if (out.status.ok()) out.status = transfer.Commit();
  display_->FileDone(transfer.handle(), out.status.ok());
  return out;
}

}  // namespace client
}  // namespace fhirbulk
