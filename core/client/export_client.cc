#include "client/export_client.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "client/bounded_json.h"
#include "client/display.h"
#include "client/export_summary.h"
#include "client/http_status.h"
#include "client/interrupt.h"
#include "client/retry.h"
#include "client/retry_after.h"
#include "client/signing_key.h"
#include "client/token_source.h"
#include "util/errno_text.h"
#include "util/fhir_time.h"
#include "util/progress.h"

namespace fhirbulk {
namespace client {

namespace fs = std::filesystem;

namespace {

constexpr const char* kJobFile = "job.json";
constexpr const char* kLockFile = ".lock";

std::string Join(const std::vector<std::string>& items, const std::string& sep,
                 std::string (*f)(std::string_view) = nullptr) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += f != nullptr ? f(items[i]) : items[i];
  }
  return out;
}

std::string StripSlashes(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

bool IsFhirId(const std::string& id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  });
}

bool IsTypeName(const std::string& t) {
  return !t.empty() && std::isupper(static_cast<unsigned char>(t[0])) &&
         std::all_of(t.begin(), t.end(),
                     [](char c) { return std::isalpha(static_cast<unsigned char>(c)); });
}

// A manifest type as a file name part: letters and digits kept, anything else '_'.
std::string SafeName(const std::string& type) {
  std::string out;
  for (char c : type) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out.empty() ? "file" : out;
}

// X-Progress is free text from the server: printable ASCII, at most 100 characters.
std::string CleanProgress(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (out.size() == 100) break;
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return out;
}

// Owner-only, like the data: a manifest of signed links is as good as a token.
Status WriteFileAtomic(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError("cannot write " + tmp + ": " + ErrnoText(errno));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = Status::IOError("write " + tmp + ": " + ErrnoText(errno));
      close(fd);
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (close(fd) != 0 || std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::IOError("write " + path + ": " + ErrnoText(errno));
  }
  return Status::OK();
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// job.json: what --status needs to resume, and where the export came from.
std::string JobJson(const std::string& status_url, const std::string& kickoff) {
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("statusUrl");
  w.String(status_url);
  if (!kickoff.empty()) {
    w.Key("kickoff");
    w.String(kickoff);
    w.Key("acceptedAt");
    w.String(FormatInstant(NowMicros() / 1000 * 1000));
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

}  // namespace

int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case Status::Code::kOk:
      return kExportOk;
    case Status::Code::kUnauthenticated:
    case Status::Code::kPermissionDenied:
      return kExportAuthFailed;
    case Status::Code::kCorruption:
      return kExportInvalidData;
    case Status::Code::kAborted:
      return kExportInterrupted;
    case Status::Code::kIOError:
      return kExportFailed;
    case Status::Code::kInvalidArgument:
      return kExportUsage;
    default:
      return kExportServerError;
  }
}

Status ValidateOptions(const ExportOptions& o, bool for_cancel) {
  if (o.out_dir.empty() && !for_cancel) return Status::InvalidArgument("--out DIR is required");
  if (!o.status_url.empty() && !IsHttpUrl(o.status_url)) {
    return Status::InvalidArgument("--status wants an http(s) URL");
  }
  if (o.status_url.empty() && !IsHttpUrl(o.fhir_base)) {
    return Status::InvalidArgument("--fhir-url wants the server's http(s) FHIR base URL");
  }
  if (!o.fhir_base.empty() && !IsHttpUrl(o.fhir_base)) {
    return Status::InvalidArgument("--fhir-url wants an http(s) URL");
  }
  if (o.level == ExportLevel::kGroup && !IsFhirId(o.group_id)) {
    return Status::InvalidArgument("--group wants a Group id");
  }
  for (const std::string& t : o.types) {
    if (!IsTypeName(t)) return Status::InvalidArgument("--type: '" + t + "' is not a type");
  }
  for (const std::string& e : o.elements) {
    if (e.empty()) return Status::InvalidArgument("--elements: an empty element");
  }
  for (const std::string& f : o.type_filters) {
    size_t q = f.find('?');
    if (q == std::string::npos || !IsTypeName(f.substr(0, q))) {
      return Status::InvalidArgument("--type-filter wants Type?query, got '" + f + "'");
    }
  }
  if (!o.organize_output_by.empty() && !IsTypeName(o.organize_output_by)) {
    return Status::InvalidArgument("--organize-output-by wants a resource type (Patient)");
  }
  for (const std::string& c : o.include_associated_data) {
    if (c.empty()) return Status::InvalidArgument("--include-associated-data: an empty code");
  }
  for (const std::string& p : o.patients) {
    if (p.rfind("Patient/", 0) != 0 || !IsFhirId(p.substr(8))) {
      return Status::InvalidArgument("--patient-ref wants Patient/ID, got '" + p + "'");
    }
  }
  for (const auto& [flag, value] :
       {std::pair<const char*, const std::string&>{"--since", o.since}, {"--until", o.until}}) {
    if (!value.empty() && !ParseInstant(value).ok()) {
      return Status::InvalidArgument(std::string(flag) +
                                     " wants a FHIR instant, e.g. 2024-01-01T00:00:00Z");
    }
  }
  if (o.parallel < 1 || o.parallel > 64) {
    return Status::InvalidArgument("--parallel wants 1 to 64");
  }
  if (o.retries < 0 || o.retries > 100) return Status::InvalidArgument("--retries wants 0 to 100");
  if (o.client_id.empty() != o.key_file.empty()) {
    return Status::InvalidArgument("--client-id and --key go together");
  }
  if (!o.client_id.empty() && o.token_url.empty() && o.fhir_base.empty()) {
    return Status::InvalidArgument(
        "give --fhir-url (to discover the token endpoint) or "
        "--token-url");
  }
  if (!o.token_url.empty() && !IsHttpUrl(o.token_url)) {
    return Status::InvalidArgument("--token-url wants an http(s) URL");
  }
  return Status::OK();
}

