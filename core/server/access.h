// Access control of the export API by SMART scopes (../shared/spec/smart-backend-services.md
// section 9.2). A type is readable when the token grants "r" on it or on "*".
//
// AuthorizeKickoff (narrow = true):
//  - Patient-level export needs Patient readable, Group-level export needs Group readable
//    (Bulk Data v3's rule, adopted now); PermissionDenied otherwise;
//  - with _type: every listed type must be readable, else PermissionDenied naming them;
//  - without _type and without "r" on "*": _type becomes the readable types the export would
//    include by default (system: every R4 type; Patient/Group: the compartment types except
//    Group, plus the supporting types), so the job never reads beyond the token. None left:
//    PermissionDenied.
// With narrow = false (status, cancel: "protected like the kick-off") the same rules check
// a stored request; a request without _type needs "r" on "*".
// AuthorizeGroupPolicy: a client restricted to some Groups may only export those Groups
// (no system- or Patient-level export).
// AuthorizeFileDownload: an output file needs its type readable; deleted (Bundle) and error
// (OperationOutcome) files belong to the job as a whole and need no more than access to it.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_SERVER_ACCESS_H_
#define FHIRBULK_SERVER_ACCESS_H_

#include <string>
#include <string_view>
#include <vector>

#include "auth/scopes.h"
#include "export/export_request.h"
#include "util/status.h"

namespace fhirbulk {

Status AuthorizeKickoff(const ScopeSet& scopes, ExportRequest* request, bool narrow);

// AuthorizeKickoff(narrow = false) of a stored request, without copying it.
Status AuthorizeJobAccess(const ScopeSet& scopes, const ExportRequest& request);

Status AuthorizeGroupPolicy(bool group_restricted, const std::vector<std::string>& allowed_groups,
                            const ExportRequest& request);

// file_name: "<Type>.<unit>.<seq>.ndjson".
Status AuthorizeFileDownload(const ScopeSet& scopes, std::string_view file_name);

}  // namespace fhirbulk

#endif  // FHIRBULK_SERVER_ACCESS_H_
