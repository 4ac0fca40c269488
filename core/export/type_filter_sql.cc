#include "export/type_filter_sql.h"

#include <cstdint>
#include <limits>

#include "fhir/resource_types.h"
#include "fhir/search_params.h"
#include "util/fhir_time.h"

namespace fhirbulk {

namespace {

// Puts values into the expression: as typed placeholders (bound mode) or as literals quoted by
// libpq (literal mode). The first failure is kept; TypeFilterSql reports it at the end, so
// the helpers below need not check each value.
class Binder {
 public:
  // Bound mode.
  Binder(int next, std::vector<std::string>* params) : next_(next), params_(params) {}
  // Literal mode.
  explicit Binder(PgConnection* conn) : conn_(conn) {}

  std::string Bind(std::string value, const char* cast) {
    // libpq takes text values (parameters and escaping alike) up to the first NUL.
    if (value.find('\0') != std::string::npos && status_.ok()) {
      status_ = Status::InvalidArgument("_typeFilter: a value holds a NUL byte");
    }
    if (conn_ != nullptr) {
      Result<std::string> quoted = conn_->Literal(value);
      if (!quoted.ok()) {
        if (status_.ok()) status_ = quoted.status();
        return "NULL";
      }
      return *quoted + "::" + cast;
    }
    params_->push_back(std::move(value));
    return "$" + std::to_string(next_++) + "::" + cast;
  }

  const Status& status() const { return status_; }

