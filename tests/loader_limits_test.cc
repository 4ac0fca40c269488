// The loader's input limits (LoadOptions::max_line_bytes, max_document_bytes,
// max_bundle_entries; JSON nesting, load/parsed_json.h): over a limit the line, document or
// Bundle is one rejection and the rest of the input loads; nothing recurses or buffers past
// the limit. Run against a sink that records writes instead of a database.

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "load/batch.h"
#include "load/batch_sink.h"
#include "load/input_file.h"
#include "load/loader.h"
#include "load/parsed_json.h"
#include "test_temp_dir.h"

namespace fhirbulk {
namespace {

namespace fs = std::filesystem;

class LimitsTempDir : public TestTempDir {
 public:
  LimitsTempDir() : TestTempDir("loader_limits") {}
};

class CountingSink : public BatchSink {
 public:
  explicit CountingSink(std::vector<std::string>* writes) : writes_(writes) {}
  Status Write(std::shared_ptr<Batch> batch) override {
    for (const auto& w : batch->writes) writes_->push_back(w.resource.type + "/" + w.resource.id);
    return Status::OK();
  }
  Status Drain() override { return Status::OK(); }
  Status FindStoredIds(const std::vector<std::string>&,
                       std::unordered_map<std::string, std::string>*) override {
    return Status::OK();
  }
  const BatchOutcome& outcome() const override { return outcome_; }

 private:
  std::vector<std::string>* writes_;
  BatchOutcome outcome_;
};

struct LoadRunResult {
  std::vector<std::string> writes;
  LoadReport report;
};

template <typename Body>
LoadRunResult LoadWith(const LoadOptions& options, Body body) {
  LoadRunResult run;
  auto loader = NewLoaderWithSink(options, std::make_unique<CountingSink>(&run.writes));
  body(loader.get());
  Status s = loader->Finish(&run.report);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return run;
}

std::string Patient(const std::string& id) {
  return R"({"resourceType":"Patient","id":")" + id + "\"}";
}

std::string Nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(LoaderLimitsTest, NdjsonLineOverTheLimitIsOneRejection) {
  LimitsTempDir dir;
  LoadOptions options;
  options.max_line_bytes = 1000;
  const std::string big =
      R"({"resourceType":"Patient","id":"big","text":")" + std::string(5000, 'x') + "\"}";
  const std::string path =
      dir.Write("p.ndjson", Patient("p1") + "\n" + big + "\n" + Patient("p2") + "\n" + big);
  LoadRunResult run = LoadWith(options, [&](Loader* l) { ASSERT_TRUE(l->AddPath(path).ok()); });
  EXPECT_EQ(run.writes, (std::vector<std::string>{"Patient/p1", "Patient/p2"}));
  ASSERT_EQ(run.report.rejections.size(), 2u);
  EXPECT_EQ(run.report.rejections[0].location, "line 2");
  EXPECT_NE(run.report.rejections[0].reason.find("line longer than 1000 bytes"), std::string::npos)
      << run.report.rejections[0].reason;
  EXPECT_EQ(run.report.rejections[1].location, "line 4");  // the last, unterminated line
}

TEST(LoaderLimitsTest, InputFileSkipsALongLineWithoutBufferingIt) {
  LimitsTempDir dir;
  // 8 MiB on one line, read with a 64 KiB limit: skipped in chunks, the next line intact.
  const std::string path =
      dir.Write("long.ndjson.gz", "short\n" + std::string(8u << 20, 'a') + "\nafter\n");
  auto f = InputFile::Open(path, 64 << 10);
  ASSERT_TRUE(f.ok());
  std::string_view line;
  ASSERT_TRUE((*f)->NextLine(&line));
  EXPECT_EQ(line, "short");
  EXPECT_FALSE((*f)->line_too_long());
  ASSERT_TRUE((*f)->NextLine(&line));
  EXPECT_TRUE((*f)->line_too_long());
  EXPECT_TRUE(line.empty());
  EXPECT_EQ((*f)->line_number(), 2u);
  ASSERT_TRUE((*f)->NextLine(&line));
  EXPECT_FALSE((*f)->line_too_long());
  EXPECT_EQ(line, "after");
  EXPECT_EQ((*f)->line_number(), 3u);
  EXPECT_FALSE((*f)->NextLine(&line));
  EXPECT_TRUE((*f)->status().ok());
}