KickoffRequest BuildKickoff(const ExportOptions& o) {
  KickoffRequest k;
  k.url = StripSlashes(o.fhir_base);
  switch (o.level) {
    case ExportLevel::kSystem:
      k.url += "/$export";
      break;
    case ExportLevel::kPatient:
      k.url += "/Patient/$export";
      break;
    case ExportLevel::kGroup:
      k.url += "/Group/" + PercentEncode(o.group_id) + "/$export";
      break;
  }
  // `patient` exists only in POST (IG §2.3).
  if (o.post || !o.patients.empty()) {
    k.method = "POST";
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    auto param = [&w](const char* name, const char* value_type, const std::string& value) {
      w.StartObject();
      w.Key("name");
      w.String(name);
      w.Key(value_type);
      w.String(value);
      w.EndObject();
    };
    w.StartObject();
    w.Key("resourceType");
    w.String("Parameters");
    w.Key("parameter");
    w.StartArray();
    // Repeated parameters: v2 servers SHALL read them as one comma list, v4 wants them so.
    for (const auto& t : o.types) param("_type", "valueString", t);
    if (!o.since.empty()) param("_since", "valueInstant", o.since);
    if (!o.until.empty()) param("_until", "valueInstant", o.until);
    for (const auto& e : o.elements) param("_elements", "valueString", e);
    for (const auto& f : o.type_filters) param("_typeFilter", "valueString", f);
    if (o.allow_partial_manifests) {
      w.StartObject();
      w.Key("name");
      w.String("allowPartialManifests");
      w.Key("valueBoolean");
      w.Bool(true);
      w.EndObject();
    }
    if (!o.organize_output_by.empty())
      param("organizeOutputBy", "valueString", o.organize_output_by);
    for (const auto& c : o.include_associated_data) param("includeAssociatedData", "valueCode", c);
    for (const auto& p : o.patients) {
      w.StartObject();
      w.Key("name");
      w.String("patient");
      w.Key("valueReference");
      w.StartObject();
      w.Key("reference");
      w.String(p);
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    k.body.assign(buf.GetString(), buf.GetSize());
    return k;
  }
  k.method = "GET";
  std::vector<std::string> params;
  if (!o.types.empty()) params.push_back("_type=" + Join(o.types, ",", PercentEncode));
  if (!o.since.empty()) params.push_back("_since=" + PercentEncode(o.since));
  if (!o.until.empty()) params.push_back("_until=" + PercentEncode(o.until));
  if (!o.elements.empty()) params.push_back("_elements=" + Join(o.elements, ",", PercentEncode));
  // Each query URL-encoded whole, so its own '&' '=' ',' stay inside it (IG §2.3).
  for (const auto& f : o.type_filters) params.push_back("_typeFilter=" + PercentEncode(f));
  if (o.allow_partial_manifests) params.push_back("allowPartialManifests=true");
  if (!o.organize_output_by.empty()) {
    params.push_back("organizeOutputBy=" + PercentEncode(o.organize_output_by));
  }
  if (!o.include_associated_data.empty()) {
    params.push_back("includeAssociatedData=" +
                     Join(o.include_associated_data, ",", PercentEncode));
  }
  if (!params.empty()) k.url += "?" + Join(params, "&");
  return k;
}

ExportClient::ExportClient(ExportOptions options, Display* display, Interrupt* interrupt)
    : options_(std::move(options)),
      display_(display),
      interrupt_(interrupt),
      http_([this] {
        HttpOptions h = options_.http;
        h.interrupt = interrupt_;
        return h;
      }()),
      status_url_(options_.status_url) {
  options_.http.interrupt = interrupt_;
}

ExportClient::~ExportClient() {
  if (lock_fd_ >= 0) close(lock_fd_);
}

Status ExportClient::PrepareOutDir() {
  const std::string& dir = options_.out_dir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create " + dir + ": " + ec.message());
  lock_fd_ = open((dir + "/" + kLockFile).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return Status::IOError("cannot write in " + dir + ": " + ErrnoText(errno));
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return Status::IOError("another fhir-bulk export is using " + dir);
  }
  std::string recorded;
  if (fs::exists(dir + "/" + kJobFile)) {
    auto text = ReadFile(dir + "/" + kJobFile);
    if (!text.ok()) return text.status();
    rapidjson::Document doc;
    if (ParseBoundedJson(*text, &doc) && doc.IsObject() && doc.HasMember("statusUrl") &&
        doc["statusUrl"].IsString()) {
      recorded = doc["statusUrl"].GetString();
    }
    if (recorded.empty()) return Status::InvalidArgument(dir + "/" + kJobFile + " is unreadable");
  }
  if (!recorded.empty() && options_.status_url.empty()) {
    return Status::InvalidArgument(dir + " holds the export " + recorded +
                                   ": resume it with --status, or use another directory");
  }
  if (!recorded.empty() && recorded != options_.status_url) {
    return Status::InvalidArgument(dir + " holds another export (" + recorded + ")");
  }
  if (recorded.empty()) {
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.path().filename() != kLockFile) {
        return Status::InvalidArgument(dir +
                                       " is not empty; exports go to a directory of "
                                       "their own");
      }
    }
  }
  return Status::OK();
}

