// The _typeFilter grammar of a kick-off (type_filter_parse.h).

#include "export/type_filter_parse.h"

#include <algorithm>
#include <iterator>
#include <string_view>
#include <utility>

#include "export/type_filter_sql.h"
#include "fhir/resource_index.h"
#include "fhir/resource_types.h"
#include "fhir/search_params.h"
#include "http/query_string.h"
#include "util/fhir_time.h"

namespace fhirbulk {

size_t CountEscapedValues(std::string_view value) {
  size_t n = 1;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\\') {
      ++i;  // escapes the next character (a trailing one stands for itself)
    } else if (value[i] == ',') {
      ++n;
    }
  }
  return n;
}

namespace kickoff {

namespace {

// Length of the "Type" in a leading "Type?" ([A-Z][A-Za-z]*\?), or 0 when there is none.
size_t TypeQueryPrefix(std::string_view s) {
  const size_t q = s.find('?');
  if (q == std::string_view::npos || !LooksLikeTypeName(s.substr(0, q))) return 0;
  return q;
}

// Splits one _typeFilter value into its queries (spec digest §2.3 recommendation): split on
// literal commas; a piece starting a query is taken as is when it holds a literal '?' (sent
// unencoded) and percent-decoded once otherwise; a piece that does not start a query
// continues the previous one (a raw OR-comma inside a value) and is decoded like it.
Status SplitTypeFilterValue(std::string_view raw, std::vector<std::string>* queries) {
  bool previous_encoded = false;
  for (std::string_view piece : Split(raw, ',')) {
    if (!IsValidUtf8(piece) || piece.find('\0') != std::string_view::npos) {
      return Status::InvalidArgument("_typeFilter: value is not UTF-8 text");
    }
    const bool literal_question_mark = piece.find('?') != std::string_view::npos;
    if (literal_question_mark && TypeQueryPrefix(piece) > 0) {
      queries->emplace_back(piece);
      previous_encoded = false;
      continue;
    }
    Result<std::string> decoded = PercentDecode(piece, /*plus_as_space=*/true);
    if (!literal_question_mark && decoded.ok() && TypeQueryPrefix(*decoded) > 0) {
      queries->push_back(std::move(decoded).value());
      previous_encoded = true;
      continue;
    }
    if (queries->empty()) {
      return Status::InvalidArgument("_typeFilter: " + Quoted(piece) +
                                     " is not a query of the form Type?param=value");
    }
    // A continuation is decoded like the query it belongs to; an undecodable piece of an
    // unencoded query is left for the query parser to report.
    if (previous_encoded && !decoded.ok()) return decoded.status().WithContext(kTypeFilter);
    queries->back() += ',';
    queries->back() += previous_encoded ? std::string_view(*decoded) : piece;
  }
  return Status::OK();
}

// FHIR search value syntax: ',' separates ORed values, '\' escapes the next character.
std::vector<std::string> SplitEscapedValues(std::string_view value) {
  std::vector<std::string> values(1);
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == ',') {
      values.emplace_back();
      continue;
    }
    if (value[i] == '\\' && i + 1 < value.size()) ++i;  // the escaped character, as it is
    values.back().push_back(value[i]);
  }
  return values;
}

bool IsResultParameter(std::string_view name) {
  static constexpr std::string_view kResultParams[] = {
      "_contained",  "_containedType", "_count",      "_elements", "_format",  "_include",
      "_maxresults", "_pretty",        "_revinclude", "_sort",     "_summary", "_total"};
  return std::find(std::begin(kResultParams), std::end(kResultParams), name) !=
         std::end(kResultParams);
}

