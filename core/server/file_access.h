// FileAccess: who may download "<export_dir>/<job id>/<file>" (served by the module with
// sendfile), decided with no database access so any node or edge nginx can serve files.
//
//  - A request whose query carries `signature` is judged by the signed URL alone
//    (auth/signed_url.h): valid and unexpired, or 403. Without a URL key configured, 403.
//  - Otherwise, with authorization on: a valid bearer token (401 otherwise) of the client that
//    owns the job — the ".owner" file the planner writes into the job directory — or 404 as if
//    the file did not exist; and scopes that allow reading the file's type (403).
//  - With authorization on but only a URL key (an edge serving signed URLs), anything else
//    is 401.
//  - With authorization off, everyone is "anonymous" and may download.
// Downloads are recorded in the audit trail (AuditDownload) when a database is configured.
// Owners are remembered per process once read: a job's owner never changes and job ids are
// never reused, and a file of a cancelled or deleted job is refused by the module (cancel
// marker, see server.cc) or gone, so a remembered owner can only let through a request whose
// file then fails to open (404). The owner file is opened without following a symbolic link.
//
// Verified bearer tokens are remembered per process too (auth/token_cache.h: exact, expiry
// checked on every hit); the owner and the scopes are checked on every request.
//
// Thread-safety: safe for concurrent use (the owner memo and the token cache are locked).

#ifndef FHIRBULK_SERVER_FILE_ACCESS_H_
#define FHIRBULK_SERVER_FILE_ACCESS_H_

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "auth/access_token.h"
#include "auth/audit.h"
#include "auth/key_ring.h"
#include "auth/token_cache.h"
#include "fhirbulk/defaults.h"
#include "http/http.h"
#include "util/mutex.h"
#include "util/status.h"

namespace fhirbulk {

struct FileAccessOptions {
  bool auth_enabled = FHIRBULK_DEFAULT_AUTH;
  std::string token_key_file;       // with auth_enabled: this or a URL key is required
  std::string signed_url_key_file;  // optional: accept signed URLs
  std::string export_dir;
  std::string conninfo;  // optional: audit trail
  // The configured access-token lifetime: a token with a longer exp - iat is refused.
  int token_lifetime_seconds = FHIRBULK_DEFAULT_TOKEN_LIFETIME;
};

// The path below a files location that may name an export file: "<job id>/<file name>", a
// job id (export/job_dir.h IsValidJobId) and the name of an output file the workers write
// (ParseExportFileName: "<Type>.<unit>.<seq>.ndjson", no ".gz" twin or temporary, the type
// letters and digits only). On success the two parts are views into rel. The module calls
// this (fhirbulk_files_split_path) before it builds a path, so nothing else is reachable.
bool SplitExportFilePath(std::string_view rel, std::string_view* job_id,
                         std::string_view* file_name);

class FileAccess {
 public:
  static Result<std::unique_ptr<FileAccess>> Create(FileAccessOptions options);

  // True when the download may go ahead; *client is then who downloads. Otherwise *denial is
  // the answer (401/403/404 with an OperationOutcome) and *client whoever was identified.
  bool Authorize(std::string_view job_id, std::string_view file_name,
                 std::string_view authorization, std::string_view query, std::string* client,
                 HttpResponse* denial) const;

  void AuditDownload(std::string client, std::string target, int status, std::string remote_addr,
                     std::string detail) const;

 private:
  explicit FileAccess(FileAccessOptions options) : options_(std::move(options)) {}
  std::string OwnerOf(std::string_view job_id) const EXCLUDES(owners_mu_);
  std::string ReadOwnerFile(std::string_view job_id) const;

  FileAccessOptions options_;
  mutable Mutex owners_mu_;
  mutable std::unordered_map<std::string, std::string> owners_  // job id -> client id
      GUARDED_BY(owners_mu_);
  std::shared_ptr<const KeyRing> token_keys_;
  std::unique_ptr<AccessTokenCache> token_cache_;  // with token_keys_
  std::shared_ptr<const KeyRing> url_keys_;
  AuditLog* audit_ = nullptr;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_SERVER_FILE_ACCESS_H_