Status ExportClient::SetUpAuth() {
  if (options_.client_id.empty()) return Status::OK();
  auto key = SigningKey::LoadFile(options_.key_file, options_.kid);
  if (!key.ok()) return key.status();
  std::string token_url = options_.token_url;
  if (token_url.empty()) {
    RetryLoop retry(RetryPolicy::ForOthers(options_.retries), interrupt_);
    auto found = DiscoverTokenEndpoint(
        &http_, options_.fhir_base, &retry, [this](const Attempt& a, double wait) {
          display_->Warn("SMART configuration: " + a.status.message() + "; retrying in " +
                         Display::Seconds(wait));
        });
    if (!found.ok()) {
      return found.status().code() == Status::Code::kNotFound
                 ? Status::Unauthenticated(found.status().message())
                 : found.status();
    }
    token_url = *found;
    display_->Log("token endpoint " + token_url + " (from the SMART configuration)");
  }
  TokenSourceOptions t;
  t.client_id = options_.client_id;
  t.token_url = token_url;
  t.scope = options_.scope;
  t.retries = options_.retries;
  t.http = options_.http;
  Display* display = display_;
  t.log = [display](const std::string& m) { display->Log(m); };
  tokens_ = std::make_unique<TokenSource>(std::move(key).value(), std::move(t));
  display_->Log("client " + options_.client_id + " signs its assertions with " + options_.key_file);
  auto first = tokens_->Get();  // refused credentials stop the export before it starts
  return first.ok() ? Status::OK() : first.status();
}

Result<std::string> ExportClient::Authorize(Request* req) {
  if (!tokens_) return std::string();
  auto token = tokens_->Get();
  if (!token.ok()) return token.status();
  req->headers.push_back("Authorization: Bearer " + *token);
  return token;
}

