#include "util/text_table.h"

#include <cstdio>

namespace fhirbulk {
namespace {

std::string TableEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

// Length of the valid UTF-8 sequence at s[i], or 0.
size_t Utf8Length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; k++) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
  }
  if (n == 2 && c < 0xc2) return 0;                       // overlong
  if (n == 3 && c == 0xe0 && b(i + 1) < 0xa0) return 0;   // overlong
  if (n == 3 && c == 0xed && b(i + 1) >= 0xa0) return 0;  // surrogates
  if (n == 4 && (c > 0xf4 || (c == 0xf0 && b(i + 1) < 0x90) || (c == 0xf4 && b(i + 1) >= 0x90))) {
    return 0;
  }
  return n;
}

bool IsJsonNumber(std::string_view s) {
  if (s.empty()) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  bool digits = false, dot = false;
  for (; i < s.size(); i++) {
    if (s[i] >= '0' && s[i] <= '9') {
      digits = true;
    } else if (s[i] == '.' && !dot && digits) {
      dot = true;
    } else {
      return false;
    }
  }
  return digits && s.back() != '.';
}

}  // namespace

Result<TableFormat> ParseTableFormat(std::string_view name) {
  if (name == "table") return TableFormat::kTable;
  if (name == "csv") return TableFormat::kCsv;
  if (name == "json") return TableFormat::kJson;
  return Status::InvalidArgument("--format must be table, csv or json");
}

void TextTable::AddColumn(std::string name, bool numeric) {
  names_.push_back(std::move(name));
  numeric_.push_back(numeric);
}

void TextTable::AddRow(std::vector<Cell> cells) {
  cells.resize(names_.size());
  rows_.push_back(std::move(cells));
}

std::string TextTable::Render(TableFormat format) const {
  switch (format) {
    case TableFormat::kCsv:
      return RenderCsv();
    case TableFormat::kJson:
      return RenderJson();
    case TableFormat::kTable:
      break;
  }
  return RenderTable();
}

std::string TextTable::RenderTable(size_t max_cell_width) const {
  const size_t n = names_.size();
  std::vector<std::vector<std::string>> text(rows_.size() + 1);
  for (size_t c = 0; c < n; c++) text[0].push_back(names_[c]);
  for (size_t r = 0; r < rows_.size(); r++) {
    for (size_t c = 0; c < n; c++) {
      std::string t = rows_[r][c] ? TableEscape(*rows_[r][c]) : "-";
      if (max_cell_width > 3 && t.size() > max_cell_width) {
        t.resize(max_cell_width - 3);
        t += "...";
      }
      text[r + 1].push_back(std::move(t));
    }
  }
  std::vector<size_t> width(n, 0);
  for (const auto& row : text) {
    for (size_t c = 0; c < n; c++) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : text) {
    std::string line;
    for (size_t c = 0; c < n; c++) {
      const size_t pad = width[c] - row[c].size();
      const bool last = c + 1 == n;
      if (c > 0) line += "  ";
      if (numeric_[c]) line.append(pad, ' ');
      line += row[c];
      if (!numeric_[c] && !last) line.append(pad, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  }
  return out;
}

std::string TextTable::RenderCsv() const {
  const auto field = [](std::string_view s) {
    if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
    std::string q = "\"";
    for (char ch : s) {
      if (ch == '"') q += '"';
      q += ch;
    }
    q += '"';
    return q;
  };
  std::string out;
  for (size_t c = 0; c < names_.size(); c++) {
    if (c > 0) out += ',';
    out += field(names_[c]);
  }
  out += "\r\n";
  for (const auto& row : rows_) {
    for (size_t c = 0; c < names_.size(); c++) {
      if (c > 0) out += ',';
      if (row[c]) out += field(*row[c]);  // NULL: an empty field
    }
    out += "\r\n";
  }
  return out;
}

std::string TextTable::RenderJsonRow(size_t r) const {
  std::string out = "{";
  for (size_t c = 0; c < names_.size(); c++) {
    if (c > 0) out += ", ";
    out += JsonQuote(names_[c]);
    out += ": ";
    const Cell& cell = rows_[r][c];
    if (!cell) {
      out += "null";
    } else if (numeric_[c] && IsJsonNumber(*cell)) {
      out += *cell;
    } else {
      out += JsonQuote(*cell);
    }
  }
  out += "}";
  return out;
}

std::string TextTable::RenderJson() const {
  std::string out = "[";
  for (size_t r = 0; r < rows_.size(); r++) {
    out += r == 0 ? "\n  " : ",\n  ";
    out += RenderJsonRow(r);
  }
  out += rows_.empty() ? "]\n" : "\n]\n";
  return out;
}

std::string JsonQuote(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t len = Utf8Length(s, i);
    char buf[8];
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f || len == 0) {
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out.append(s.substr(i, len));
      i += len;
      continue;
    }
    i++;
  }
  out += '"';
  return out;
}

}  // namespace fhirbulk
