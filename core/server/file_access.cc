#include "server/file_access.h"

#include <fcntl.h>
#include <unistd.h>

#include "auth/access_token.h"
#include "auth/signed_url.h"
#include "export/job_dir.h"
#include "export/job_store.h"
#include "http/outcome.h"
#include "server/access.h"
#include "util/fhir_time.h"

namespace fhirbulk {
namespace {

constexpr size_t kMaxClientId = 256;
constexpr size_t kMaxRememberedOwners = 10000;  // ~1 MB; cleared when full
constexpr size_t kMaxFileName = 128;
constexpr size_t kMaxRememberedTokens = 4096;  // ~2 MB at most (auth/token_cache.h)

HttpResponse NoSuchFile() {
  return OutcomeResponse(404, "not-found",
                         "no such export file (it may have expired or been cancelled)");
}

bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace

bool SplitExportFilePath(std::string_view rel, std::string_view* job_id,
                         std::string_view* file_name) {
  const size_t slash = rel.find('/');
  if (slash == std::string_view::npos) return false;
  const std::string_view job = rel.substr(0, slash);
  const std::string_view file = rel.substr(slash + 1);
  // Workers name files "<Type>.<unit>.<seq>.ndjson": 128 bytes is far beyond any of them.
  if (!IsValidJobId(job) || file.size() > kMaxFileName) return false;
  const auto name = ParseExportFileName(file);
  if (!name || name->gzip || name->temp) return false;
  for (char c : name->type) {
    if (!IsAsciiAlnum(c)) return false;
  }
  *job_id = job;
  *file_name = file;
  return true;
}

Result<std::unique_ptr<FileAccess>> FileAccess::Create(FileAccessOptions options) {
  std::unique_ptr<FileAccess> fa(new FileAccess(std::move(options)));
  const FileAccessOptions& o = fa->options_;
  if (o.auth_enabled && !o.token_key_file.empty()) {
    auto ring = KeyRing::LoadFile(o.token_key_file);
    if (!ring.ok()) return Status::InvalidArgument("token key file: " + ring.status().message());
    fa->token_keys_ = std::make_shared<const KeyRing>(std::move(ring).value());
    fa->token_cache_ = std::make_unique<AccessTokenCache>(fa->token_keys_, o.token_lifetime_seconds,
                                                          kMaxRememberedTokens);
  }
  if (o.auth_enabled && o.token_key_file.empty() && o.signed_url_key_file.empty()) {
    return Status::InvalidArgument(
        "authorization is on but neither a token key file nor a URL key file is set "
        "(fhir_bulk_token_key_file, fhir_bulk_signed_url_key_file)");
  }
  if (!o.signed_url_key_file.empty()) {
    auto ring = KeyRing::LoadFile(o.signed_url_key_file);
    if (!ring.ok()) return Status::InvalidArgument("URL key file: " + ring.status().message());
    fa->url_keys_ = std::make_shared<const KeyRing>(std::move(ring).value());
  }
  if (!o.conninfo.empty()) fa->audit_ = AuditLog::ForConninfo(o.conninfo);
  return fa;
}

std::string FileAccess::OwnerOf(std::string_view job_id) const {
  const std::string key(job_id);
  {
    MutexLock lock(&owners_mu_);
    auto it = owners_.find(key);
    if (it != owners_.end()) return it->second;
  }
  std::string owner = ReadOwnerFile(job_id);
  if (owner.empty()) return owner;  // not planned yet, or gone: ask again next time
  MutexLock lock(&owners_mu_);
  if (owners_.size() >= kMaxRememberedOwners) owners_.clear();
  owners_.emplace(key, owner);
  return owner;
}

std::string FileAccess::ReadOwnerFile(std::string_view job_id) const {
  std::string path =
      options_.export_dir + "/" + std::string(job_id) + "/" + std::string(kJobOwnerFile);
  // A link planted in the job directory must not name another job's owner.
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[kMaxClientId + 1];
  ssize_t n = ::read(fd, buf, sizeof(buf));
  ::close(fd);
  if (n <= 0 || static_cast<size_t>(n) > kMaxClientId) return {};
  return std::string(buf, static_cast<size_t>(n));
}

bool FileAccess::Authorize(std::string_view job_id, std::string_view file_name,
                           std::string_view authorization, std::string_view query,
                           std::string* client, HttpResponse* denial) const {
  const int64_t now = NowMicros() / 1000000;
  if (HasFileSignature(query)) {
    if (url_keys_ == nullptr) {
      *denial = OutcomeResponse(403, "forbidden", "signed file URLs are not accepted here");
      return false;
    }
    auto signed_for = VerifyFileQuery(*url_keys_, job_id, file_name, query, now);
    if (!signed_for.ok()) {
      *denial = OutcomeResponse(403, "forbidden", signed_for.status().message());
      return false;
    }
    *client = std::move(signed_for).value();
    return true;
  }
  if (!options_.auth_enabled) {
    *client = "anonymous";
    return true;
  }
  if (token_keys_ == nullptr) {  // an edge that serves signed URLs only
    *denial = CredentialsRequiredResponse("this server serves export files by signed URL only");
    return false;
  }
  std::string_view token = BearerToken(authorization);
  if (token.empty()) {
    *denial = CredentialsRequiredResponse("a bearer token is required to download export files");
    return false;
  }
  auto verified = token_cache_->Verify(token, now);
  if (!verified.ok()) {
    *denial = StatusResponse(
        Status::Unauthenticated("invalid access token: " + verified.status().message()), 0);
    return false;
  }
  const Principal* principal = verified->get();
  *client = principal->client_id;
  // Another client's file does not exist as far as this client can tell. No owner file (no
  // such job) is "" and matches nobody, not even a token with an empty subject.
  const std::string owner = OwnerOf(job_id);
  if (owner.empty() || owner != principal->client_id) {
    *denial = NoSuchFile();
    return false;
  }
  Status s = AuthorizeFileDownload(principal->scopes, file_name);
  if (s.code() == Status::Code::kNotFound) {
    *denial = NoSuchFile();
    return false;
  }
  if (!s.ok()) {
    *denial = StatusResponse(s, 0);
    return false;
  }
  return true;
}

void FileAccess::AuditDownload(std::string client, std::string target, int status,
                               std::string remote_addr, std::string detail) const {
  if (audit_ == nullptr) return;
  AuditEvent e;
  e.client_id = std::move(client);
  e.action = "download";
  e.target = std::move(target);
  e.result = status;
  e.remote_addr = std::move(remote_addr);
  e.detail = std::move(detail);
  audit_->Submit(std::move(e));
}

}  // namespace fhirbulk
