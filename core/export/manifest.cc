#include "export/manifest.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdlib>
#include <tuple>
#include <vector>

#include "export/export_request.h"
#include "util/fhir_time.h"
#include "util/progress.h"

namespace fhirbulk {

namespace {

// Sort key of "<Type>.<unit_no>.<seq>.ndjson"; unparsable names sort last, by name.
struct FileOrder {
  bool parsed = false;
  std::string type;
  long long unit = 0;
  long long seq = 0;
};

bool ParseNumber(std::string_view s, long long* out) {
  if (s.empty() || s.size() > 18) return false;
  long long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

FileOrder OrderOf(const std::string& name) {
  FileOrder o;
  constexpr std::string_view kSuffix = ".ndjson";
  std::string_view n(name);
  if (n.size() <= kSuffix.size() || n.substr(n.size() - kSuffix.size()) != kSuffix) return o;
  n.remove_suffix(kSuffix.size());
  size_t dot2 = n.rfind('.');
  if (dot2 == std::string_view::npos) return o;
  size_t dot1 = n.rfind('.', dot2 - 1);
  if (dot1 == std::string_view::npos || dot1 == 0) return o;
  if (!ParseNumber(n.substr(dot1 + 1, dot2 - dot1 - 1), &o.unit)) return o;
  if (!ParseNumber(n.substr(dot2 + 1), &o.seq)) return o;
  o.type = std::string(n.substr(0, dot1));
  o.parsed = true;
  return o;
}

std::vector<const JobFile*> FilesOfKind(const JobInfo& job, std::string_view kind) {
  std::vector<std::pair<FileOrder, const JobFile*>> keyed;
  for (const JobFile& f : job.files) {
    if (f.kind == kind) keyed.emplace_back(OrderOf(f.file_name), &f);
  }
  std::stable_sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) {
    if (a.first.parsed != b.first.parsed) return a.first.parsed;
    if (!a.first.parsed) return a.second->file_name < b.second->file_name;
    return std::tie(a.second->res_type, a.first.unit, a.first.seq) <
           std::tie(b.second->res_type, b.first.unit, b.first.seq);
  });
  std::vector<const JobFile*> out;
  out.reserve(keyed.size());
  for (const auto& k : keyed) out.push_back(k.second);
  return out;
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// `organized`: organizeOutputBy output (STU3): no `type`, and `continuesInFile` where a block
// goes on in another file.
void WriteFileList(Writer* w, const char* key, const std::vector<const JobFile*>& files,
                   const std::string& url_prefix,
                   const std::function<std::string(const std::string&)>& url_query,
                   bool organized = false) {
  auto url = [&](const std::string& name) {
    return url_query ? url_prefix + name + "?" + url_query(name) : url_prefix + name;
  };
  w->Key(key);
  w->StartArray();
  for (const JobFile* f : files) {
    w->StartObject();
    if (!organized) {
      w->Key("type");
      w->String(f->res_type);
    }
    w->Key("url");
    w->String(url(f->file_name));
    if (organized && !f->continues_in.empty()) {
      w->Key("continuesInFile");
      w->String(url(f->continues_in));
    }
    w->Key("count");
    w->Int64(f->resources);
    w->EndObject();
  }
  w->EndArray();
}

}  // namespace

std::string ManifestJson(const JobInfo& job, const std::string& base_url,
                         bool requires_access_token,
                         const std::function<std::string(const std::string&)>& url_query) {
  return ManifestJson(job, base_url, requires_access_token, url_query, std::string());
}

std::string ManifestJson(const JobInfo& job, const std::string& base_url,
                         bool requires_access_token,
                         const std::function<std::string(const std::string&)>& url_query,
                         const std::string& next_url) {
  std::string base = base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  const std::string url_prefix = base + "/$export-files/" + job.job_id + "/";

  std::vector<const JobFile*> output = FilesOfKind(job, "output");
  std::vector<const JobFile*> deleted = FilesOfKind(job, "deleted");
  std::vector<const JobFile*> errors = FilesOfKind(job, "error");
  auto request = ExportRequestFromJson(job.request_json);
  // `deleted` belongs to _since exports (digest §9.3); an unreadable request falls back to
  // listing whatever deleted files exist.
  const bool list_deleted = request.ok() ? request->since_us.has_value() : !deleted.empty();

  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("transactionTime");
  w.String(FormatInstant(job.transaction_time_us));
  w.Key("request");
  w.String(job.request_url);
  w.Key("requiresAccessToken");
  w.Bool(requires_access_token);
  const bool organized = request.ok() && !request->organize_output_by.empty();
  if (organized) {
    w.Key("outputOrganizedBy");
    w.String(request->organize_output_by);
  }
  WriteFileList(&w, "output", output, url_prefix, url_query, organized);
  if (list_deleted) WriteFileList(&w, "deleted", deleted, url_prefix, url_query);
  WriteFileList(&w, "error", errors, url_prefix, url_query);
  if (!next_url.empty()) {
    w.Key("link");
    w.StartArray();
    w.StartObject();
    w.Key("relation");
    w.String("next");
    w.Key("url");
    w.String(next_url);
    w.EndObject();
    w.EndArray();
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string ProgressText(const JobInfo& job) {
  switch (job.state) {
    case JobState::kAccepted:
      return "queued";
    case JobState::kCancelled:
      return "cancelled";
    case JobState::kFailed:
      return "failed";
    case JobState::kCompleted:
    case JobState::kRunning:
      break;
  }
  const std::string resources =
      Progress::Thousands(static_cast<uint64_t>(std::max<int64_t>(0, job.resources_written))) +
      " resources";
  if (job.state == JobState::kCompleted) return "100%, " + resources;
  if (job.units_total <= 0) return "starting";
  int done = std::clamp(job.units_done, 0, job.units_total);
  int percent = static_cast<int>(static_cast<int64_t>(done) * 100 / job.units_total);
  if (percent > 99) percent = 99;  // 100% only once the job is completed
  return std::to_string(percent) + "% (" + std::to_string(done) + "/" +
         std::to_string(job.units_total) + " parts), " + resources;
}

}  // namespace fhirbulk
