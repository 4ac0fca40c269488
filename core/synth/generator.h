// Generate: a whole synthetic population into a ResourceSink.
//
// Output, in this order: the shared facilities (Organization, Practitioner, Location; see
// synth/facility.h), patients 0..N-1 (synth/patient.h), then the Groups (synth/groups.h). For a
// given (seed, N, groups) the sequence of resources of each type is identical whatever the
// thread count (so are NDJSON files): worker threads generate batches of patients and the
// calling thread hands them to the sink in patient order, a batch's resources grouped by type.
// Memory stays bounded by a few batches (plus one Group's member list).
//
// Thread-safety: Generate may be called from any thread; the sink is only used by the calling
// thread, progress callbacks too.

#ifndef FHIRBULK_SYNTH_GENERATOR_H_
#define FHIRBULK_SYNTH_GENERATOR_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "synth/groups.h"
#include "synth/sink.h"
#include "util/status.h"

namespace fhirbulk {
namespace synth {

struct SynthOptions {
  uint64_t seed = 1;
  uint64_t patients = 0;
  std::vector<GroupSpec> groups;  // see ParseGroupSpecs; empty for none
  // Worker threads generating patients; 0 generates on the calling thread.
  int threads = 0;
  // Called on the calling thread with the number of patients written so far.
  std::function<void(uint64_t)> on_progress;
};

struct SynthStats {
  uint64_t count[kKindCount] = {};
  uint64_t bytes[kKindCount] = {};  // compact JSON, without newlines
  uint64_t total_count() const;
  uint64_t total_bytes() const;
};

// Writes the population into *sink and closes it (sink->Close()). *stats, if given, receives
// per-type counts and sizes.
Status Generate(const SynthOptions& options, ResourceSink* sink, SynthStats* stats);

}  // namespace synth
}  // namespace fhirbulk

#endif  // FHIRBULK_SYNTH_GENERATOR_H_