Status ExportClient::Kickoff() {
  const KickoffRequest k = BuildKickoff(options_);
  display_->Log("kick-off: " + k.method + " " + k.url);
  const RetryPolicy policy = RetryPolicy::ForKickoff(options_.retries);
  RetryLoop retry(policy, interrupt_);
  bool token_renewed = false;
  auto attempt = [&]() -> Attempt {
    Request req;
    req.method = k.method;
    req.url = k.url;
    req.body = k.body;
    req.headers = {"Accept: application/fhir+json",
                   std::string("Prefer: respond-async") +
                       (options_.lenient ? ", handling=lenient" : "") +
                       (options_.separate_export_status ? ", separate-export-status" : "")};
    if (k.method == "POST") req.headers.push_back("Content-Type: application/fhir+json");
    auto token = Authorize(&req);
    if (!token.ok()) return Attempt::Done(token.status());
    auto res = http_.Fetch(req);
    if (!res.ok()) return AttemptForError(res.status());
    const long code = res->status;
    if (code == 202) return Attempt::Done(Accepted(k, *res));
    if (code == 401 && !token->empty() && !token_renewed) {
      tokens_->Invalidate(*token);
      token_renewed = true;
      return Attempt::Again();
    }
    if (code == 429) {
      // Too many exports of this client running: wait as told; not a failure.
      const std::string why = OutcomeText(res->body);
      return Attempt::Throttled(Status::ResourceExhausted("429" + (why.empty() ? "" : ": " + why)),
                                res->Header("retry-after"));
    }
    if (code >= 200 && code < 300) {
      return Attempt::Done(Status::NotSupported("the server answered the kick-off with " +
                                                std::to_string(code) + ", not 202 Accepted"));
    }
    Attempt a = AttemptForAnswer(policy, *res, "kick-off " + k.url);
    if (a.kind != Attempt::Kind::kDone) return a;
    if (code == 401 && token->empty()) {
      return Attempt::Done(Status::Unauthenticated(
          a.status.message() + "; the server wants authorization (--client-id, --key)"));
    }
    if ((code == 400 || code == 422) && !options_.lenient) {
      return Attempt::Done(Status::NotSupported(
          a.status.message() + "; --lenient asks the server to skip what it does not support"));
    }
    return a;
  };
  auto note = [this](const Attempt& a, double wait) {
    if (a.kind == Attempt::Kind::kThrottled) {
      display_->Log("kick-off refused for now (" + a.status.message() + "); trying again in " +
                    Display::Seconds(wait));
    } else {
      display_->Warn("kick-off: " + a.status.message() + "; retrying in " + Display::Seconds(wait));
    }
  };
  return retry.Run(attempt, note);
}

Status ExportClient::Accepted(const KickoffRequest& k, const Response& res) {
  const std::string location = res.Header("content-location");
  if (location.empty()) {
    return Status::NotSupported("the kick-off was accepted without a Content-Location");
  }
  auto url = ResolveUrl(k.url, location);
  if (!url.ok()) return Status::NotSupported("bad Content-Location: " + location);
  status_url_ = *url;
  FHIRBULK_RETURN_IF_ERROR(WriteFileAtomic(options_.out_dir + "/" + kJobFile,
                                           JobJson(status_url_, k.method + " " + k.url)));
  display_->Log("export accepted; status at " + status_url_);
  return Status::OK();
}

Result<ExportClient::Poll> ExportClient::PollUntilDone(
    const std::string& url, const std::function<bool(const std::string&)>& news) {
  const RetryPolicy policy = RetryPolicy::ForPolling(options_.retries);
  RetryLoop retry(policy, interrupt_);
  bool token_renewed = false;
  std::string progress = "in progress";
  std::optional<Poll> done;
  auto attempt = [&]() -> Attempt {
    Request req;
    req.url = url;
    req.headers = {"Accept: application/json"};
    req.max_body = options_.manifest_limits.max_bytes;  // a 200 carries the manifest
    auto token = Authorize(&req);
    if (!token.ok()) return Attempt::Done(token.status());
    auto res = http_.Fetch(req);
    if (!res.ok()) {
      if (res.status().code() == Status::Code::kResourceExhausted) {
        return Attempt::Done(Status::ResourceExhausted("manifest: " + res.status().message() +
                                                       " (--max-manifest-bytes)"));
      }
      return AttemptForError(res.status());
    }
    if (res->status == 200 && res->HasHeader("x-export-status")) {
      // Prefer: separate-export-status: the request itself succeeded; the job's status is
      // "<code> <reason>" in X-Export-Status.
      const std::string job_status = res->Header("x-export-status");
      long job_code = 0;
      for (char ch : job_status) {
        if (ch < '0' || ch > '9') break;
        job_code = job_code * 10 + (ch - '0');
        if (job_code > 999) break;
      }
      if (job_code < 200 || job_code > 599) {
        return Attempt::Done(
            Status::NotSupported("unreadable X-Export-Status: " + CleanProgress(job_status)));
      }
      res->status = job_code;
    }
    const long code = res->status;
    if (code != 401) token_renewed = false;
    if (code == 200) {
      done = Poll{std::move(res->body), res->Header("expires"), true};
      return Attempt::Done();
    }
    if (code == 202) {
      if (res->HasHeader("x-progress")) progress = CleanProgress(res->Header("x-progress"));
      if (news && !res->body.empty() && news(res->body)) {
        done = Poll{std::move(res->body), res->Header("expires"), false};
        return Attempt::Done();
      }
      return Attempt::Pending(res->Header("retry-after"));
    }
    if (code == 401 && !token->empty() && !token_renewed) {
      tokens_->Invalidate(*token);
      token_renewed = true;
      return Attempt::Again();
    }
    if (code == 404 || code == 410) {
      return Attempt::Done(
          Status::NotFound("no export at " + url + " (cancelled, expired, or another client's)"));
    }
    return AttemptForAnswer(policy, *res, "the export failed");
  };
  const auto start = std::chrono::steady_clock::now();
  auto note = [&](const Attempt& a, double wait) {
    if (a.kind == Attempt::Kind::kRetry) {
      display_->Warn("status: " + a.status.message() + "; polling again in " +
                     Display::Seconds(wait));
      return;
    }
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    display_->SetStatus(
        "export " + progress,
        (a.kind == Attempt::Kind::kThrottled ? "polled too often (429), " : std::string()) +
            "next poll in " + Display::Seconds(wait) + ", waiting for " +
            Progress::Duration(elapsed));
  };
  Status s = retry.Run(attempt, note);
  if (!s.ok()) return s;
  display_->Clear();
  return std::move(*done);
}

