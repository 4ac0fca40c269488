#include "auth/scopes.h"

#include <algorithm>

#include "fhir/resource_types.h"
#include "util/log_escape.h"

namespace fhirbulk {
namespace {

constexpr std::string_view kSystemPrefix = "system/";
constexpr uint8_t kWholeRead = kScopeRead | kScopeSearch;
constexpr uint8_t kWholeWrite = kScopeCreate | kScopeUpdate | kScopeDelete;

uint8_t LetterBit(char c) {
  switch (c) {
    case 'c':
      return kScopeCreate;
    case 'r':
      return kScopeRead;
    case 'u':
      return kScopeUpdate;
    case 'd':
      return kScopeDelete;
    default:
      return kScopeSearch;
  }
}

Status Refuse(std::string_view scope, const std::string& why) {
  return Status::InvalidArgument("scope '" + LogEscape(scope) + "': " + why);
}

constexpr std::string_view kOperatorPrefix = "operator/";

// "operator/<area>.read" or "operator/clients.write" as OperatorScope bits; 0 when refused.
uint8_t ParseOperator(std::string_view rest) {
  if (rest == "*.read") return kOperatorAllRead;
  if (rest == "jobs.read") return kOperatorJobsRead;
  if (rest == "clients.read") return kOperatorClientsRead;
  if (rest == "audit.read") return kOperatorAuditRead;
  if (rest == "stats.read") return kOperatorStatsRead;
  if (rest == "clients.write") return kOperatorClientsWrite;
  return 0;
}

Result<Scope> ParseOne(std::string_view text) {
  if (text.rfind("patient/", 0) == 0 || text.rfind("user/", 0) == 0) {
    return Refuse(text, "only system/ scopes are available to backend services");
  }
  if (text.rfind(kSystemPrefix, 0) != 0) return Refuse(text, "not a SMART system scope");
  std::string_view rest = text.substr(kSystemPrefix.size());
  if (rest.find('?') != std::string_view::npos) {
    return Refuse(text, "search-parameter restrictions in scopes are not supported");
  }
  size_t dot = rest.rfind('.');
  if (dot == std::string_view::npos) return Refuse(text, "expected <type>.<permission>");
  Scope s;
  s.type = std::string(rest.substr(0, dot));
  std::string_view perm = rest.substr(dot + 1);
  if (s.type != "*" && !IsR4ResourceType(s.type)) {
    return Refuse(text, "unknown resource type '" + LogEscape(s.type) + "'");
  }
  const bool writable = s.type == kWritableScopeType;
  if (perm == "read") {
    s.letters = kWholeRead;
    s.v1 = true;
  } else if (perm == "write" && writable) {
    s.letters = kWholeWrite;
    s.v1 = true;
  } else if (perm == "write" || perm == "*") {
    return Refuse(text, "write access is not available (this server only exports)");
  } else if (perm == "r" || perm == "s" || perm == "rs") {
    for (char c : perm) s.letters |= c == 'r' ? kScopeRead : kScopeSearch;
  } else if (!perm.empty() && perm.find_first_not_of("cruds") == std::string_view::npos) {
    // Valid-looking v2 letters: in order they include a write letter; out of order they are
    // malformed. Either way never read them loosely.
    bool ordered = std::is_sorted(perm.begin(), perm.end(), [](char a, char b) {
      return std::string_view("cruds").find(a) < std::string_view("cruds").find(b);
    });
    if (!ordered || std::adjacent_find(perm.begin(), perm.end()) != perm.end()) {
      return Refuse(text, "permission letters must be a subset of \"cruds\" in that order");
    }
    if (writable) {
      for (char c : perm) s.letters |= LetterBit(c);
      return s;
    }
    return Refuse(text, "write access (c, u, d) is not available (this server only exports)");
  } else {
    return Refuse(text, "unknown permission '" + LogEscape(perm) + "'");
  }
  return s;
}

std::string Format(const Scope& s) {
  std::string out = std::string(kSystemPrefix) + s.type + ".";
  if (s.v1 && s.letters == kWholeRead) return out + "read";
  if (s.v1 && s.letters == kWholeWrite) return out + "write";
  if (s.v1 && s.letters == (kWholeRead | kWholeWrite)) return out + "read " + out + "write";
  for (char c : std::string_view("cruds")) {
    if (s.letters & LetterBit(c)) out += c;
  }
  return out;
}

}  // namespace

Result<ScopeSet> ScopeSet::Parse(std::string_view text) {
  ScopeSet set;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ') {
      i++;
      continue;
    }
    size_t end = text.find(' ', i);
    if (end == std::string_view::npos) end = text.size();
    std::string_view word = text.substr(i, end - i);
    if (word.rfind(kOperatorPrefix, 0) == 0) {
      uint8_t bits = ParseOperator(word.substr(kOperatorPrefix.size()));
      if (bits == 0) {
        return Refuse(word,
                      "unknown operator scope (operator/<jobs|clients|audit|stats|*>.read, "
                      "operator/clients.write)");
      }
      set.operator_bits_ |= bits;
      i = end;
      continue;
    }
    auto one = ParseOne(word);
    if (!one.ok()) return one.status();
    set.Add(std::move(one).value());
    i = end;
  }
  return set;
}

