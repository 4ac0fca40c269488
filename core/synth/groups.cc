#include "synth/groups.h"

#include <cstdlib>

#include "synth/clock.h"
#include "synth/fhir_json.h"
#include "synth/ids.h"
#include "synth/patient.h"
#include "synth/prng.h"
#include "synth/records.h"
#include "util/strings.h"

namespace fhirbulk {
namespace synth {

namespace {

constexpr uint64_t kSmallGroupSize = 20;

void WriteMember(JsonOut* j, const Uuid& patient, int64_t start, int64_t end, bool inactive) {
  j->BeginObject();
  j->Key("entity");
  Reference(j, "Patient", patient);
  if (start != 0) {
    j->Key("period");
    j->BeginObject();
    j->Key("start");
    Date(j, start);
    if (end != 0) {
      j->Key("end");
      Date(j, end);
    }
    j->EndObject();
  }
  if (inactive) j->KeyBool("inactive", true);
  j->EndObject();
}

}  // namespace

Result<std::vector<GroupSpec>> ParseGroupSpecs(const std::string& text) {
  std::vector<GroupSpec> specs;
  std::string t(Trim(text));
  if (t == "none" || t.empty()) return specs;
  size_t start = 0;
  while (start <= t.size()) {
    size_t comma = t.find(',', start);
    if (comma == std::string::npos) comma = t.size();
    std::string item(Trim(std::string_view(t).substr(start, comma - start)));
    GroupSpec spec;
    spec.label = item;
    if (item == "all") {
      spec.type = GroupSpec::Type::kAll;
    } else if (item == "small") {
      spec.type = GroupSpec::Type::kSmall;
    } else if (item.size() > 1 && item.back() == '%') {
      char* end = nullptr;
      double pct = std::strtod(item.c_str(), &end);
      if (end != item.c_str() + item.size() - 1 || !(pct > 0 && pct <= 100)) {
        return Status::InvalidArgument("bad group '" + item + "': want a percentage in (0, 100]");
      }
      spec.type = GroupSpec::Type::kFraction;
      spec.fraction = pct / 100.0;
    } else {
      return Status::InvalidArgument("bad group '" + item + "': want all, small, P% or none");
    }
    specs.push_back(spec);
    start = comma + 1;
  }
  return specs;
}

Status WriteGroups(uint64_t seed, uint64_t patients, const std::vector<GroupSpec>& specs,
                   ResourceSink* sink) {
  JsonOut j;
  for (size_t g = 0; g < specs.size(); g++) {
    const GroupSpec& spec = specs[g];
    Rng rng(seed, Stream::kGroup, g);
    Uuid id = NewUuid(&rng);
    std::string name;
    switch (spec.type) {
      case GroupSpec::Type::kAll:
        name = "All synthetic patients";
        break;
      case GroupSpec::Type::kFraction:
        name = "Synthetic cohort: " + spec.label + " sample";
        break;
      case GroupSpec::Type::kSmall:
        name = "Synthetic study group with enrollment periods";
        break;
    }
    int64_t updated = SimulationEnd() - rng.Range(kSecondsPerDay, 30 * kSecondsPerDay);

    // Members first, into a separate buffer, to know the quantity.
    JsonOut members;
    uint64_t count = 0;
    if (spec.type == GroupSpec::Type::kSmall) {
      // Selection sampling (Knuth's algorithm S): k of N in index order, O(N) time, O(1) memory.
      uint64_t want = patients < kSmallGroupSize ? patients : kSmallGroupSize;
      for (uint64_t k = 0; k < patients && count < want; k++) {
        if (rng.Below(patients - k) >= want - count) continue;
        int64_t enrolled =
            DetailedHistoryStart() + static_cast<int64_t>(rng.Below(8 * kSecondsPerYear));
        bool inactive = rng.Chance(1.0 / 3);
        int64_t left = inactive ? enrolled + rng.Range(90, 720) * kSecondsPerDay : 0;
        WriteMember(&members, PatientId(seed, k), enrolled, left, inactive);
        count++;
      }
    } else {
      // Membership of patient k depends only on (seed, group, k): the same whatever N is.
      double scaled = spec.fraction * 18446744073709551616.0;  // fraction * 2^64
      uint64_t threshold = scaled >= 18446744073709551615.0 ? ~0ULL : static_cast<uint64_t>(scaled);
      for (uint64_t k = 0; k < patients; k++) {
        if (spec.type != GroupSpec::Type::kAll && Mix3(seed, 0x67726f7570ULL + g, k) >= threshold) {
          continue;
        }
        WriteMember(&members, PatientId(seed, k), 0, 0, false);
        count++;
      }
    }

    j.Clear();
    BeginResource(&j, "Group", id, updated, static_cast<int>(rng.Below(1000)));
    j.Key("identifier");
    j.BeginArray();
    j.BeginObject();
    j.KeyPlain("system", "http://example.org/fhir-bulk/synth/group");
    j.KeyString("value", spec.label);
    j.EndObject();
    j.EndArray();
    j.KeyBool("active", true);
    j.KeyPlain("type", "person");
    j.KeyBool("actual", true);
    j.KeyString("name", name);
    j.KeyInt("quantity", static_cast<int64_t>(count));
    if (count > 0) {
      j.Key("member");
      j.BeginArray();
      j.Raw(members.view());
      j.EndArray();
    }
    j.EndObject();
    FHIRBULK_RETURN_IF_ERROR(sink->Put(Kind::kGroup, j.view()));
  }
  return Status::OK();
}

}  // namespace synth
}  // namespace fhirbulk