Result<ExportClient::Poll> ExportClient::FetchManifestOnce() {
  Request req;
  req.url = status_url_;
  req.headers = {"Accept: application/json"};
  req.max_body = options_.manifest_limits.max_bytes;
  auto token = Authorize(&req);
  if (!token.ok()) return token.status();
  auto res = http_.Fetch(req);
  if (!res.ok()) return res.status();
  if (res->status != 200) return HttpStatusToStatus(res->status, "manifest", res->body);
  return Poll{std::move(res->body), res->Header("expires")};
}

Status ExportClient::UseManifest(const std::string& body, const std::string& expires) {
  auto m = ParseManifest(body, options_.manifest_limits);
  if (!m.ok()) return Status::NotSupported("unusable manifest: " + m.status().message());
  manifest_ = std::move(m).value();
  auto at = ParseHttpDate(expires);
  expires_us_ = at.ok() ? *at : 0;
  return Status::OK();
}

namespace {

const ManifestFile* Find(const Manifest& m, const FileJob& job) {
  const std::vector<ManifestFile>& files = job.section == "output"    ? m.output
                                           : job.section == "deleted" ? m.deleted
                                                                      : m.error;
  return job.index < files.size() && files[job.index].type == job.item.type ? &files[job.index]
                                                                            : nullptr;
}

}  // namespace

Result<std::string> ExportClient::Current(const FileJob& job) {
  MutexLock lock(&mu_);
  if (expires_us_ != 0 && NowMicros() >= expires_us_) {
    // The links may have gone stale: ask for fresh ones (IG: clients MAY re-fetch).
    display_->Log("the manifest's links have expired; fetching it again");
    Status s;
    if (options_.allow_partial_manifests) {
      s = RefetchPages();
    } else {
      auto poll = FetchManifestOnce();
      s = poll.ok() ? UseManifest(poll->body, poll->expires) : poll.status();
    }
    if (!s.ok()) {
      // The server SHOULD NOT delete files mid-download: try the links we have.
      display_->Warn("cannot re-fetch the manifest: " + s.message());
    }
    // Not again for every file: from now on only a refused link asks for fresh ones.
    if (expires_us_ <= NowMicros()) expires_us_ = 0;
  }
  const ManifestFile* f = Find(manifest_, job);
  if (f == nullptr) return Status::NotFound(job.name + " is no longer in the manifest");
  return f->url;
}

Result<std::string> ExportClient::Refresh(const FileJob& job, const std::string& failed_url) {
  MutexLock lock(&mu_);
  const ManifestFile* f = Find(manifest_, job);
  if (f != nullptr && f->url != failed_url) return f->url;  // another thread refreshed it
  if (options_.allow_partial_manifests) {
    FHIRBULK_RETURN_IF_ERROR(RefetchPages());
  } else {
    auto poll = FetchManifestOnce();
    if (!poll.ok()) return poll.status();
    FHIRBULK_RETURN_IF_ERROR(UseManifest(poll->body, poll->expires));
  }
  f = Find(manifest_, job);
  if (f == nullptr || f->url == failed_url) return Status::NotFound("no fresh link");
  return f->url;
}

namespace {

// Appends a page's output and deleted files to *combined (pages list disjoint files; `error`
// is repeated on every page, so it comes from the first one).
void AppendPage(Manifest page, bool first, Manifest* combined) {
  if (first) {
    *combined = std::move(page);
    return;
  }
  for (auto& f : page.output) combined->output.push_back(std::move(f));
  for (auto& f : page.deleted) combined->deleted.push_back(std::move(f));
  combined->next_url = std::move(page.next_url);
}

}  // namespace

