// Internal to the kick-off parser (export_request.h): the headers that shape a kick-off,
// checked before any parameter. The decisions are export_request.h's "Headers" bullet.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_EXPORT_KICKOFF_HEADERS_H_
#define FHIRBULK_EXPORT_KICKOFF_HEADERS_H_

#include <string_view>

#include "export/export_request.h"
#include "util/status.h"

namespace fhirbulk {
namespace kickoff {

// Our responses are application/fhir+json: OK when Accept gives it a q > 0 (by the most
// specific matching range: exact, application/* or */*). With options.require_accept_fhir_json
// off (fhir_bulk_strict_headers off) also when application/json gets a q > 0, unless the
// client refused application/fhir+json by name (q=0), and when Accept is empty.
// NotAcceptable (406) otherwise; errors start with "Accept: ".
Status CheckAccept(std::string_view accept, const ExportParseOptions& options);

// The preferences of a Prefer header that matter to a kick-off (RFC 7240: comma-joined and
// repeated headers, case-insensitive names and values, quoted values; the first `handling`
// wins, and any value but "lenient" means strict).
struct Preferences {
  bool respond_async = false;
  bool lenient = false;
  bool separate_export_status = false;  // STU3: echoed in Preference-Applied
};
Preferences ParsePrefer(std::string_view prefer);

// Content-Type of a POST kick-off: application/fhir+json or application/json, any
// parameters. Errors start with "Content-Type: ".
Status CheckContentType(std::string_view content_type);

}  // namespace kickoff
}  // namespace fhirbulk

#endif  // FHIRBULK_EXPORT_KICKOFF_HEADERS_H_
