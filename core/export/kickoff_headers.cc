// Accept, Prefer and Content-Type of a kick-off (kickoff_headers.h).

#include "export/kickoff_headers.h"

#include <string>
#include <vector>

#include "export/kickoff_util.h"
#include "http/http.h"
#include "util/strings.h"

namespace fhirbulk {
namespace kickoff {

namespace {

// RFC 9110 qvalue: "0" ["." 0*3DIGIT] / "1" ["." 0*3("0")]. -1 when malformed.
double ParseQValue(std::string_view s) {
  if (s.empty() || (s[0] != '0' && s[0] != '1')) return -1;
  if (s.size() == 1) return s[0] - '0';
  if (s[1] != '.' || s.size() > 5) return -1;
  double value = s[0] - '0';
  double scale = 0.1;
  for (size_t i = 2; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    if (s[0] == '1' && s[i] != '0') return -1;
    value += (s[i] - '0') * scale;
    scale /= 10;
  }
  return value;
}

struct AcceptMatch {
  int specificity = 0;  // 0 none, 1 */*, 2 type/*, 3 type/subtype
  double q = 0;
};

// How the Accept header rates type/subtype: the q of the most specific matching media range
// (the highest q among equally specific ones). Malformed ranges and q values are skipped;
// parameters other than q are ignored.
AcceptMatch MatchAccept(std::string_view accept, std::string_view type, std::string_view subtype) {
  AcceptMatch best;
  for (std::string_view item : Split(accept, ',')) {
    std::vector<std::string_view> parts = Split(item, ';');
    const std::string range = Lower(Trim(parts[0]));
    const size_t slash = range.find('/');
    if (slash == std::string::npos) continue;
    const std::string_view range_type = std::string_view(range).substr(0, slash);
    const std::string_view range_subtype = std::string_view(range).substr(slash + 1);
    int specificity;
    if (range_type == "*" && range_subtype == "*") {
      specificity = 1;
    } else if (range_type == type && range_subtype == "*") {
      specificity = 2;
    } else if (range_type == type && range_subtype == subtype) {
      specificity = 3;
    } else {
      continue;
    }
    double q = 1;
    for (size_t i = 1; i < parts.size(); ++i) {
      const std::string_view param = Trim(parts[i]);
      const size_t eq = param.find('=');
      if (eq == std::string_view::npos || Lower(Trim(param.substr(0, eq))) != "q") continue;
      q = ParseQValue(Trim(param.substr(eq + 1)));
    }
    if (q < 0) continue;
    if (specificity > best.specificity || (specificity == best.specificity && q > best.q)) {
      best.specificity = specificity;
      best.q = q;
    }
  }
  return best;
}

}  // namespace

// Our responses are application/fhir+json. Strict: Accept must give it a q > 0 (by name,
// application/* or */*), as the reference implementation requires; `Accept: application/json`
// alone is refused. Lenient: application/json (or a wildcard) is good enough unless the
// client refused application/fhir+json by name (q=0).
Status CheckAccept(std::string_view accept, const ExportParseOptions& options) {
  if (Trim(accept).empty()) {
    if (!options.require_accept_fhir_json) return Status::OK();
    return Status::NotAcceptable("Accept: the header is required and must allow " +
                                 std::string(kFhirJson));
  }
  const AcceptMatch fhir_json = MatchAccept(accept, "application", "fhir+json");
  if (fhir_json.q > 0) return Status::OK();
  const AcceptMatch json = MatchAccept(accept, "application", "json");
  const bool refused_by_name = fhir_json.specificity == 3 && fhir_json.q == 0;
  if (!options.require_accept_fhir_json && json.q > 0 && !refused_by_name) return Status::OK();
  return Status::NotAcceptable("Accept: " + Quoted(accept) + " does not allow " +
                               std::string(kFhirJson) + ", the only format this operation returns");
}

// RFC 7240: comma-separated preferences, each `token [= value] *(; parameter)`; names and
// our values are case-insensitive; values may be quoted; the first `handling` wins.
Preferences ParsePrefer(std::string_view prefer) {
  Preferences p;
  bool handling_seen = false;
  for (std::string_view item : Split(prefer, ',')) {
    const std::string_view pref = Trim(Split(item, ';')[0]);
    const size_t eq = pref.find('=');
    const std::string name = Lower(Trim(pref.substr(0, eq)));
    std::string_view value = eq == std::string_view::npos ? "" : Trim(pref.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (name == "respond-async") {
      p.respond_async = true;
    } else if (name == "separate-export-status") {
      p.separate_export_status = true;
    } else if (name == "handling" && !handling_seen) {
      handling_seen = true;
      p.lenient = Lower(value) == "lenient";
    }
  }
  return p;
}

// Content-Type of a POST kick-off: application/fhir+json or application/json, any parameters.
Status CheckContentType(std::string_view content_type) {
  const std::string media = Lower(Trim(Split(content_type, ';')[0]));
  if (media == kFhirJson || media == "application/json") return Status::OK();
  if (media.empty()) {
    return Status::InvalidArgument("Content-Type: a POST kick-off needs " + std::string(kFhirJson));
  }
  return Status::InvalidArgument("Content-Type: " + Quoted(content_type) + " is not " +
                                 std::string(kFhirJson));
}

}  // namespace kickoff
}  // namespace fhirbulk
