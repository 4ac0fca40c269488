// SMART system scopes (../shared/spec/smart-backend-services.md section 9): parsing,
// intersection with a client's pre-authorization, and what they let a client read.
//
// Accepted: "system/<Type|*>.<perm>" where <perm> is v1 "read" or v2 letters from "rs" in
// that order ("r", "s", "rs"). Type is an R4 resource type. The one writable type is Group
// (the Group API, server/group_api.h): "system/Group.write" (v1, = c u d) and v2 letters
// from "cruds" in that order ("system/Group.cud", "system/Group.cruds"). Refused
// (InvalidArgument naming the scope): patient/ and user/ scopes, unknown resource types,
// v1 "write" and "*" and v2 c/u/d letters on any other type or on "*" (a write scope must
// never be read loosely), letters out of order or repeated, search-parameter suffixes
// ("?category=..."), and anything else.
// Other tokens (e.g. "openid") are refused too: a backend service has no use for them.
//
// Operator scopes (the operator console, server/ops_api.h), held apart from the system ones
// (they grant no resource access): "operator/<area>.read" for area jobs, clients, audit,
// stats or "*" (all four), and "operator/clients.write" (enable and disable clients). Only a
// client registered as an operator (`fhir-bulk client add --operator`; sql/0015) may have
// them in its allowed scopes, so only such a client is ever granted one.
//
// A ScopeSet is a union: each entry grants letters on one type or on every type ("*").
// Export needs "r" (reading the resources; "s" alone does not allow it).
//
// Thread-safety: values.

#ifndef FHIRBULK_AUTH_SCOPES_H_
#define FHIRBULK_AUTH_SCOPES_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace fhirbulk {

enum ScopeLetter : uint8_t {
  kScopeRead = 1,
  kScopeSearch = 2,
  kScopeCreate = 4,  // Group only
  kScopeUpdate = 8,
  kScopeDelete = 16
};
// Operator permissions (bits of ScopeSet::operator_bits()).
enum OperatorScope : uint8_t {
  kOperatorJobsRead = 1,
  kOperatorClientsRead = 2,
  kOperatorAuditRead = 4,
  kOperatorStatsRead = 8,
  kOperatorClientsWrite = 16,
};
inline constexpr uint8_t kOperatorAllRead =
    kOperatorJobsRead | kOperatorClientsRead | kOperatorAuditRead | kOperatorStatsRead;
// The only type write letters may be granted on.
inline constexpr std::string_view kWritableScopeType = "Group";

struct Scope {
  std::string type;     // an R4 type or "*"
  uint8_t letters = 0;  // ScopeLetter bits
  bool v1 = false;      // written "read"/"write" (shown back in v1 syntax)
};

class ScopeSet {
 public:
  static Result<ScopeSet> Parse(std::string_view space_separated);

  // What `requested` may have of `allowed`: per type the common letters, the more specific
  // type when one side is "*". Entries left with no letter are dropped; v1 spelling is kept
  // where the requested scope used it and the grant is still whole ("rs").
  static ScopeSet Intersect(const ScopeSet& requested, const ScopeSet& allowed);

  bool empty() const { return scopes_.empty() && operator_bits_ == 0; }
  const std::vector<Scope>& scopes() const { return scopes_; }

  // True when some entry grants "r" on `type` or on "*".
  bool CanRead(std::string_view type) const;
  // True when "r" is granted on "*".
  bool CanReadAll() const;
  // True when some entry grants every bit of `letters` on `type` (or "*", for r/s), letters
  // counted across entries.
  bool Grants(std::string_view type, uint8_t letters) const;

  // OperatorScope bits granted.
  uint8_t operator_bits() const { return operator_bits_; }
  bool GrantsOperator(uint8_t bits) const { return (operator_bits_ & bits) == bits; }

  // Space-separated, in a canonical order (wildcard first, then types alphabetically).
  std::string ToString() const;

 private:
  void Add(Scope s);  // merges with an entry of the same type
  std::vector<Scope> scopes_;
  uint8_t operator_bits_ = 0;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_AUTH_SCOPES_H_
