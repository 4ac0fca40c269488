// TextTable: rows of named columns for the operator tools (`fhir-bulk jobs`, `audit`), printed
// as an aligned text table, CSV (RFC 4180) or JSON (an array of objects).
//
// Cells are text or NULL; a column marked numeric is written to JSON as a number (its cells
// must then be decimal numbers, or NULL). Text from the database may hold anything a client
// once sent: the table escapes bytes outside printable ASCII (\xNN, as log lines do) so that a
// value cannot move the terminal's cursor or forge rows; CSV and JSON quote it as their
// formats say (JSON: \u escapes; invalid UTF-8 bytes become \u00NN of the byte, never raw).
//
// Thread-safety: plain values.

#ifndef FHIRBULK_UTIL_TEXT_TABLE_H_
#define FHIRBULK_UTIL_TEXT_TABLE_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace fhirbulk {

enum class TableFormat { kTable, kCsv, kJson };

// "table", "csv" or "json"; InvalidArgument otherwise.
Result<TableFormat> ParseTableFormat(std::string_view name);

class TextTable {
 public:
  using Cell = std::optional<std::string>;  // nullopt: NULL

  // Adds a column; numeric columns are JSON numbers and right-aligned in tables.
  void AddColumn(std::string name, bool numeric = false);
  // A row with one cell per column (missing cells are NULL, extra ones dropped).
  void AddRow(std::vector<Cell> cells);

  size_t rows() const { return rows_.size(); }

  std::string Render(TableFormat format) const;
  // Columns padded to their widest cell, a header line, NULL shown as "-". Cells longer than
  // max_cell_width are cut with "..." (0: never).
  std::string RenderTable(size_t max_cell_width = 0) const;
  std::string RenderCsv() const;
  std::string RenderJson() const;
  // One row as a JSON object (no trailing newline).
  std::string RenderJsonRow(size_t row) const;

 private:
  std::vector<std::string> names_;
  std::vector<bool> numeric_;
  std::vector<std::vector<Cell>> rows_;
};

// `s` as a JSON string literal, quotes included.
std::string JsonQuote(std::string_view s);

}  // namespace fhirbulk

#endif  // FHIRBULK_UTIL_TEXT_TABLE_H_
