// The routes below the FHIR base, as a pure function of the path.
//
//   /metadata                          kMetadata
//   /_health                           kHealth
//   /.well-known/smart-configuration   kSmartConfiguration
//   /auth/token                        kToken (the OAuth token endpoint)
//   /$export                           kExportKickoff (system level)
//   /Patient/$export                   kExportKickoff (patient level)
//   /Group/<id>/$export                kExportKickoff (group level; id a valid FHIR id)
//   /$export-status/<job id>           kExportStatus (GET polls, DELETE cancels)
//   /Group                             kGroupType (search, create; server/group_api.h)
//   /Group/<id>                        kGroupInstance (read, update, delete; id a FHIR id)
//   /$group-status/<request id>        kGroupStatus (an asynchronous Group write; job_id
//                                      holds the request id, a FHIR id)
//   /_ops/api/<path>                   kOps (the operator API, server/ops_api.h; ops_path
//                                      holds <path>)
// Anything else is kNotFound.

#ifndef FHIRBULK_SERVER_ROUTES_H_
#define FHIRBULK_SERVER_ROUTES_H_

#include <string>
#include <string_view>

#include "export/export_request.h"

namespace fhirbulk {

struct Route {
  enum Kind {
    kNotFound,
    kMetadata,
    kHealth,
    kSmartConfiguration,
    kToken,
    kExportKickoff,
    kExportStatus,
    kGroupType,
    kGroupInstance,
    kGroupStatus,
    kOps
  } kind = kNotFound;
  ExportLevel level = ExportLevel::kSystem;  // kExportKickoff
  std::string group_id;                      // kExportKickoff at group level, kGroupInstance
  std::string job_id;                        // kExportStatus, kGroupStatus
  std::string ops_path;                      // kOps: the path below /_ops/api/
};

Route MatchRoute(std::string_view path);

inline constexpr std::string_view kSmartConfigurationPath = "/.well-known/smart-configuration";
inline constexpr std::string_view kTokenPath = "/auth/token";
// Below the base: "/$export-files/<job id>/<file name>" (served by the module).
inline constexpr std::string_view kFilesPath = "/$export-files/";

// The path of a job's status URL below the base: "/$export-status/<job id>".
std::string StatusPath(std::string_view job_id);

}  // namespace fhirbulk

#endif  // FHIRBULK_SERVER_ROUTES_H_
