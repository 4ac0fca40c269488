// Internal to the kick-off parser (export_request.h): the _typeFilter grammar. Raw parameter
// values are split into queries, each query into criteria, and each criterion's values are
// decoded, unescaped and normalized into TypeFilterQuery (export_request.h says what is
// supported and how values are normalized). The limits on queries, criteria, values and
// compiled terms (KickoffLimits) are checked before the work they bound.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_EXPORT_TYPE_FILTER_PARSE_H_
#define FHIRBULK_EXPORT_TYPE_FILTER_PARSE_H_

#include <string>
#include <vector>

#include "export/export_request.h"
#include "export/kickoff_util.h"
#include "util/status.h"

namespace fhirbulk {
namespace kickoff {

// Parses every raw _typeFilter value (RawParams::type_filters) into out->type_filters.
// REQUIRES: out->level and out->types are final (a query for a type this request does not
// export is dropped and reported as information). What this server cannot evaluate is
// Unsupported by `leniency`, a query over a cost limit TooCostly; malformed values are
// InvalidArgument in both modes.
Status ApplyTypeFilters(const std::vector<std::string>& values, const std::string& base_url,
                        const KickoffLimits& limits, Leniency* leniency, ExportRequest* out);

}  // namespace kickoff
}  // namespace fhirbulk

#endif  // FHIRBULK_EXPORT_TYPE_FILTER_PARSE_H_
