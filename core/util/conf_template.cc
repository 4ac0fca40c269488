#include "util/conf_template.h"

#include <vector>

namespace fhirbulk {
namespace {

bool IsNameStart(char c) { return c >= 'A' && c <= 'Z'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9') || c == '_'; }

bool IsName(std::string_view s) {
  if (s.empty() || !IsNameStart(s[0])) return false;
  for (char c : s) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

// Calls fn(name, begin, end) for each placeholder of `line`, [begin, end) covering @NAME@.
template <typename Fn>
void ForEachPlaceholder(std::string_view line, Fn fn) {
  size_t i = 0;
  while ((i = line.find('@', i)) != std::string_view::npos) {
    size_t j = i + 1;
    while (j < line.size() && IsNameChar(line[j])) j++;
    if (j < line.size() && line[j] == '@' && IsName(line.substr(i + 1, j - i - 1))) {
      fn(std::string(line.substr(i + 1, j - i - 1)), i, j + 1);
      i = j + 1;
    } else {
      i++;
    }
  }
}

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size() - 1;
    lines.push_back(text.substr(start, nl - start + 1));  // with its '\n', if any
    start = nl + 1;
  }
  return lines;
}

bool IsComment(std::string_view line) {
  const size_t first = line.find_first_not_of(" \t");
  return first != std::string_view::npos && line[first] == '#';
}

}  // namespace

std::set<std::string> TemplatePlaceholders(std::string_view text) {
  std::set<std::string> names;
  for (std::string_view line : Lines(text)) {
    if (IsComment(line)) continue;
    ForEachPlaceholder(line, [&](const std::string& name, size_t, size_t) { names.insert(name); });
  }
  return names;
}

Status CheckTemplateValue(std::string_view name, std::string_view value) {
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f || c == ';' || c == '{' || c == '}' || c == '#' || c == '"' ||
        c == '\'') {
      return Status::InvalidArgument(std::string(name) +
                                     ": a value may not hold control characters nor ; { } # \" '");
    }
  }
  return Status::OK();
}

Status ParseTemplateAssignment(std::string_view assignment,
                               std::map<std::string, std::string>* values) {
  const size_t eq = assignment.find('=');
  if (eq == std::string_view::npos || !IsName(assignment.substr(0, eq))) {
    return Status::InvalidArgument("'" + std::string(assignment.substr(0, 64)) +
                                   "' is not NAME=VALUE (NAME in capitals, as in @NAME@)");
  }
  std::string name(assignment.substr(0, eq));
  if (!values->emplace(name, std::string(assignment.substr(eq + 1))).second) {
    return Status::InvalidArgument(name + " is given twice");
  }
  return Status::OK();
}

Result<std::string> RenderTemplate(std::string_view text,
                                   const std::map<std::string, std::string>& values) {
  const std::set<std::string> used = TemplatePlaceholders(text);
  std::string missing;
  for (const std::string& name : used) {
    if (values.count(name) == 0) missing += (missing.empty() ? "" : ", ") + name;
  }
  if (!missing.empty()) return Status::InvalidArgument("no value for " + missing);
  for (const auto& [name, value] : values) {
    if (used.count(name) == 0) {
      return Status::InvalidArgument(name + " is not a placeholder of the template");
    }
    FHIRBULK_RETURN_IF_ERROR(CheckTemplateValue(name, value));
  }
  std::string out;
  out.reserve(text.size());
  for (std::string_view line : Lines(text)) {
    if (IsComment(line)) {  // the template's own documentation of its placeholders
      out.append(line);
      continue;
    }
    bool drop = false;
    std::string rendered;
    size_t last = 0;
    ForEachPlaceholder(line, [&](const std::string& name, size_t begin, size_t end) {
      const std::string& value = values.at(name);
      if (value.empty()) drop = true;
      rendered.append(line.substr(last, begin - last));
      rendered += value;
      last = end;
    });
    if (drop) continue;
    rendered.append(line.substr(last));
    out += rendered;
  }
  return out;
}

}  // namespace fhirbulk