// A date value "[prefix]date"; the prefix is normalized to an explicit one ("eq" when absent).
Status ParseDateValue(const std::string& where, std::string* value, std::string* prefix) {
  *prefix = "eq";
  if (value->size() >= 2 && value->at(0) >= 'a' && value->at(0) <= 'z') {
    const std::string p = value->substr(0, 2);
    if (p == "sa" || p == "eb" || p == "ap") {
      return Status::NotSupported(where + ": date prefix " + Quoted(p) + " is not supported");
    }
    if (p != "eq" && p != "ne" && p != "gt" && p != "lt" && p != "ge" && p != "le") {
      return Status::InvalidArgument(where + ": " + Quoted(*value) + " has an unknown prefix");
    }
    *prefix = p;
    value->erase(0, 2);
  }
  if (!ParseDateTimeRange(*value).ok()) {
    // As for _since: a raw '+' of a zone offset may have been decoded to a space.
    std::string repaired = *value;
    std::replace(repaired.begin(), repaired.end(), ' ', '+');
    if (repaired == *value || !ParseDateTimeRange(repaired).ok()) {
      return Status::InvalidArgument(where + ": " + Quoted(*value) +
                                     " is not a FHIR date, dateTime or instant");
    }
    *value = std::move(repaired);
  }
  return Status::OK();
}

// Normalizes a reference search value to "Type/id", or leaves a bare id when the parameter
// may point at several types (TypeFilterSql then matches that id under any type).
Status NormalizeReferenceValue(const std::string& where, const SearchParamDef& def,
                               std::string_view type_modifier, const std::string& base_url,
                               std::string* value) {
  std::string_view v = *value;
  if (!base_url.empty() && StartsWith(v, base_url + "/")) v.remove_prefix(base_url.size() + 1);
  if (v.find('/') == std::string_view::npos) {
    if (!IsValidFhirId(v)) {
      return Status::InvalidArgument(where + ": " + Quoted(*value) +
                                     " is not a reference (Type/id) or an id");
    }
    std::string_view target = !type_modifier.empty() ? type_modifier : def.target;
    *value = target.empty() ? std::string(v) : std::string(target) + "/" + std::string(v);
    return Status::OK();
  }
  if (v.find("://") != std::string_view::npos) {
    return Status::NotSupported(where + ": " + Quoted(*value) +
                                " is an absolute reference to another server; only references "
                                "under this server's base are searchable");
  }
  RelativeReference ref;
  if (!ParseRelativeReference(v, &ref)) {
    return Status::InvalidArgument(where + ": " + Quoted(*value) +
                                   " is not a reference of the form Type/id");
  }
  if (!type_modifier.empty() && ref.type != type_modifier) {
    return Status::InvalidArgument(where + ": " + Quoted(*value) +
                                   " contradicts the :" + std::string(type_modifier) + " modifier");
  }
  *value = std::string(ref.type) + "/" + std::string(ref.id);
  return Status::OK();
}

