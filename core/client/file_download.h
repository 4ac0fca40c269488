// FileDownloader: fetches one file of a manifest to disk, resumably, validating as it goes.
//
// The data goes to "<path>.part" and is renamed to <path> once complete, so a file under its
// final name is always whole (an earlier run's complete files are re-validated from disk,
// not fetched again). A ".part" left by an interrupted attempt or run is resumed with
// `Range: bytes=<size>-`; resumed requests ask for the identity encoding, so the range
// counts the same bytes the file holds (fresh ones accept gzip, decoded on the fly). A 200
// to a range request (the server ignored it) starts the file over; so does a 206 for
// another range.
//
// Failures: network errors, 408, 429, 5xx are retried as DownloadPolicy::retry says
// (retry.h: the server's Retry-After or exponential back-off with jitter; 429 waits do not
// use up the retries); 401 with a token gets one fresh token; 401/403 without a token and
// 404/410 ask the LinkSource for a fresh link once (an expired link, IG §5 / v3 "capability
// URLs"); either remedy may be used again once data has flowed. Anything else ends the
// file's download with a Status. The bearer token is sent only when the job says so
// (requiresAccessToken).
//
// Thread-safety: one FileDownloader per thread (it uses that thread's HttpClient).

#ifndef FHIRBULK_CLIENT_FILE_DOWNLOAD_H_
#define FHIRBULK_CLIENT_FILE_DOWNLOAD_H_

#include <cstdint>
#include <string>

#include "client/manifest.h"
#include "client/ndjson_validator.h"
#include "client/retry.h"
#include "util/status.h"

namespace fhirbulk {
namespace client {

class Display;
class HttpClient;
class Interrupt;
class TokenSource;

struct FileJob {
  std::string section;  // "output", "deleted" or "error"
  size_t index = 0;     // position in that section of the manifest
  ManifestFile item;
  std::string path;  // where the file goes
  std::string name;  // path relative to the output directory, for messages
  bool send_token = false;
  size_t max_line_bytes = NdjsonValidator::kDefaultMaxLineBytes;  // validation's line limit
};

struct FileOutcome {
  explicit FileOutcome(const FileJob& job)
      : validation(job.item.type, job.item.count, 20, job.max_line_bytes) {}

  Status status;              // why the file is not (entirely) on disk, else OK
  uint64_t bytes = 0;         // the file's size on disk
  uint64_t wire_bytes = 0;    // body bytes received by this run (compressed ones when gzip)
  uint64_t resumed_from = 0;  // bytes kept from an earlier attempt or run
  bool from_earlier_run = false;
  int requests = 0;  // requests made for it by this run
  NdjsonValidator validation;
};

// Where a file's link comes from; the export client answers from the latest manifest.
class LinkSource {
 public:
  virtual ~LinkSource() = default;
  // The link to use now (after re-fetching the manifest if its Expires has passed).
  virtual Result<std::string> Current(const FileJob& job) = 0;
  // `failed_url` was refused as if expired: re-fetch the manifest and return the file's new
  // link; NotFound when there is none, or it is the same.
  virtual Result<std::string> Refresh(const FileJob& job, const std::string& failed_url) = 0;
};

struct DownloadPolicy {
  RetryPolicy retry = RetryPolicy::ForOthers(5);
  bool accept_gzip = true;
};

class FileDownloader {
 public:
  // tokens may be null (no authorization); the others must outlive the downloader.
  FileDownloader(HttpClient* http, TokenSource* tokens, LinkSource* links, Display* display,
                 const Interrupt* interrupt, DownloadPolicy policy);

  // Downloads (or resumes, or re-checks) one file; the outcome says what is on disk and, when
  // that is not the whole file, why.
  FileOutcome Download(const FileJob& job);

 private:
  HttpClient* http_;
  TokenSource* tokens_;
  LinkSource* links_;
  Display* display_;
  const Interrupt* interrupt_;
  DownloadPolicy policy_;
};

}  // namespace client
}  // namespace fhirbulk

#endif  // FHIRBULK_CLIENT_FILE_DOWNLOAD_H_
