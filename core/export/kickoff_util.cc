#include "export/kickoff_util.h"

#include <algorithm>
#include <utility>

namespace fhirbulk {
namespace kickoff {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  return out;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t end = s.find(sep, start);
    if (end == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

std::string Quoted(std::string_view s) {
  constexpr size_t kMaxQuoted = 200;
  if (s.size() <= kMaxQuoted) return "'" + std::string(s) + "'";
  size_t cut = kMaxQuoted;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return "'" + std::string(s.substr(0, cut)) + "...' (" + std::to_string(s.size()) + " bytes)";
}

std::string OverLimit(size_t limit, std::string_view what) {
  return "over the limit of " + std::to_string(limit) + " " + std::string(what);
}

bool Contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

void AddUnique(std::vector<std::string>* v, std::string s) {
  if (!Contains(*v, s)) v->push_back(std::move(s));
}

bool LooksLikeTypeName(std::string_view s) {
  if (s.empty() || !(s[0] >= 'A' && s[0] <= 'Z')) return false;
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) return false;
  }
  return true;
}

Status Leniency::Unsupported(std::string_view param, std::string message) {
  if (!lenient_) return Status::NotSupported(std::move(message));
  Record("warning", "not-supported", "ignored (Prefer: handling=lenient): " + message, param);
  return Status::OK();
}

Status Leniency::TooCostly(std::string_view param, std::string message) {
  if (!lenient_) return Status::InvalidArgument(std::move(message));
  Record("warning", "too-costly", "ignored (Prefer: handling=lenient): " + message, param);
  return Status::OK();
}

void Leniency::Record(std::string severity, std::string code, std::string diagnostics,
                      std::string_view param) {
  if (ignored_->size() > max_issues_) return;
  OutcomeIssue issue;
  issue.severity = std::move(severity);
  issue.code = std::move(code);
  issue.expression = std::string(param);
  if (ignored_->size() == max_issues_) {
    issue.severity = "warning";
    issue.code = "too-costly";
    issue.diagnostics =
        "more issues were found; only the first " + std::to_string(max_issues_) + " are listed";
    issue.expression.clear();
  } else {
    issue.diagnostics = std::move(diagnostics);
  }
  ignored_->push_back(std::move(issue));
}

}  // namespace kickoff
}  // namespace fhirbulk
