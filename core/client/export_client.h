// ExportClient: a Bulk Data export from start to finish, as `fhir-bulk export` runs it.
//
//   kick-off (GET, or POST with a Parameters resource; 429 waited out, transient failures
//   retried) ->
//   status polling (Retry-After, seconds or HTTP-date, on 202 and 429; exponential back-off
//   when the server gives none; transient failures and OperationOutcomes retried) ->
//   manifest (saved as manifest.json) ->
//   parallel downloads of output, deleted and error files (file_download.h), re-fetching the
//   manifest when its links have expired ->
//   summary.json and a summary on stdout.
//
// The output directory holds job.json (the status URL: `--status` resumes from it),
// manifest.json, summary.json, <Type>.<n>.ndjson for `output`, deleted/ and error/ for the
// other two sections (n counts the files of a type in manifest order). A directory is used
// for one export only; a lock file keeps two clients out of the same one.
//
// With a client id and key, every request carries a SMART Backend Services bearer token
// (token_source.h) except file downloads when the manifest says requiresAccessToken false.
//
// What is retried, how often and how long it waits: retry.h (ExportOptions::retries is
// every request's RetryPolicy::retries).
//
// Thread-safety: Run() once, from one thread; Cancel() after Run() returned, or instead of it.

#ifndef FHIRBULK_CLIENT_EXPORT_CLIENT_H_
#define FHIRBULK_CLIENT_EXPORT_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/file_download.h"
#include "client/http_client.h"
#include "client/manifest.h"
#include "util/mutex.h"
#include "util/status.h"

namespace fhirbulk {
namespace client {

class Display;
class Interrupt;
class TokenSource;

enum class ExportLevel { kSystem, kPatient, kGroup };

struct ExportOptions {
  std::string fhir_base;  // the FHIR base URL
  ExportLevel level = ExportLevel::kSystem;
  std::string group_id;
  std::vector<std::string> types;         // _type
  std::vector<std::string> elements;      // _elements
  std::vector<std::string> type_filters;  // _typeFilter, one query each
  std::vector<std::string> patients;      // patient (POST only): "Patient/ID"
  std::string since, until;               // FHIR instants
  bool post = false;                      // POST a Parameters resource (implied by patients)
  bool lenient = false;                   // Prefer: handling=lenient
  // IG 3.0.0: allowPartialManifests=true (files are downloaded as partial manifests list
  // them, following `link` pages) and Prefer: separate-export-status (polls answer 200 with
  // the job's status in X-Export-Status).
  bool allow_partial_manifests = false;
  bool separate_export_status = false;
  // IG 3.0.0: organizeOutputBy (files of patient blocks, validated as such) and
  // includeAssociatedData codes.
  std::string organize_output_by;
  std::vector<std::string> include_associated_data;

  std::string status_url;  // resume this export instead of starting one
  std::string out_dir;
  int parallel = 4;
  int retries = 5;  // transient failures in a row before a request is given up (retry.h)
  bool accept_gzip = true;
  // Limits on what the server sends (client/manifest.h, client/ndjson_validator.h): the
  // manifest's size and file count, the longest NDJSON line of a downloaded file.
  ManifestLimits manifest_limits;
  size_t max_line_bytes = NdjsonValidator::kDefaultMaxLineBytes;

  // SMART Backend Services; no client_id: no authorization.
  std::string client_id;
  std::string key_file;
  std::string kid;
  std::string scope = "system/*.read";
  std::string token_url;  // discovered from <fhir_base>/.well-known/smart-configuration

  HttpOptions http;
};

// Exit statuses of `fhir-bulk export`, for scripts.
enum ExitCode {
  kExportOk = 0,
  kExportFailed = 1,       // local trouble: output directory, disk
  kExportUsage = 2,        // bad options or key
  kExportAuthFailed = 3,   // token refused, 401, 403
  kExportServerError = 4,  // kick-off refused, export failed, files unreachable, network
  kExportInvalidData = 5,  // downloaded, but files failed validation (or count mismatch)
  kExportInterrupted = 130,
};

// The exit status for a Run()/Cancel() result.
int ExitCodeFor(const Status& status);

// The options' own consistency (InvalidArgument naming the problem). A cancel needs only
// the status URL and the credentials, no output directory.
Status ValidateOptions(const ExportOptions& options, bool for_cancel = false);

// The kick-off request the options describe: GET URL, or POST URL plus Parameters body.
struct KickoffRequest {
  std::string method;
  std::string url;
  std::string body;
};
KickoffRequest BuildKickoff(const ExportOptions& options);

class ExportClient : private LinkSource {
 public:
  ExportClient(ExportOptions options, Display* display, Interrupt* interrupt);
  ~ExportClient() override;

  // The whole export. OK when every file is downloaded and valid; Corruption when files
  // failed validation (they are kept); otherwise the first thing that stopped it.
  Status Run();

  // DELETE on the status URL (cancels a running export, releases a finished one). Needs only
  // the status URL (and the credentials, if any) of the options.
  Status Cancel();

  // Known once the kick-off was accepted (or from options.status_url).
  const std::string& status_url() const { return status_url_; }

 private:
  struct Poll {
    std::string body;      // the manifest
    std::string expires;   // the Expires header, if any
    bool complete = true;  // false: a partial manifest of a running export
  };
  Status SetUpAuth();
  Status PrepareOutDir();
  Status Kickoff();
  // The kick-off's 202: records the status URL (job.json).
  Status Accepted(const KickoffRequest& k, const Response& res);
  // Polls `url` (the status URL, or a manifest page) until the export is complete. With
  // `news` set, a running export's partial manifest for which news(body) is true ends the
  // polling too (complete = false).
  Result<Poll> PollUntilDone(const std::string& url,
                             const std::function<bool(const std::string&)>& news = nullptr);
  Result<Poll> FetchManifestOnce();
  // allowPartialManifests: polls page after page, downloading each page's files as it comes;
  // *combined gets every page's files (error from the first page: every page repeats it).
  Status RunPartial(Manifest* combined, std::vector<FileJob>* jobs,
                    std::vector<std::unique_ptr<FileOutcome>>* outcomes);
  // allowPartialManifests: every page again, from the status URL (fresh links).
  Status RefetchPages() REQUIRES(mu_);
  // One job per manifest file: <Type>.<n>.ndjson, deleted/..., error/...
  std::vector<FileJob> PlanDownloads(const Manifest& manifest) const;
  // options_.parallel threads; outcomes[i] null when jobs[i] was never tried (interrupted).
  std::vector<std::unique_ptr<FileOutcome>> DownloadAll(const std::vector<FileJob>& jobs);
  // Adds the token (if any) to req; returns the token sent ("" when none).
  Result<std::string> Authorize(Request* req);

  // LinkSource
  Result<std::string> Current(const FileJob& job) override;
  Result<std::string> Refresh(const FileJob& job, const std::string& failed_url) override;
  Status UseManifest(const std::string& body, const std::string& expires) REQUIRES(mu_);

  ExportOptions options_;
  Display* display_;
  Interrupt* interrupt_;
  HttpClient http_;
  std::unique_ptr<TokenSource> tokens_;
  std::string status_url_;
  int lock_fd_ = -1;

  Mutex mu_;  // the current manifest, for the download threads
  Manifest manifest_ GUARDED_BY(mu_);
  int64_t expires_us_ GUARDED_BY(mu_) = 0;  // 0 = no Expires
};

}  // namespace client
}  // namespace fhirbulk

#endif  // FHIRBULK_CLIENT_EXPORT_CLIENT_H_
