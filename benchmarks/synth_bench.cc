// Generation speed of the synthetic population (core/synth), without any I/O: JSON bytes and
// resources per second on one core, and through the threaded generator.
//
//   fhirbulk_bench --benchmark_filter=Synth

#include <benchmark/benchmark.h>

#include "synth/generator.h"
#include "synth/patient.h"
#include "synth/sink.h"

namespace fhirbulk {
namespace synth {
namespace {

// Counts and drops: measures the generator alone.
class NullSink : public ResourceSink {
 public:
  Status Put(Kind, std::string_view json) override {
    bytes += json.size();
    resources++;
    return Status::OK();
  }
  Status PutLines(Kind, std::string_view ndjson, size_t count) override {
    bytes += ndjson.size() - count;
    resources += count;
    return Status::OK();
  }
  uint64_t bytes = 0, resources = 0;
};

void BM_SynthPatient(benchmark::State& state) {
  PatientGenerator gen(1);
  NullSink sink;
  uint64_t k = 0;
  for (auto _ : state) {
    Status s = gen.Generate(k++ % 1000, &sink);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.SetBytesProcessed(static_cast<int64_t>(sink.bytes));
  state.SetItemsProcessed(static_cast<int64_t>(sink.resources));
}
BENCHMARK(BM_SynthPatient)->Unit(benchmark::kMicrosecond);

void BM_SynthPopulation(benchmark::State& state) {
  NullSink sink;
  for (auto _ : state) {
    SynthOptions o;
    o.seed = 1;
    o.patients = 200;
    o.threads = static_cast<int>(state.range(0));
    Status s = Generate(o, &sink, nullptr);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.SetBytesProcessed(static_cast<int64_t>(sink.bytes));
  state.SetItemsProcessed(static_cast<int64_t>(sink.resources));
}
BENCHMARK(BM_SynthPopulation)->Arg(0)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace synth
}  // namespace fhirbulk
