// Query results as TextTables: the operator tools (`fhir-bulk jobs`, `audit`) print them, the
// operator API (server/ops_api.h) answers them as JSON, from the same queries
// (export/job_queries.h, auth/audit_query.h).

#ifndef FHIRBULK_DB_PG_TABLE_H_
#define FHIRBULK_DB_PG_TABLE_H_

#include <set>
#include <string>
#include <vector>

#include "db/pg.h"
#include "util/text_table.h"

namespace fhirbulk {

// Every column of `r`, named as the query names them; columns in `numeric` are numbers.
inline TextTable TableFromResult(const PgResult& r, const std::set<std::string>& numeric = {}) {
  TextTable t;
  for (int c = 0; c < r.columns(); c++) {
    const std::string name = PQfname(r.raw(), c);
    t.AddColumn(name, numeric.count(name) > 0);
  }
  for (int i = 0; i < r.rows(); i++) {
    std::vector<TextTable::Cell> cells;
    cells.reserve(static_cast<size_t>(r.columns()));
    for (int c = 0; c < r.columns(); c++) {
      cells.push_back(r.is_null(i, c) ? TextTable::Cell() : TextTable::Cell(r.str(i, c)));
    }
    t.AddRow(std::move(cells));
  }
  return t;
}

// A timestamptz column as UTC ISO 8601 (seconds), for SELECT lists.
inline std::string SqlUtc(const std::string& column) {
  return "to_char(" + column + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";
}

}  // namespace fhirbulk

#endif  // FHIRBULK_DB_PG_TABLE_H_
