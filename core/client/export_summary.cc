#include "client/export_summary.h"

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <cstdio>

#include "client/block_links.h"
#include "client/export_client.h"
#include "util/fhir_time.h"
#include "util/progress.h"

namespace fhirbulk {
namespace client {

namespace {

constexpr size_t kMaxProblems = 50;
constexpr size_t kMaxServerIssues = 5;

}  // namespace

ExportSummary::ExportSummary(const Manifest& manifest, std::string status_url,
                             const std::vector<FileJob>& jobs,
                             const std::vector<std::unique_ptr<FileOutcome>>& outcomes)
    : status_url_(std::move(status_url)),
      request_(manifest.request),
      transaction_time_(manifest.transaction_time),
      has_deleted_(!manifest.deleted.empty()),
      files_(jobs.size()) {
  auto problem = [&](const FileJob& job, int64_t line, std::string message) {
    if (problems_.size() < kMaxProblems) {
      problems_.push_back({job.name, job.item.url, line, std::move(message)});
    }
  };
  for (size_t i = 0; i < jobs.size(); ++i) {
    const FileJob& job = jobs[i];
    if (!outcomes[i]) {
      failed_++;
      if (first_failure_.ok()) first_failure_ = Status::Aborted("interrupted");
      continue;
    }
    const FileOutcome& o = *outcomes[i];
    bytes_ += o.bytes;
    wire_bytes_ += o.wire_bytes;
    if (!o.status.ok()) {
      failed_++;
      problem(job, 0, "not downloaded: " + o.status.message());
      // An interruption or a refused token says more than the failures they caused.
      const bool worse = o.status.code() == Status::Code::kAborted ||
                         (ExitCodeFor(o.status) == kExportAuthFailed &&
                          first_failure_.code() != Status::Code::kAborted);
      if (first_failure_.ok() || worse) first_failure_ = o.status;
      continue;
    }
    if (o.validation.error_count() > 0) invalid_files_++;
    validation_errors_ += o.validation.error_count();
    for (const ValidationIssue& issue : o.validation.issues()) {
      problem(job, issue.line, issue.message);
    }
    if (job.section == "output") {
      resources_[job.item.type] += o.validation.good_lines();
      resources_total_ += o.validation.good_lines();
      output_files_[job.item.type]++;
    } else if (job.section == "deleted") {
      deleted_ += o.validation.good_lines();
    } else {
      for (const auto& [severity, n] : o.validation.outcome_severities()) {
        severities_[severity] += n;
      }
      for (const std::string& s : o.validation.outcome_samples()) {
        if (server_issues_.size() < kMaxServerIssues) server_issues_.push_back(s);
      }
    }
  }
  if (manifest.output_organized_by.empty()) return;
  // Patient blocks across files (client/block_links.h): continuesInFile and the headers.
  std::vector<BlockFile> blocks;
  std::vector<size_t> job_of;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (jobs[i].section != "output") continue;
    const FileOutcome* o = outcomes[i].get();
    BlockFile b;
    b.url = jobs[i].item.url;
    b.continues_in_file = jobs[i].item.continues_in_file;
    b.checked = o != nullptr && o->status.ok();
    if (b.checked) {
      b.first_block = o->validation.first_block();
      b.last_block = o->validation.last_block();
    }
    blocks.push_back(std::move(b));
    job_of.push_back(i);
  }
  std::vector<bool> counted(blocks.size(), false);
  for (const BlockLinkIssue& issue : CheckBlockLinks(blocks)) {
    const size_t i = job_of[issue.file];
    validation_errors_++;
    if (!counted[issue.file] && outcomes[i] && outcomes[i]->validation.error_count() == 0) {
      invalid_files_++;
    }
    counted[issue.file] = true;
    problem(jobs[i], 0, issue.message);
  }
}

Status ExportSummary::status() const {
  if (failed_ > 0) {
    if (first_failure_.code() == Status::Code::kAborted) return first_failure_;
    return first_failure_.WithContext(std::to_string(failed_) + " of " + std::to_string(files_) +
                                      " files not downloaded (resume with --status)");
  }
  if (validation_errors_ > 0) {
    return Status::Corruption(std::to_string(validation_errors_) + " validation error(s) in " +
                              std::to_string(invalid_files_) + " file(s)");
  }
  return Status::OK();
}

std::string ExportSummary::Json(const ExportTimes& times) const {
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  auto key_string = [&w](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value);
  };
  auto counts = [&w](const char* key, const std::map<std::string, int64_t>& m) {
    w.Key(key);
    w.StartObject();
    for (const auto& [k, n] : m) {
      w.Key(k);
      w.Int64(n);
    }
    w.EndObject();
  };
  w.StartObject();
  key_string("statusUrl", status_url_);
  key_string("request", request_);
  key_string("transactionTime", transaction_time_);
  key_string("startedAt", FormatInstant(times.started_at_us / 1000 * 1000));
  key_string("finishedAt", FormatInstant(NowMicros() / 1000 * 1000));
  w.Key("seconds");
  w.StartObject();
  if (times.export_seconds >= 0) {
    w.Key("export");
    w.Double(times.export_seconds);
  }
  w.Key("download");
  w.Double(times.download_seconds);
  w.Key("total");
  w.Double(times.total_seconds);
  w.EndObject();
  w.Key("complete");
  w.Bool(failed_ == 0);
  w.Key("files");
  w.Uint64(files_);
  w.Key("bytes");
  w.Uint64(bytes_);
  w.Key("wireBytes");
  w.Uint64(wire_bytes_);
  counts("resources", resources_);
  w.Key("deleted");
  w.Int64(deleted_);
  counts("serverIssues", severities_);
  w.Key("validationErrors");
  w.Int64(validation_errors_);
  w.Key("problems");
  w.StartArray();
  for (const Problem& p : problems_) {
    w.StartObject();
    key_string("file", p.file);
    key_string("url", p.url);
    if (p.line > 0) {
      w.Key("line");
      w.Int64(p.line);
    }
    key_string("message", p.message);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

std::string ExportSummary::Text(const ExportTimes& times, const std::string& out_dir) const {
  std::string out = std::string(failed_ == 0 ? "export complete" : "export INCOMPLETE") + ": " +
                    std::to_string(files_) + " files, " + Progress::Thousands(resources_total_) +
                    " resources, " + Progress::Bytes(bytes_);
  if (wire_bytes_ != bytes_ && wire_bytes_ > 0) {
    out += " (" + Progress::Bytes(wire_bytes_) + " transferred)";
  }
  out += " in " + Progress::Duration(times.total_seconds) + "\n";
  for (const auto& [type, n] : resources_) {
    const int64_t files = output_files_.at(type);
    char line[160];
    std::snprintf(line, sizeof(line), "  %-28s %12s  (%lld file%s)\n", type.c_str(),
                  Progress::Thousands(n).c_str(), static_cast<long long>(files),
                  files == 1 ? "" : "s");
    out += line;
  }
  if (has_deleted_) {
    out += "  deleted: " + Progress::Thousands(deleted_) + " resources (deleted/)\n";
  }
  if (!severities_.empty()) {
    out += "  the server reported";
    for (const auto& [severity, n] : severities_) out += " " + std::to_string(n) + " " + severity;
    out += " (error/):\n";
    for (const std::string& s : server_issues_) out += "    " + s + "\n";
  }
  if (validation_errors_ > 0) {
    out += "  VALIDATION: " + std::to_string(validation_errors_) + " error(s) in " +
           std::to_string(invalid_files_) + " file(s); summary.json lists them\n";
  }
  if (failed_ > 0) out += "  NOT DOWNLOADED: " + std::to_string(failed_) + " file(s)\n";
  out += "  transactionTime " + transaction_time_ + " (the next export's --since)\n";
  out += "  in " + out_dir + " (manifest.json, summary.json)\n";
  return out;
}

}  // namespace client
}  // namespace fhirbulk
