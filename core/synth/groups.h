// Groups of the synthetic population, for Group-level ($export) exports.
//
// A group list is given as text: comma-separated items, each "all" (every patient), "P%"
// (each patient independently with probability P/100, so about P% of them; patient k's
// membership does not depend on N), or "small" (about 20 patients, a third of them `inactive`,
// every member with an enrollment `period`, ended for the inactive ones); "none" for no group.
// All are Group.type person, actual true, with member.entity references to existing Patients.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_SYNTH_GROUPS_H_
#define FHIRBULK_SYNTH_GROUPS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "synth/json_out.h"
#include "synth/sink.h"
#include "util/status.h"

namespace fhirbulk {
namespace synth {

struct GroupSpec {
  enum class Type { kAll, kFraction, kSmall };
  Type type = Type::kAll;
  double fraction = 1.0;  // kFraction: probability of membership
  std::string label;      // the item as written ("10%")
};

constexpr char kDefaultGroups[] = "all,10%,1%,small";

Result<std::vector<GroupSpec>> ParseGroupSpecs(const std::string& text);

// Writes one Group per spec, for a population of `patients` patients.
Status WriteGroups(uint64_t seed, uint64_t patients, const std::vector<GroupSpec>& specs,
                   ResourceSink* sink);

}  // namespace synth
}  // namespace fhirbulk

#endif  // FHIRBULK_SYNTH_GROUPS_H_