// One `name[:modifier]=value` of a query for `type`. NotSupported for what this server cannot
// evaluate, InvalidArgument for malformed values.
Status ParseCriterion(std::string_view type, std::string_view query, std::string_view segment,
                      const std::string& base_url, const KickoffLimits& limits,
                      FilterCriterion* out) {
  const std::string where = "_typeFilter " + Quoted(query);
  const size_t eq = segment.find('=');
  if (eq == std::string_view::npos) {
    return Status::InvalidArgument(where + ": " + Quoted(segment) + " has no '='");
  }
  Result<std::string> name = PercentDecode(segment.substr(0, eq), /*plus_as_space=*/true);
  if (!name.ok()) return name.status().WithContext(where);
  Result<std::string> value = PercentDecode(segment.substr(eq + 1), /*plus_as_space=*/true);
  if (!value.ok()) return value.status().WithContext(where);

  if (name->find('.') != std::string::npos) {
    return Status::NotSupported(where + ": chained parameter " + Quoted(*name) +
                                " is not supported");
  }
  const size_t colon = name->find(':');
  out->param = name->substr(0, colon);
  out->modifier = colon == std::string::npos ? "" : name->substr(colon + 1);
  const std::string& param = out->param;
  if (param.empty()) return Status::InvalidArgument(where + ": empty parameter name");
  if (StartsWith(param, "_has")) {
    return Status::NotSupported(where + ": chained parameter " + Quoted(*name) +
                                " is not supported");
  }
  if (IsResultParameter(param)) {
    return Status::NotSupported(where + ": " + Quoted(param) +
                                " is a result parameter, not allowed in _typeFilter");
  }
  const SearchParamDef* def = FindSearchParam(type, param);
  if (def == nullptr) {
    return Status::NotSupported(where + ": " + std::string(type) +
                                " has no supported search parameter " + Quoted(param));
  }

  std::string type_modifier;
  const std::string& modifier = out->modifier;
  const SearchParamKind kind = def->kind;
  const bool tokenish = kind == SearchParamKind::kToken || kind == SearchParamKind::kUri;
  if (modifier.empty() || (modifier == "not" && tokenish) ||
      (modifier == "missing" &&
       (tokenish || kind == SearchParamKind::kReference || kind == SearchParamKind::kDate))) {
    // supported as is
  } else if (kind == SearchParamKind::kReference && IsR4ResourceType(modifier)) {
    type_modifier = modifier;  // folded into the values below
    out->modifier.clear();
  } else {
    return Status::NotSupported(where + ": modifier " + Quoted(":" + modifier) +
                                " is not supported for " + Quoted(param));
  }

  // Counted before splitting: a 256 KiB value of commas would be 262,144 strings, built in
  // the event loop only to be refused.
  const size_t value_count = CountEscapedValues(*value);
  if (value_count > limits.max_type_filter_values) {
    return Status::ResourceExhausted(
        where + ": " + Quoted(*name) + " has " + std::to_string(value_count) + " values, " +
        OverLimit(limits.max_type_filter_values, "values per parameter"));
  }
  out->values = SplitEscapedValues(*value);
  for (const std::string& v : out->values) {
    if (v.empty()) {
      return Status::InvalidArgument(where + ": " + Quoted(*name) + " has an empty value");
    }
  }
  if (out->modifier == "missing") {
    if (out->values.size() != 1 || (out->values[0] != "true" && out->values[0] != "false")) {
      return Status::InvalidArgument(where + ": " + Quoted(*name) +
                                     " takes exactly one value, true or false");
    }
    return Status::OK();
  }
  for (std::string& v : out->values) {
    switch (kind) {
      case SearchParamKind::kToken:
        if (v == "|") {
          return Status::InvalidArgument(where + ": " + Quoted(v) + " is not a token");
        }
        break;
      case SearchParamKind::kUri:
        break;
      case SearchParamKind::kReference:
        FHIRBULK_RETURN_IF_ERROR(NormalizeReferenceValue(where, *def, type_modifier, base_url, &v));
        break;
      case SearchParamKind::kId:
        if (!IsValidFhirId(v)) {
          return Status::InvalidArgument(where + ": " + Quoted(v) + " is not a FHIR id");
        }
        break;
      case SearchParamKind::kDate:
      case SearchParamKind::kLastUpdated: {
        std::string prefix;
        FHIRBULK_RETURN_IF_ERROR(ParseDateValue(where, &v, &prefix));
        out->prefixes.push_back(std::move(prefix));
        break;
      }
    }
  }
  return Status::OK();
}

