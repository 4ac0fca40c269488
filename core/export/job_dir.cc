#include "export/job_dir.h"

namespace fhirbulk {

namespace {

constexpr std::string_view kTempInfix = ".tmp.";

bool ParseSmallInt(std::string_view s, int* out) {
  if (s.empty() || s.size() > 9) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

std::string JobDirectory(const std::string& export_dir, const std::string& job_id) {
  return export_dir + "/" + job_id;
}

std::string ExportFileNameOf(std::string_view type, int unit_no, int seq) {
  std::string name(type);
  name += "." + std::to_string(unit_no) + "." + std::to_string(seq) + ".ndjson";
  return name;
}

std::string TempFileSuffix(std::string_view worker_id) {
  std::string suffix(kTempInfix);
  suffix.append(worker_id.data(), worker_id.size());
  return suffix;
}

std::string CancelMarkerDirectory(const std::string& export_dir) {
  return export_dir + "/" + std::string(kCancelMarkerDir);
}

std::string CancelledJobDirectory(const std::string& export_dir, std::string_view job_id) {
  return export_dir + "/" + std::string(kCancelledDirPrefix) + std::string(job_id);
}

std::optional<std::string_view> CancelledDirJobId(std::string_view name) {
  if (name.substr(0, kCancelledDirPrefix.size()) != kCancelledDirPrefix) return std::nullopt;
  return name.substr(kCancelledDirPrefix.size());
}

std::optional<ExportFileName> ParseExportFileName(std::string_view name) {
  // <type>.<unit>.<seq>.ndjson[.gz][.tmp.<id>]
  std::string_view parts[3];
  for (std::string_view& part : parts) {
    size_t dot = name.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    part = name.substr(0, dot);
    name.remove_prefix(dot + 1);
  }
  ExportFileName out;
  if (parts[0].empty() || !ParseSmallInt(parts[1], &out.unit_no) ||
      !ParseSmallInt(parts[2], &out.seq)) {
    return std::nullopt;
  }
  constexpr std::string_view kNdjson = "ndjson", kGz = kGzipTwinSuffix, kTmp = kTempInfix;
  if (name.substr(0, kNdjson.size()) != kNdjson) return std::nullopt;
  name.remove_prefix(kNdjson.size());
  if (name.substr(0, kGz.size()) == kGz && (name.size() == kGz.size() || name[kGz.size()] == '.')) {
    out.gzip = true;
    name.remove_prefix(kGz.size());
  }
  if (!name.empty()) {
    if (name.size() <= kTmp.size() || name.substr(0, kTmp.size()) != kTmp) return std::nullopt;
    out.temp = true;
  }
  out.type = std::string(parts[0]);
  return out;
}

}  // namespace fhirbulk