TEST(LoaderLimitsTest, DocumentOverTheLimitIsRejected) {
  LimitsTempDir dir;
  LoadOptions options;
  options.max_document_bytes = 4096;
  std::string bundle = R"({"resourceType":"Bundle","type":"collection","entry":[)";
  for (int i = 0; i < 100; i++) {
    bundle +=
        (i ? "," : "") + std::string(R"({"resource":)") + Patient("p" + std::to_string(i)) + "}";
  }
  bundle += "]}";
  ASSERT_GT(bundle.size(), 4096u);
  // Pretty (several lines), on one line, and gzip-compressed (small on disk, large inflated).
  std::string pretty = bundle;
  for (size_t at = pretty.find("},{"); at != std::string::npos; at = pretty.find("},{", at + 3)) {
    pretty.replace(at, 3, "},\n{");
  }
  const std::string paths[] = {dir.Write("pretty.json", pretty), dir.Write("one-line.json", bundle),
                               dir.Write("packed.json.gz", pretty)};
  for (const std::string& path : paths) {
    LoadRunResult run = LoadWith(options, [&](Loader* l) { ASSERT_TRUE(l->AddPath(path).ok()); });
    EXPECT_TRUE(run.writes.empty()) << path;
    ASSERT_EQ(run.report.rejections.size(), 1u) << path;
    EXPECT_EQ(run.report.rejections[0].location, "document");
    EXPECT_NE(run.report.rejections[0].reason.find("document larger than 4096 bytes"),
              std::string::npos)
        << run.report.rejections[0].reason;
  }
  options.max_document_bytes = 1 << 20;  // the same files load under a larger limit
  LoadRunResult run = LoadWith(options, [&](Loader* l) { ASSERT_TRUE(l->AddPath(paths[2]).ok()); });
  EXPECT_EQ(run.writes.size(), 100u);
  EXPECT_TRUE(run.report.rejections.empty());
}

TEST(LoaderLimitsTest, BundleWithTooManyEntriesIsRejectedWhole) {
  LoadOptions options;
  options.max_bundle_entries = 3;
  auto bundle = [](int n) {
    std::string b = R"({"resourceType":"Bundle","type":"transaction","entry":[)";
    for (int i = 0; i < n; i++) {
      b += (i ? "," : "") + std::string(R"({"resource":)") + Patient("p" + std::to_string(i)) + "}";
    }
    return b + "]}";
  };
  LoadRunResult run = LoadWith(options, [&](Loader* l) {
    ASSERT_TRUE(l->AddResourceJson(bundle(4), "b4", 1).ok());
    ASSERT_TRUE(l->AddResourceJson(bundle(3), "b3", 1).ok());
  });
  EXPECT_EQ(run.writes, (std::vector<std::string>{"Patient/p0", "Patient/p1", "Patient/p2"}));
  ASSERT_EQ(run.report.rejections.size(), 1u);
  EXPECT_EQ(run.report.rejections[0].source, "b4");
  EXPECT_NE(run.report.rejections[0].reason.find("Bundle with 4 entries, more than 3"),
            std::string::npos)
      << run.report.rejections[0].reason;
}

TEST(LoaderLimitsTest, DeepNestingIsRejectedNotRecursed) {
  // ~1 MB of brackets: a recursive parser or walk would overflow the stack.
  const std::string deep = Nested(500000);
  ParsedJson json;
  Status s = json.Parse(deep);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("nested deeper than 200"), std::string::npos) << s.ToString();
  EXPECT_TRUE(json.Parse(Nested(200)).ok());
  EXPECT_FALSE(json.Parse(Nested(201)).ok());

  LimitsTempDir dir;
  const std::string in_resource =
      R"({"resourceType":"Patient","id":"deep","extension":)" + Nested(300000) + "}";
  const std::string in_bundle =
      R"({"resourceType":"Bundle","type":"batch","entry":[{"resource":)" + in_resource + "}]}";
  const std::string path = dir.Write(
      "deep.ndjson", Patient("p1") + "\n" + in_resource + "\n" + in_bundle + "\n" + Patient("p2"));
  LoadRunResult run =
      LoadWith(LoadOptions(), [&](Loader* l) { ASSERT_TRUE(l->AddPath(path).ok()); });
  EXPECT_EQ(run.writes, (std::vector<std::string>{"Patient/p1", "Patient/p2"}));
  ASSERT_EQ(run.report.rejections.size(), 2u);
  for (const auto& r : run.report.rejections) {
    EXPECT_NE(r.reason.find("nested deeper than 200"), std::string::npos) << r.reason;
  }
}

TEST(LoaderLimitsTest, AddResourceJsonHonoursTheLineLimit) {
  LoadOptions options;
  options.max_line_bytes = 64;
  LoadRunResult run = LoadWith(options, [&](Loader* l) {
    ASSERT_TRUE(l->AddResourceJson(Patient("short"), "api", 1).ok());
    ASSERT_TRUE(l->AddResourceJson(Patient(std::string(60, 'x')), "api", 2).ok());
  });
  EXPECT_EQ(run.writes, (std::vector<std::string>{"Patient/short"}));
  ASSERT_EQ(run.report.rejections.size(), 1u);
  EXPECT_EQ(run.report.rejections[0].location, "line 2");
}

}  // namespace
}  // namespace fhirbulk