// One decoded query "Type?a=1&b=2". ResourceExhausted when it is over a per-query cost limit
// (criteria, values per criterion): the caller applies leniency.
Status ParseTypeFilterQuery(std::string_view query, const std::string& base_url,
                            const KickoffLimits& limits, TypeFilterQuery* out) {
  const size_t q = TypeQueryPrefix(query);
  out->type = std::string(query.substr(0, q));
  if (!IsR4ResourceType(out->type)) {
    return Status::NotSupported("_typeFilter " + Quoted(query) + ": " + Quoted(out->type) +
                                " is not a FHIR R4 resource type");
  }
  const std::string_view search = query.substr(q + 1);
  if (search.empty()) return Status::OK();  // "Type?" matches every resource of the type
  const size_t segments = static_cast<size_t>(std::count(search.begin(), search.end(), '&')) + 1;
  if (segments > limits.max_type_filter_criteria) {
    return Status::ResourceExhausted(
        "_typeFilter " + Quoted(query) + ": " + std::to_string(segments) + " criteria, " +
        OverLimit(limits.max_type_filter_criteria, "criteria per query"));
  }
  for (std::string_view segment : Split(search, '&')) {
    if (segment.empty()) continue;
    FilterCriterion criterion;
    FHIRBULK_RETURN_IF_ERROR(
        ParseCriterion(out->type, query, segment, base_url, limits, &criterion));
    out->criteria.push_back(std::move(criterion));
  }
  return Status::OK();
}

// Whether resources of `type` can be in this export at all (after _type).
bool TypeIsExported(const ExportRequest& r, std::string_view type) {
  if (!r.types.empty()) return Contains(r.types, type);
  if (r.level == ExportLevel::kSystem) return true;
  return IsPatientCompartmentType(type) || IsPatientExportSupportingType(type);
}

}  // namespace

Status ApplyTypeFilters(const std::vector<std::string>& values, const std::string& base_url,
                        const KickoffLimits& limits, Leniency* leniency, ExportRequest* out) {
  size_t query_count = 0;
  size_t terms = 0;  // TypeFilterTermCount of the queries kept so far
  for (const std::string& raw : values) {
    if (raw.empty()) return Status::InvalidArgument("_typeFilter: empty value");
    std::vector<std::string> queries;
    FHIRBULK_RETURN_IF_ERROR(SplitTypeFilterValue(raw, &queries));
    for (const std::string& text : queries) {
      if (++query_count > limits.max_type_filter_queries) {
        FHIRBULK_RETURN_IF_ERROR(leniency->TooCostly(
            kTypeFilter, "_typeFilter " + Quoted(text) + ": " +
                             OverLimit(limits.max_type_filter_queries, "queries per kick-off")));
        continue;
      }
      TypeFilterQuery query;
      Status s = ParseTypeFilterQuery(text, base_url, limits, &query);
      if (s.code() == Status::Code::kNotSupported) {
        FHIRBULK_RETURN_IF_ERROR(leniency->Unsupported(kTypeFilter, s.message()));
        continue;
      }
      if (s.code() == Status::Code::kResourceExhausted) {
        FHIRBULK_RETURN_IF_ERROR(leniency->TooCostly(kTypeFilter, s.message()));
        continue;
      }
      FHIRBULK_RETURN_IF_ERROR(s);
      if (!TypeIsExported(*out, query.type)) {
        // Harmless (it selects among resources that are not exported), so never an error;
        // still reported so the client learns its filter had no effect.
        leniency->Record("information", "informational",
                         "_typeFilter " + Quoted(text) + ": " + query.type +
                             " is not exported by this request, so the filter has no effect",
                         kTypeFilter);
        continue;
      }
      // The compiled size: a bare reference id costs one term per target type it may name.
      const size_t query_terms = TypeFilterTermCount(query);
      if (terms + query_terms > limits.max_type_filter_terms) {
        FHIRBULK_RETURN_IF_ERROR(leniency->TooCostly(
            kTypeFilter, "_typeFilter " + Quoted(text) + ": compiles to " +
                             std::to_string(query_terms) + " search terms (" +
                             std::to_string(terms) + " before it), " +
                             OverLimit(limits.max_type_filter_terms, "terms per kick-off")));
        continue;
      }
      terms += query_terms;
      out->type_filters.push_back(std::move(query));
    }
  }
  return Status::OK();
}

}  // namespace kickoff
}  // namespace fhirbulk