void ScopeSet::Add(Scope s) {
  for (Scope& have : scopes_) {
    if (have.type == s.type) {
      have.letters |= s.letters;
      have.v1 = have.v1 && s.v1;
      return;
    }
  }
  scopes_.push_back(std::move(s));
}

ScopeSet ScopeSet::Intersect(const ScopeSet& requested, const ScopeSet& allowed) {
  ScopeSet out;
  out.operator_bits_ = requested.operator_bits_ & allowed.operator_bits_;
  for (const Scope& q : requested.scopes_) {
    for (const Scope& a : allowed.scopes_) {
      if (q.type != "*" && a.type != "*" && q.type != a.type) continue;
      Scope s;
      s.type = q.type == "*" ? a.type : q.type;
      s.letters = q.letters & a.letters;
      s.v1 = q.v1;
      if (s.letters != 0) out.Add(std::move(s));
    }
  }
  // A type entry whose letters a wildcard entry already grants adds nothing.
  uint8_t all = 0;
  for (const Scope& s : out.scopes_) {
    if (s.type == "*") all = s.letters;
  }
  out.scopes_.erase(
      std::remove_if(out.scopes_.begin(), out.scopes_.end(),
                     [all](const Scope& s) { return s.type != "*" && (s.letters & ~all) == 0; }),
      out.scopes_.end());
  return out;
}

bool ScopeSet::CanRead(std::string_view type) const {
  for (const Scope& s : scopes_) {
    if ((s.type == "*" || s.type == type) && (s.letters & kScopeRead)) return true;
  }
  return false;
}

bool ScopeSet::CanReadAll() const { return CanRead("*"); }

bool ScopeSet::Grants(std::string_view type, uint8_t letters) const {
  uint8_t have = 0;
  for (const Scope& s : scopes_) {
    if (s.type == type || (s.type == "*" && (letters & kWholeWrite) == 0)) have |= s.letters;
  }
  return (have & letters) == letters;
}

std::string ScopeSet::ToString() const {
  std::vector<const Scope*> sorted;
  for (const Scope& s : scopes_) sorted.push_back(&s);
  std::sort(sorted.begin(), sorted.end(), [](const Scope* a, const Scope* b) {
    if ((a->type == "*") != (b->type == "*")) return a->type == "*";
    return a->type < b->type;
  });
  std::string out;
  for (const Scope* s : sorted) {
    if (!out.empty()) out += ' ';
    out += Format(*s);
  }
  // Operator scopes last, in a fixed order; the four reads together as "*".
  const uint8_t ops = operator_bits_;
  const auto add = [&out](std::string_view name) {
    if (!out.empty()) out += ' ';
    out += kOperatorPrefix;
    out += name;
  };
  if ((ops & kOperatorAllRead) == kOperatorAllRead) {
    add("*.read");
  } else {
    if (ops & kOperatorAuditRead) add("audit.read");
    if (ops & kOperatorClientsRead) add("clients.read");
    if (ops & kOperatorJobsRead) add("jobs.read");
    if (ops & kOperatorStatsRead) add("stats.read");
  }
  if (ops & kOperatorClientsWrite) add("clients.write");
  return out;
}

}  // namespace fhirbulk
