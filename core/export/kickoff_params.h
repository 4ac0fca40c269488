// Internal to the kick-off parser (export_request.h): collecting the parameters of a GET
// query or a POST Parameters body into one shape, before any value is validated. The
// decisions are export_request.h's "GET query" and "POST" bullets; the size limits are
// KickoffLimits', checked before the work they bound.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_EXPORT_KICKOFF_PARAMS_H_
#define FHIRBULK_EXPORT_KICKOFF_PARAMS_H_

#include <string>
#include <string_view>
#include <vector>

#include "export/export_request.h"
#include "export/kickoff_util.h"
#include "http/http.h"
#include "util/status.h"

namespace fhirbulk {
namespace kickoff {

// How the size errors start; they are TooLarge (413) and UriTooLong (414) errors.
inline constexpr std::string_view kBodyTooLarge = "body: too large";
inline constexpr std::string_view kQueryTooLarge = "query: too large";

// The values of every supported parameter, in request order (repeated parameters append).
// All are decoded text except _typeFilter, which keeps its raw form (type_filter_parse.h
// splits it).
struct RawParams {
  std::vector<std::string> output_format, since, until, types, elements, patients,
      include_associated_data, type_filters;
  std::vector<std::string> organize_output_by;  // STU3

  std::vector<std::string> allow_partial_manifests;  // "true" / "false" (POST: valueBoolean)

  // The list of the parameter called `name`; nullptr for a parameter $export does not have.
  std::vector<std::string>* Find(std::string_view name);
};

// A GET query: form-urlencoded ('+' is a space), percent-decoded, UTF-8. An unknown
// parameter, and `patient` (POST only), are Unsupported by `leniency`.
Status CollectGetParams(std::string_view query, const KickoffLimits& limits, Leniency* leniency,
                        RawParams* raw);

// A POST Parameters body (Content-Type checked first). A URL query on the POST is
// Unsupported by `leniency`; each entry's one value[x] must be of the types its parameter
// takes; JSON strings holding NUL are InvalidArgument.
Status CollectPostParams(const HttpRequest& request, const KickoffLimits& limits,
                         Leniency* leniency, RawParams* raw);

}  // namespace kickoff
}  // namespace fhirbulk

#endif  // FHIRBULK_EXPORT_KICKOFF_PARAMS_H_
