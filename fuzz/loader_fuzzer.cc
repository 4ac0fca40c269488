// The loader's parsing side on untrusted input files, without a database: NDJSON lines,
// single resources, Bundles (entries, urn:uuid resolution, DELETE entries), deletion files.
// Batches go to a sink that drops them.
//
// Input: selector byte (low 3 bits: 5 = a .ndjson file, 6 = a .json file, 7 = a deletions
// file, anything else = one JSON text given to AddResourceJson: files are slower to run, so
// most inputs skip them), then the bytes.

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "fuzz_util.h"
#include "load/batch.h"
#include "load/batch_sink.h"
#include "load/loader.h"

using namespace fhirbulk;

namespace {

class DropSink : public BatchSink {
 public:
  Status Write(std::shared_ptr<Batch>) override { return Status::OK(); }
  Status Drain() override { return Status::OK(); }
  Status FindStoredIds(const std::vector<std::string>&,
                       std::unordered_map<std::string, std::string>*) override {
    return Status::OK();
  }
  const BatchOutcome& outcome() const override { return outcome_; }

 private:
  BatchOutcome outcome_;
};

std::string TempPath(const char* suffix) {
  return "/tmp/fhirbulk-loader-fuzz-" + std::to_string(getpid()) + suffix;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  const int sel = in.Selector() & 7;
  const int mode = sel < 5 ? 0 : sel - 4;  // 0 text, 1 .ndjson, 2 .json, 3 deletions
  const std::string_view bytes = in.Rest();
  LoadOptions options;
  options.batch_resources = 3;  // exercise batching
  auto loader = NewLoaderWithSink(options, std::make_unique<DropSink>());
  if (mode == 0) {
    (void)loader->AddResourceJson(bytes, "fuzz", 1);
  } else {
    const std::string path = TempPath(mode == 1 ? ".ndjson" : ".json");
    FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return 0;
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
    if (mode == 3) {
      (void)loader->AddDeletionsFile(path);
    } else {
      (void)loader->AddPaths({path});
    }
    std::remove(path.c_str());
  }
  LoadReport report;
  (void)loader->Finish(&report);
  return 0;
}