Status ExportClient::RefetchPages() {
  // Pages never change but for their links (IG 3.0.0), so the files keep their positions.
  Manifest combined;
  std::string url = status_url_;
  std::string expires;
  for (int page = 0; !url.empty(); ++page) {
    Request req;
    req.url = url;
    req.headers = {"Accept: application/json"};
    req.max_body = options_.manifest_limits.max_bytes;
    auto token = Authorize(&req);
    if (!token.ok()) return token.status();
    auto res = http_.Fetch(req);
    if (!res.ok()) return res.status();
    if ((res->status != 200 && res->status != 202) || res->body.empty()) {
      return HttpStatusToStatus(res->status, "manifest", res->body);
    }
    auto m = ParseManifest(res->body, options_.manifest_limits);
    if (!m.ok()) return Status::NotSupported("unusable manifest: " + m.status().message());
    if (page == 0) expires = res->Header("expires");
    std::string next = m->next_url;
    AppendPage(std::move(m).value(), page == 0, &combined);
    if (combined.output.size() + combined.deleted.size() >=
        manifest_.output.size() + manifest_.deleted.size()) {
      break;  // every file we know of has a fresh link
    }
    if (next.empty()) break;
    auto resolved = ResolveUrl(url, next);
    if (!resolved.ok()) return Status::NotSupported("bad manifest link: " + next);
    url = *resolved;
  }
  combined.next_url.clear();
  manifest_ = std::move(combined);
  auto at = ParseHttpDate(expires);
  expires_us_ = at.ok() ? *at : 0;
  return Status::OK();
}

Status ExportClient::RunPartial(Manifest* combined, std::vector<FileJob>* jobs,
                                std::vector<std::unique_ptr<FileOutcome>>* outcomes) {
  std::string url = status_url_;
  bool page_done = false;  // this page's files are being handled (a page never changes)
  bool first = true;
  int page_no = 1;
  for (;;) {
    // News: a page not seen yet, or a link to the next one.
    auto news = [&](const std::string& body) {
      if (!page_done) return true;
      auto m = ParseManifest(body, options_.manifest_limits);
      return m.ok() && !m->next_url.empty();
    };
    auto poll = PollUntilDone(url, news);
    if (!poll.ok()) return poll.status();
    auto page = ParseManifest(poll->body, options_.manifest_limits);
    if (!page.ok()) return Status::NotSupported("unusable manifest: " + page.status().message());
    const std::string next = page->next_url;
    if (!page_done) {
      FHIRBULK_RETURN_IF_ERROR(WriteFileAtomic(
          options_.out_dir + (page_no == 1 ? std::string("/manifest.json")
                                           : "/manifest-" + std::to_string(page_no) + ".json"),
          poll->body));
      const size_t before = jobs->size();
      {
        MutexLock lock(&mu_);
        AppendPage(std::move(page).value(), first, &manifest_);
        auto at = ParseHttpDate(poll->expires);
        if (first || at.ok()) expires_us_ = at.ok() ? *at : 0;
        *combined = manifest_;
      }
      first = false;
      page_done = true;
      for (const auto& [sub, files] :
           {std::pair<const char*, const std::vector<ManifestFile>*>{"deleted", &combined->deleted},
            {"error", &combined->error}}) {
        if (files->empty()) continue;
        std::error_code ec;
        fs::create_directories(options_.out_dir + "/" + sub, ec);
        if (ec) return Status::IOError("cannot create " + options_.out_dir + "/" + sub);
      }
      // The combined list only grows at the end of each section: earlier files keep their
      // names, the new ones are the jobs not planned yet.
      std::map<std::string, size_t> planned_before;  // files planned so far, per section
      for (size_t i = 0; i < before; ++i) ++planned_before[(*jobs)[i].section];
      std::vector<FileJob> fresh;
      for (FileJob& j : PlanDownloads(*combined)) {
        if (j.index >= planned_before[j.section]) fresh.push_back(std::move(j));
      }
      display_->Log("manifest page " + std::to_string(page_no) + ": " +
                    std::to_string(fresh.size()) + " new file(s)" +
                    (poll->complete ? "" : " (export still running)"));
      auto got = DownloadAll(fresh);
      for (size_t i = 0; i < fresh.size(); ++i) {
        jobs->push_back(std::move(fresh[i]));
        outcomes->push_back(std::move(got[i]));
      }
      if (interrupt_ != nullptr && interrupt_->triggered()) {
        return Status::Aborted("interrupted");
      }
    }
    if (!next.empty()) {
      auto resolved = ResolveUrl(url, next);
      if (!resolved.ok()) return Status::NotSupported("bad manifest link: " + next);
      url = *resolved;
      page_done = false;
      ++page_no;
      continue;
    }
    if (poll->complete) return Status::OK();
  }
}

