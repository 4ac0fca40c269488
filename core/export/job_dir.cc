#include "export/job_dir.h"

namespace fhirbulk {

namespace {

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
  constexpr std::string_view kNdjson = "ndjson", kGz = ".gz", kTmp = ".tmp.";
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
