#include "server/routes.h"

#include "fhir/resource_types.h"

namespace fhirbulk {

namespace {
constexpr std::string_view kStatusPrefix = "/$export-status/";
constexpr std::string_view kGroupPrefix = "/Group/";
constexpr std::string_view kExportSuffix = "/$export";
constexpr std::string_view kGroupStatus = "/$group-status/";
constexpr std::string_view kOpsPrefix = "/_ops/api/";
}  // namespace

std::string StatusPath(std::string_view job_id) {
  std::string p(kStatusPrefix);
  p.append(job_id.data(), job_id.size());
  return p;
}

Route MatchRoute(std::string_view path) {
  Route r;
  if (path == "/metadata") {
    r.kind = Route::kMetadata;
  } else if (path == "/_health") {
    r.kind = Route::kHealth;
  } else if (path == kSmartConfigurationPath) {
    r.kind = Route::kSmartConfiguration;
  } else if (path == kTokenPath) {
    r.kind = Route::kToken;
  } else if (path.substr(0, kOpsPrefix.size()) == kOpsPrefix) {
    r.kind = Route::kOps;
    r.ops_path = std::string(path.substr(kOpsPrefix.size()));
  } else if (path == "/$export") {
    r.kind = Route::kExportKickoff;
    r.level = ExportLevel::kSystem;
  } else if (path == "/Group") {
    r.kind = Route::kGroupType;
  } else if (path.substr(0, kGroupPrefix.size()) == kGroupPrefix &&
             IsValidFhirId(path.substr(kGroupPrefix.size()))) {
    r.kind = Route::kGroupInstance;
    r.group_id = std::string(path.substr(kGroupPrefix.size()));
  } else if (path.substr(0, kGroupStatus.size()) == kGroupStatus &&
             IsValidFhirId(path.substr(kGroupStatus.size()))) {
    r.kind = Route::kGroupStatus;
    r.job_id = std::string(path.substr(kGroupStatus.size()));
  } else if (path == "/Patient/$export") {
    r.kind = Route::kExportKickoff;
    r.level = ExportLevel::kPatient;
  } else if (path.substr(0, kGroupPrefix.size()) == kGroupPrefix &&
             path.size() > kGroupPrefix.size() + kExportSuffix.size() &&
             path.substr(path.size() - kExportSuffix.size()) == kExportSuffix) {
    std::string_view id =
        path.substr(kGroupPrefix.size(), path.size() - kGroupPrefix.size() - kExportSuffix.size());
    if (IsValidFhirId(id)) {
      r.kind = Route::kExportKickoff;
      r.level = ExportLevel::kGroup;
      r.group_id = std::string(id);
    }
  } else if (path.substr(0, kStatusPrefix.size()) == kStatusPrefix &&
             path.size() > kStatusPrefix.size()) {
    std::string_view id = path.substr(kStatusPrefix.size());
    if (id.find('/') == std::string_view::npos) {
      r.kind = Route::kExportStatus;
      r.job_id = std::string(id);
    }
  }
  return r;
}

}  // namespace fhirbulk