std::vector<FileJob> ExportClient::PlanDownloads(const Manifest& manifest) const {
  std::vector<FileJob> jobs;
  for (const auto& [section, files] :
       {std::pair<std::string, const std::vector<ManifestFile>*>{"output", &manifest.output},
        {"deleted", &manifest.deleted},
        {"error", &manifest.error}}) {
    std::map<std::string, int> per_type;
    const std::string sub = section == "output" ? "" : section + "/";
    for (size_t i = 0; i < files->size(); ++i) {
      const ManifestFile& f = (*files)[i];
      FileJob job;
      job.section = section;
      job.index = i;
      job.item = f;
      // Files of patient blocks (organizeOutputBy) have no type.
      const std::string base = f.type.empty() ? std::string("blocks") : SafeName(f.type);
      job.name = sub + base + "." + std::to_string(++per_type[f.type]) + ".ndjson";
      job.path = options_.out_dir + "/" + job.name;
      job.send_token = tokens_ != nullptr && manifest.requires_access_token;
      job.max_line_bytes = options_.max_line_bytes;
      jobs.push_back(std::move(job));
    }
  }
  return jobs;
}

std::vector<std::unique_ptr<FileOutcome>> ExportClient::DownloadAll(
    const std::vector<FileJob>& jobs) {
  int64_t total_resources = 0;
  for (const FileJob& job : jobs) {
    if (!job.item.count) {
      total_resources = 0;  // no ETA without every count
      break;
    }
    total_resources += *job.item.count;
  }
  display_->BeginDownloads(static_cast<int>(jobs.size()), total_resources);
  std::vector<std::unique_ptr<FileOutcome>> outcomes(jobs.size());
  std::atomic<size_t> next{0};
  DownloadPolicy policy;
  policy.retry = RetryPolicy::ForOthers(options_.retries);
  policy.accept_gzip = options_.accept_gzip;
  auto work = [&] {
    HttpClient http(options_.http);
    FileDownloader downloader(&http, tokens_.get(), this, display_, interrupt_, policy);
    for (size_t i = next++; i < jobs.size(); i = next++) {
      if (interrupt_ != nullptr && interrupt_->triggered()) break;
      const FileJob& job = jobs[i];
      auto out = std::make_unique<FileOutcome>(downloader.Download(job));
      if (out->status.ok()) {
        const int64_t n = out->validation.lines();
        std::string line = job.name + ": " + Progress::Thousands(n) +
                           (n == 1 ? " line, " : " lines, ") + Progress::Bytes(out->bytes);
        if (out->from_earlier_run) {
          line += " (downloaded earlier)";
        } else if (out->resumed_from > 0) {
          line += " (resumed after " + Progress::Bytes(out->resumed_from) + ")";
        }
        display_->Detail(line);
        if (out->validation.error_count() > 0) {
          const ValidationIssue& first = out->validation.issues().front();
          display_->Warn(job.name + ": " + std::to_string(out->validation.error_count()) +
                         " validation error(s); " +
                         (first.line > 0 ? "line " + std::to_string(first.line) + ": " : "") +
                         first.message);
        }
      } else if (out->status.code() != Status::Code::kAborted) {
        display_->Warn(job.name + " not downloaded: " + out->status.message());
      }
      outcomes[i] = std::move(out);
    }
  };
  std::vector<std::thread> threads;
  const size_t n_threads = std::min<size_t>(static_cast<size_t>(options_.parallel), jobs.size());
  for (size_t i = 0; i < n_threads; ++i) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  display_->EndDownloads();
  return outcomes;
}

