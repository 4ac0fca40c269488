#include "synth/generator.h"

#include <memory>
#include <thread>

#include "synth/facility.h"
#include "synth/json_out.h"
#include "synth/patient.h"
#include "util/mutex.h"

namespace fhirbulk {
namespace synth {

namespace {

constexpr uint64_t kPatientsPerBatch = 8;

// Counts what passes through to the real sink.
class CountingSink : public ResourceSink {
 public:
  CountingSink(ResourceSink* next, SynthStats* stats) : next_(next), stats_(stats) {}
  Status Put(Kind kind, std::string_view json) override {
    stats_->count[static_cast<size_t>(kind)]++;
    stats_->bytes[static_cast<size_t>(kind)] += json.size();
    return next_->Put(kind, json);
  }
  Status PutLines(Kind kind, std::string_view ndjson, size_t count) override {
    stats_->count[static_cast<size_t>(kind)] += count;
    stats_->bytes[static_cast<size_t>(kind)] += ndjson.size() - count;
    return next_->PutLines(kind, ndjson, count);
  }
  Status Close() override { return next_->Close(); }

 private:
  ResourceSink* next_;
  SynthStats* stats_;
};

Status WriteFacilities(uint64_t seed, uint64_t patients, ResourceSink* sink) {
  Facility f;
  JsonOut j;
  uint64_t pool = FacilityPoolSize(patients);
  for (uint64_t i = 0; i < pool; i++) {
    MakeFacility(seed, i, &f);
    WriteOrganization(f, &j);
    FHIRBULK_RETURN_IF_ERROR(sink->Put(Kind::kOrganization, j.view()));
    WritePractitioner(f, &j);
    FHIRBULK_RETURN_IF_ERROR(sink->Put(Kind::kPractitioner, j.view()));
    WriteLocation(f, &j);
    FHIRBULK_RETURN_IF_ERROR(sink->Put(Kind::kLocation, j.view()));
  }
  return Status::OK();
}

Status GenerateInline(const SynthOptions& o, ResourceSink* sink) {
  PatientGenerator gen(o.seed);
  for (uint64_t k = 0; k < o.patients; k++) {
    FHIRBULK_RETURN_IF_ERROR(gen.Generate(k, sink));
    if (o.on_progress) o.on_progress(k + 1);
  }
  return Status::OK();
}

// Workers fill a ring of batch slots; the calling thread drains them in batch order.
class ParallelRun {
 public:
  ParallelRun(const SynthOptions& o, ResourceSink* sink)
      : o_(o),
        sink_(sink),
        batches_((o.patients + kPatientsPerBatch - 1) / kPatientsPerBatch),
        ring_(static_cast<size_t>(o.threads) * 2),
        slots_(ring_) {}

  Status Run() EXCLUDES(mu_) {
    std::vector<std::thread> workers;
    workers.reserve(static_cast<size_t>(o_.threads));
    for (int w = 0; w < o_.threads; w++) workers.emplace_back([this] { Work(); });
    Status result = Drain();
    {
      MutexLock lock(&mu_);
      stop_ = true;
    }
    cv_.SignalAll();
    for (std::thread& t : workers) t.join();
    return result;
  }

 private:
  // A slot's status and ready flag are guarded by mu_; its buffer belongs to the worker that
  // claimed the batch until ready, then to the draining thread until it clears ready.
  struct Slot {
    BatchBuffer buffer;
    Status status;
    bool ready = false;
  };

  void Work() EXCLUDES(mu_) {
    PatientGenerator gen(o_.seed);
    for (;;) {
      uint64_t b;
      {
        MutexLock lock(&mu_);
        while (!stop_ && !(next_claim_ < batches_ && next_claim_ < next_write_ + ring_)) {
          cv_.Wait(&mu_);
        }
        if (stop_ || next_claim_ >= batches_) return;
        b = next_claim_++;
      }
      Slot& slot = slots_[b % ring_];
      Status s;
      uint64_t end = std::min(o_.patients, (b + 1) * kPatientsPerBatch);
      for (uint64_t k = b * kPatientsPerBatch; k < end && s.ok(); k++) {
        s = gen.Generate(k, &slot.buffer);
      }
      {
        MutexLock lock(&mu_);
        slot.status = s;
        slot.ready = true;
      }
      cv_.SignalAll();
    }
  }

  Status Drain() EXCLUDES(mu_) {
    for (uint64_t b = 0; b < batches_; b++) {
      Slot& slot = slots_[b % ring_];
      {
        MutexLock lock(&mu_);
        while (!slot.ready) cv_.Wait(&mu_);
      }
      FHIRBULK_RETURN_IF_ERROR(slot.status);
      FHIRBULK_RETURN_IF_ERROR(slot.buffer.Drain(sink_));
      {
        MutexLock lock(&mu_);
        slot.ready = false;
        next_write_ = b + 1;
      }
      cv_.SignalAll();
      if (o_.on_progress) o_.on_progress(std::min(o_.patients, (b + 1) * kPatientsPerBatch));
    }
    return Status::OK();
  }

  const SynthOptions& o_;
  ResourceSink* sink_;
  const uint64_t batches_;
  const uint64_t ring_;
  std::vector<Slot> slots_;
  Mutex mu_;
  CondVar cv_;
  uint64_t next_claim_ GUARDED_BY(mu_) = 0;
  uint64_t next_write_ GUARDED_BY(mu_) = 0;
  bool stop_ GUARDED_BY(mu_) = false;
};

}  // namespace

uint64_t SynthStats::total_count() const {
  uint64_t n = 0;
  for (uint64_t c : count) n += c;
  return n;
}

uint64_t SynthStats::total_bytes() const {
  uint64_t n = 0;
  for (uint64_t b : bytes) n += b;
  return n;
}

Status Generate(const SynthOptions& options, ResourceSink* sink, SynthStats* stats) {
  SynthStats local;
  CountingSink counting(sink, stats != nullptr ? stats : &local);
  Status s = WriteFacilities(options.seed, options.patients, &counting);
  if (s.ok()) {
    if (options.threads <= 0 || options.patients <= kPatientsPerBatch) {
      s = GenerateInline(options, &counting);
    } else {
      ParallelRun run(options, &counting);
      s = run.Run();
    }
  }
  if (s.ok()) s = WriteGroups(options.seed, options.patients, options.groups, &counting);
  Status closed = counting.Close();
  return s.ok() ? closed : s;
}

}  // namespace synth
}  // namespace fhirbulk
