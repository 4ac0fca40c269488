// _typeFilter queries as a SQL boolean expression over one `resource` row (sql/0001), for the
// export's per-type SELECT: `... WHERE res_type = $1 AND <expression>`.
//
// Contract:
//  - Queries of the type are ORed, the criteria of a query ANDed, the values of a criterion
//    ORed (FHIR search). A query without criteria is TRUE; no queries at all is TRUE.
//  - No value is ever spliced into the SQL as raw text. Two modes:
//      bound    (TypeFilterSql): typed placeholders numbered from `first_param_number`
//               ($n::text, $n::text[], $n::timestamptz); `params` receives their text values
//               in order (appended). Each placeholder is used, so PostgreSQL can infer every
//               parameter's type.
//      literal  (TypeFilterSqlLiteral), for statements that take no parameters (the worker's
//               COPY): each value is quoted by libpq as it is added (PgConnection::Literal)
//               and typed the same way ('v'::text, ...). Same expression, same results.
//    A value holding a NUL byte is InvalidArgument in both modes (libpq would cut it).
//  - The expression is two-valued (never NULL, even on rows whose arrays are NULL), so it
//    may be negated or combined freely. Positive token/reference tests are `col && $n`
//    (GIN-indexable, sql/0001 resource_tokens / resource_refs) for up to 32 keys; with more,
//    `EXISTS (SELECT 1 FROM unnest(col) AS k(v) WHERE k.v = ANY($n))`, whose cost does not
//    grow with the number of keys (&& compares every pair; see Overlaps in the .cc).
//  - Per kind (keys as fhir/search_params.h and fhir/resource_index.h store them):
//      token, uri   tokens && {"p=" + value ...}   (value: code, system|code, |code, system|)
//      :not         NOT (tokens && {...}): also true for rows without any value of p
//                   (FHIR :not); several values mean "none of them".
//      reference    refs && {"p=Type/id" ...}; a bare id (a parameter with several target
//                   types) matches that id under each of the parameter's declared R4
//                   target types (every R4 type only where R4 declares "Any").
//      :missing     true: no tokens/refs/date value of p; false: at least one.
//      _id          res_id = ANY($n::text[])
//      _lastUpdated last_updated compared as the range [t, t]
//      date         EXISTS a (p, lo, hi) in unnest(date_params, date_lo, date_hi) that matches
//                   one of the values.
//  - Date prefixes follow FHIR R4 search (§3.1.1.4), with S = [slo, shi] the range the
//    search value covers (ParseDateTimeRange: "2023" covers the whole year) and
//    T = [lo, hi] the resource value's range (inclusive, microseconds):
//      eq  S contains T:                 lo >= slo AND hi <= shi
//      ne  not eq:                       NOT (lo >= slo AND hi <= shi)
//      gt  the range above S meets T:    hi > shi
//      lt  the range below S meets T:    lo < slo
//      ge  gt or eq:                     hi > shi OR (lo >= slo AND hi <= shi)
//      le  lt or eq:                     lo < slo OR (lo >= slo AND hi <= shi)
//    A resource with several values of p matches when one of them does (ne included).
//    Unbounded ends (INT64_MIN / INT64_MAX in the index) are -infinity / infinity in SQL.
//  - Errors: InvalidArgument when the queries are not all of one type, a criterion has no
//    values, or a value is malformed (or, in literal mode, cannot be quoted); NotSupported for a
//    parameter or modifier the table or this translator does not support. ParseExportRequest
//    already rejects all of these, so for a parsed request this only fails on corrupted input.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_EXPORT_TYPE_FILTER_SQL_H_
#define FHIRBULK_EXPORT_TYPE_FILTER_SQL_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "db/pg.h"
#include "export/export_request.h"
#include "util/status.h"

namespace fhirbulk {

// The queries of `all` whose type is `type`, in order.
std::vector<TypeFilterQuery> TypeFilterQueriesFor(const std::vector<TypeFilterQuery>& all,
                                                  std::string_view type);

// The number of terms TypeFilterSql compiles `query` into: one per array key (a bare
// reference id counts once per target type it expands to), id or date value; one for a
// :missing test or a query without criteria. The kick-off bounds the sum of this over a
// request's queries, so a filter's SQL cost is known before any SQL is built.
size_t TypeFilterTermCount(const TypeFilterQuery& query);

// Bound mode. REQUIRES: first_param_number >= 1.
// Sets *sql to the expression and appends its parameter values to *params (nothing on error).
Status TypeFilterSql(const std::vector<TypeFilterQuery>& queries_for_type, int first_param_number,
                     std::string* sql, std::vector<std::string>* params);

// Literal mode: values quoted by `conn` (its encoding decides the escaping).
Status TypeFilterSqlLiteral(const std::vector<TypeFilterQuery>& queries_for_type,
                            PgConnection* conn, std::string* sql);

// A timestamptz parameter value: FormatInstant, or -infinity / infinity for INT64_MIN / MAX.
std::string PgTimestampParam(int64_t us);

}  // namespace fhirbulk

#endif  // FHIRBULK_EXPORT_TYPE_FILTER_SQL_H_
