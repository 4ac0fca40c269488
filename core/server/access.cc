#include "server/access.h"

#include <algorithm>

#include "export/job_dir.h"
#include "fhir/resource_types.h"

namespace fhirbulk {
namespace {

std::string JoinTypes(const std::vector<std::string>& types) {
  std::string out;
  for (size_t i = 0; i < types.size() && i < 10; i++) {
    if (i > 0) out += ", ";
    out += types[i];
  }
  if (types.size() > 10) out += ", ...";
  return out;
}

std::vector<std::string> DefaultTypes(ExportLevel level) {
  std::vector<std::string> out;
  if (level == ExportLevel::kSystem) {
    for (std::string_view t : R4ResourceTypes()) out.emplace_back(t);
    return out;
  }
  for (std::string_view t : PatientCompartmentTypes()) {
    if (t != "Group") out.emplace_back(t);
  }
  for (std::string_view t : PatientExportSupportingTypes()) out.emplace_back(t);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

Status AuthorizeJobAccess(const ScopeSet& scopes, const ExportRequest& request) {
  if (request.level == ExportLevel::kPatient && !scopes.CanRead("Patient")) {
    return Status::PermissionDenied("a Patient-level export needs read access to Patient");
  }
  if (request.level == ExportLevel::kGroup && !scopes.CanRead("Group")) {
    return Status::PermissionDenied("a Group-level export needs read access to Group");
  }
  if (!request.types.empty()) {
    std::vector<std::string> denied;
    for (const std::string& t : request.types) {
      if (!scopes.CanRead(t)) denied.push_back(t);
    }
    if (!denied.empty()) {
      return Status::PermissionDenied("_type: the access token does not allow reading " +
                                      JoinTypes(denied));
    }
    return Status::OK();
  }
  if (scopes.CanReadAll()) return Status::OK();
  return Status::PermissionDenied("this export covers every type; the access token does not");
}

Status AuthorizeKickoff(const ScopeSet& scopes, ExportRequest* request, bool narrow) {
  Status s = AuthorizeJobAccess(scopes, *request);
  if (!narrow || s.ok() || !request->types.empty() ||
      (request->level == ExportLevel::kPatient && !scopes.CanRead("Patient")) ||
      (request->level == ExportLevel::kGroup && !scopes.CanRead("Group"))) {
    return s;
  }
  for (std::string& t : DefaultTypes(request->level)) {
    if (scopes.CanRead(t)) request->types.push_back(std::move(t));
  }
  if (request->types.empty()) {
    return Status::PermissionDenied("the access token allows reading none of the exported types");
  }
  return Status::OK();
}

Status AuthorizeGroupPolicy(bool group_restricted, const std::vector<std::string>& allowed_groups,
                            const ExportRequest& request) {
  if (!group_restricted) return Status::OK();
  if (request.level != ExportLevel::kGroup) {
    return Status::PermissionDenied("this client may only export its Groups (Group/[id]/$export)");
  }
  if (std::find(allowed_groups.begin(), allowed_groups.end(), request.group_id) ==
      allowed_groups.end()) {
    return Status::PermissionDenied("this client may not export Group/" + request.group_id);
  }
  return Status::OK();
}

Status AuthorizeFileDownload(const ScopeSet& scopes, std::string_view file_name) {
  auto name = ParseExportFileName(file_name);
  if (!name || name->temp) return Status::NotFound("no such export file");
  if (name->type == "Bundle" || name->type == "OperationOutcome") return Status::OK();
  if (!scopes.CanRead(name->type)) {
    return Status::PermissionDenied("the access token does not allow reading " + name->type);
  }
  return Status::OK();
}

}  // namespace fhirbulk