 private:
  PgConnection* conn_ = nullptr;
  int next_ = 0;
  std::vector<std::string>* params_ = nullptr;
  Status status_;
};

std::string Key(std::string_view param, std::string_view value) {
  std::string key(param);
  key.push_back('=');
  key.append(value.data(), value.size());
  return key;
}

// Up to this many keys an overlap is `col && keys` (GIN-indexable); beyond it, a hashed
// `= ANY` per row key. PostgreSQL's && compares every pair: on a sequential scan of 200k rows
// with 5 keys each, 1 key took 0.1 s, 100 keys 1.9 s, 1,000 keys 23 s; the hashed form
// (PostgreSQL hashes a constant = ANY array of 9 or more) took 0.6-1.0 s for 1 to 5,000 keys.
constexpr size_t kMaxOverlapKeys = 32;

// Two-valued "the array column overlaps these keys" (a NULL column is false).
std::string Overlaps(const char* column, const std::vector<std::string>& keys, Binder* b) {
  if (keys.size() > kMaxOverlapKeys) {
    return std::string("EXISTS (SELECT 1 FROM unnest(") + column + ") AS k(v) WHERE k.v = ANY(" +
           b->Bind(PgTextArrayLiteral(keys), "text[]") + "))";
  }
  return std::string("(") + column + " IS NOT NULL AND " + column + " && " +
         b->Bind(PgTextArrayLiteral(keys), "text[]") + ")";
}

// "the column holds some key of param p" (tokens/refs keys start with "p=").
std::string HasKeyOf(const char* column, std::string_view param, Binder* b) {
  return std::string("EXISTS (SELECT 1 FROM unnest(") + column +
         ") AS k(v) WHERE starts_with(k.v, " + b->Bind(Key(param, ""), "text") + "))";
}

// The FHIR prefix test of one search range against the range [lo, hi] (SQL expressions).
Status DateCondition(const std::string& prefix, const std::string& value, const std::string& lo,
                     const std::string& hi, Binder* b, std::string* sql) {
  Result<TimeRange> range = ParseDateTimeRange(value);
  if (!range.ok()) {
    return Status::InvalidArgument("_typeFilter: '" + value + "' is not a FHIR date");
  }
  // Each Bind is its own statement: the operands of '+' are unsequenced, and placeholder
  // numbers must follow the order of `params`.
  auto contained = [&] {
    const std::string slo = b->Bind(PgTimestampParam(range->lo_us), "timestamptz");
    const std::string shi = b->Bind(PgTimestampParam(range->hi_us), "timestamptz");
    return "(" + lo + " >= " + slo + " AND " + hi + " <= " + shi + ")";
  };
  if (prefix == "eq" || prefix.empty()) {
    *sql = contained();
  } else if (prefix == "ne") {
    *sql = "NOT " + contained();
  } else if (prefix == "gt") {
    *sql = "(" + hi + " > " + b->Bind(PgTimestampParam(range->hi_us), "timestamptz") + ")";
  } else if (prefix == "lt") {
    *sql = "(" + lo + " < " + b->Bind(PgTimestampParam(range->lo_us), "timestamptz") + ")";
  } else if (prefix == "ge") {
    std::string above = hi + " > " + b->Bind(PgTimestampParam(range->hi_us), "timestamptz");
    *sql = "(" + above + " OR " + contained() + ")";
  } else if (prefix == "le") {
    std::string below = lo + " < " + b->Bind(PgTimestampParam(range->lo_us), "timestamptz");
    *sql = "(" + below + " OR " + contained() + ")";
  } else {
    return Status::NotSupported("_typeFilter: date prefix '" + prefix + "' is not supported");
  }
  return Status::OK();
}

// The ORed prefix tests of a date criterion's values against [lo, hi].
Status DateValuesCondition(const FilterCriterion& c, const std::string& lo, const std::string& hi,
                           Binder* b, std::string* sql) {
  if (!c.prefixes.empty() && c.prefixes.size() != c.values.size()) {
    return Status::InvalidArgument("_typeFilter: " + c.param + " has " +
                                   std::to_string(c.values.size()) + " values but " +
                                   std::to_string(c.prefixes.size()) + " prefixes");
  }
  std::string out = "(";
  for (size_t i = 0; i < c.values.size(); ++i) {
    std::string one;
    FHIRBULK_RETURN_IF_ERROR(
        DateCondition(c.prefixes.empty() ? "" : c.prefixes[i], c.values[i], lo, hi, b, &one));
    if (i > 0) out += " OR ";
    out += one;
  }
  *sql = out + ")";
  return Status::OK();
}

// "Type/id" keys for a reference value; a bare id stands for that id under each type the
// parameter may point at (BareIdTargetTypes: its declared R4 targets).
void AddReferenceKeys(const SearchParamDef& def, const std::string& value,
                      std::vector<std::string>* keys) {
  if (value.find('/') != std::string::npos) {
    keys->push_back(Key(def.code, value));
    return;
  }
  for (std::string_view type : BareIdTargetTypes(def)) {
    keys->push_back(Key(def.code, std::string(type) + "/" + value));
  }
}

Status CriterionSql(std::string_view type, const FilterCriterion& c, Binder* b, std::string* sql) {
  const SearchParamDef* def = FindSearchParam(type, c.param);
  if (def == nullptr) {
    return Status::NotSupported("_typeFilter: " + std::string(type) +
                                " has no supported search parameter '" + c.param + "'");
  }
  if (c.values.empty()) {
    return Status::InvalidArgument("_typeFilter: " + c.param + " has no value");
  }
  const SearchParamKind kind = def->kind;
  const bool tokenish = kind == SearchParamKind::kToken || kind == SearchParamKind::kUri;
  const auto unsupported_modifier = [&] {
    return Status::NotSupported("_typeFilter: modifier ':" + c.modifier +
                                "' is not supported for '" + c.param + "'");
  };

  if (c.modifier == "missing") {
    if (c.values.size() != 1 || (c.values[0] != "true" && c.values[0] != "false")) {
      return Status::InvalidArgument("_typeFilter: " + c.param + ":missing takes true or false");
    }
    std::string present;
    if (tokenish) {
      present = HasKeyOf("tokens", c.param, b);
    } else if (kind == SearchParamKind::kReference) {
      present = HasKeyOf("refs", c.param, b);
    } else if (kind == SearchParamKind::kDate) {
      present = "EXISTS (SELECT 1 FROM unnest(date_params) AS d(p) WHERE d.p = " +
                b->Bind(c.param, "text") + ")";
    } else {
      return unsupported_modifier();
    }
    *sql = c.values[0] == "true" ? "NOT " + present : present;
    return Status::OK();
  }
  if (!c.modifier.empty() && !(c.modifier == "not" && tokenish)) return unsupported_modifier();

  switch (kind) {
    case SearchParamKind::kToken:
    case SearchParamKind::kUri: {
      std::vector<std::string> keys;
      for (const std::string& v : c.values) keys.push_back(Key(c.param, v));
      const std::string match = Overlaps("tokens", keys, b);
      *sql = c.modifier == "not" ? "NOT " + match : match;
      return Status::OK();
    }
    case SearchParamKind::kReference: {
      std::vector<std::string> keys;
      for (const std::string& v : c.values) AddReferenceKeys(*def, v, &keys);
      *sql = Overlaps("refs", keys, b);
      return Status::OK();
    }
    case SearchParamKind::kId:
      *sql = "(res_id = ANY(" + b->Bind(PgTextArrayLiteral(c.values), "text[]") + "))";
      return Status::OK();
    case SearchParamKind::kLastUpdated:
      return DateValuesCondition(c, "last_updated", "last_updated", b, sql);
    case SearchParamKind::kDate: {
      const std::string param = b->Bind(c.param, "text");
      std::string values;
      FHIRBULK_RETURN_IF_ERROR(DateValuesCondition(c, "d.lo", "d.hi", b, &values));
      *sql =
          "EXISTS (SELECT 1 FROM unnest(date_params, date_lo, date_hi) AS d(p, lo, hi) "
          "WHERE d.p = " +
          param + " AND " + values + ")";
      return Status::OK();
    }
  }
  return Status::Internal("unknown search parameter kind");
}

}  // namespace

std::string PgTimestampParam(int64_t us) {
  if (us == std::numeric_limits<int64_t>::min()) return "-infinity";
  if (us == std::numeric_limits<int64_t>::max()) return "infinity";
  return FormatInstant(us);
}

size_t TypeFilterTermCount(const TypeFilterQuery& query) {
  if (query.criteria.empty()) return 1;
  size_t terms = 0;
  for (const FilterCriterion& c : query.criteria) {
    const SearchParamDef* def = FindSearchParam(query.type, c.param);
    if (c.modifier == "missing" || def == nullptr) {
      terms += 1;
    } else if (def->kind == SearchParamKind::kReference) {
      const size_t bare_expansion = BareIdTargetTypes(*def).size();
      for (const std::string& v : c.values) {
        terms += v.find('/') != std::string::npos ? 1 : bare_expansion;
      }
    } else {
      terms += c.values.size();
    }
  }
  return terms;
}

std::vector<TypeFilterQuery> TypeFilterQueriesFor(const std::vector<TypeFilterQuery>& all,
                                                  std::string_view type) {
  std::vector<TypeFilterQuery> out;
  for (const TypeFilterQuery& q : all) {
    if (q.type == type) out.push_back(q);
  }
  return out;
}

namespace {

Status Compile(const std::vector<TypeFilterQuery>& queries_for_type, Binder* binder,
               std::string* sql) {
  if (queries_for_type.empty()) {
    *sql = "TRUE";
    return Status::OK();
  }
  const std::string& type = queries_for_type[0].type;
  std::string out = "(";
  for (size_t qi = 0; qi < queries_for_type.size(); ++qi) {
    const TypeFilterQuery& q = queries_for_type[qi];
    if (q.type != type) {
      return Status::InvalidArgument("_typeFilter: queries for " + type + " and " + q.type +
                                     " cannot share one expression");
    }
    if (qi > 0) out += " OR ";
    if (q.criteria.empty()) {
      out += "TRUE";
      continue;
    }
    out += "(";
    for (size_t ci = 0; ci < q.criteria.size(); ++ci) {
      std::string criterion;
      FHIRBULK_RETURN_IF_ERROR(CriterionSql(type, q.criteria[ci], binder, &criterion));
      if (ci > 0) out += " AND ";
      out += criterion;
    }
    out += ")";
  }
  FHIRBULK_RETURN_IF_ERROR(binder->status());
  *sql = out + ")";
  return Status::OK();
}

}  // namespace

Status TypeFilterSql(const std::vector<TypeFilterQuery>& queries_for_type, int first_param_number,
                     std::string* sql, std::vector<std::string>* params) {
  std::vector<std::string> new_params;
  Binder binder(first_param_number, &new_params);
  FHIRBULK_RETURN_IF_ERROR(Compile(queries_for_type, &binder, sql));
  params->insert(params->end(), new_params.begin(), new_params.end());
  return Status::OK();
}

Status TypeFilterSqlLiteral(const std::vector<TypeFilterQuery>& queries_for_type,
                            PgConnection* conn, std::string* sql) {
  Binder binder(conn);
  return Compile(queries_for_type, &binder, sql);
}

}  // namespace fhirbulk