Status ExportClient::Run() {
  using Clock = std::chrono::steady_clock;
  auto seconds_since = [](Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  };
  ExportTimes times;
  times.started_at_us = NowMicros();
  const auto t0 = Clock::now();
  FHIRBULK_RETURN_IF_ERROR(ValidateOptions(options_));
  FHIRBULK_RETURN_IF_ERROR(PrepareOutDir());
  FHIRBULK_RETURN_IF_ERROR(SetUpAuth());
  const bool kicked_off = status_url_.empty();
  if (kicked_off) {
    FHIRBULK_RETURN_IF_ERROR(Kickoff());
  } else {
    display_->Log("resuming the export at " + status_url_);
    if (!fs::exists(options_.out_dir + "/" + kJobFile)) {
      FHIRBULK_RETURN_IF_ERROR(
          WriteFileAtomic(options_.out_dir + "/" + kJobFile, JobJson(status_url_, "")));
    }
  }
  if (options_.allow_partial_manifests) {
    Manifest combined;
    std::vector<FileJob> jobs;
    std::vector<std::unique_ptr<FileOutcome>> outcomes;
    const auto t_download = Clock::now();
    Status s = RunPartial(&combined, &jobs, &outcomes);
    if (kicked_off) times.export_seconds = seconds_since(t0);
    times.download_seconds = seconds_since(t_download);
    if (!s.ok() && s.code() != Status::Code::kAborted) return s;
    ExportSummary summary(combined, status_url_, jobs, outcomes);
    Status result = summary.status();
    if (result.code() == Status::Code::kAborted || s.code() == Status::Code::kAborted) {
      return Status::Aborted("interrupted");
    }
    times.total_seconds = seconds_since(t0);
    FHIRBULK_RETURN_IF_ERROR(
        WriteFileAtomic(options_.out_dir + "/summary.json", summary.Json(times)));
    display_->Clear();
    std::fputs(summary.Text(times, options_.out_dir).c_str(), stdout);
    std::fflush(stdout);
    return result;
  }
  auto poll = PollUntilDone(status_url_);
  if (!poll.ok()) return poll.status();
  if (kicked_off) times.export_seconds = seconds_since(t0);
  FHIRBULK_RETURN_IF_ERROR(WriteFileAtomic(options_.out_dir + "/manifest.json", poll->body));
  Manifest manifest;
  {
    MutexLock lock(&mu_);
    FHIRBULK_RETURN_IF_ERROR(UseManifest(poll->body, poll->expires));
    manifest = manifest_;
  }
  display_->Log("export complete (transactionTime " + manifest.transaction_time +
                "): " + std::to_string(manifest.output.size()) + " output, " +
                std::to_string(manifest.deleted.size()) + " deleted, " +
                std::to_string(manifest.error.size()) + " error files" +
                (manifest.requires_access_token ? "" : "; links need no token"));
  for (const auto& [sub, files] :
       {std::pair<const char*, const std::vector<ManifestFile>*>{"deleted", &manifest.deleted},
        {"error", &manifest.error}}) {
    if (files->empty()) continue;
    std::error_code ec;
    fs::create_directories(options_.out_dir + "/" + sub, ec);
    if (ec) return Status::IOError("cannot create " + options_.out_dir + "/" + sub);
  }

  const std::vector<FileJob> jobs = PlanDownloads(manifest);
  const auto t_download = Clock::now();
  const auto outcomes = DownloadAll(jobs);
  times.download_seconds = seconds_since(t_download);

  ExportSummary summary(manifest, status_url_, jobs, outcomes);
  Status result = summary.status();
  if (result.code() == Status::Code::kAborted) return result;
  times.total_seconds = seconds_since(t0);
  FHIRBULK_RETURN_IF_ERROR(
      WriteFileAtomic(options_.out_dir + "/summary.json", summary.Json(times)));
  display_->Clear();
  std::fputs(summary.Text(times, options_.out_dir).c_str(), stdout);
  std::fflush(stdout);
  return result;
}

Status ExportClient::Cancel() {
  if (status_url_.empty()) return Status::InvalidArgument("no export to cancel");
  if (!tokens_) {
    Status s = SetUpAuth();
    if (!s.ok()) return s;
  }
  const RetryPolicy policy = RetryPolicy::ForOthers(options_.retries);
  RetryLoop retry(policy, interrupt_);
  bool token_renewed = false;
  auto attempt = [&]() -> Attempt {
    Request req;
    req.method = "DELETE";
    req.url = status_url_;
    req.headers = {"Accept: application/fhir+json"};
    auto token = Authorize(&req);
    if (!token.ok()) return Attempt::Done(token.status());
    auto res = http_.Fetch(req);
    if (!res.ok()) return AttemptForError(res.status());
    if (res->status >= 200 && res->status < 300) return Attempt::Done();
    if (res->status == 401 && !token->empty() && !token_renewed) {
      tokens_->Invalidate(*token);
      token_renewed = true;
      return Attempt::Again();
    }
    return AttemptForAnswer(policy, *res, "DELETE " + status_url_);
  };
  auto note = [this](const Attempt& a, double wait) {
    display_->Warn("cancel: " + a.status.message() + "; retrying in " + Display::Seconds(wait));
  };
  return retry.Run(attempt, note);
}

}  // namespace client
}  // namespace fhirbulk
