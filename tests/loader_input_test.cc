// InputFile (plain and gzip, line by line or whole) and the loader's parsing side, run
// against a sink that records batches instead of a database.

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "load/batch_sink.h"
#include "load/input_file.h"
#include "load/loader.h"
#include "test_temp_dir.h"

namespace fhirbulk {
namespace {

namespace fs = std::filesystem;

class TempDir : public TestTempDir {
 public:
  TempDir() : TestTempDir("loader_test") {}
};

std::vector<std::pair<uint64_t, std::string>> ReadLines(const std::string& path, Status* status) {
  auto f = InputFile::Open(path);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  std::vector<std::pair<uint64_t, std::string>> out;
  if (!f.ok()) return out;
  std::string_view line;
  while ((*f)->NextLine(&line)) out.emplace_back((*f)->line_number(), std::string(line));
  *status = (*f)->status();
  return out;
}

TEST(LoaderInputFileTest, LinesWithNumbersPlainAndGzip) {
  TempDir dir;
  std::string content = "a\r\nbb\n\nccc";  // CRLF, an empty line, no final newline
  for (const char* name : {"x.ndjson", "x.ndjson.gz", "misnamed.txt.gz"}) {
    Status s;
    auto lines = ReadLines(dir.Write(name, content), &s);
    EXPECT_TRUE(s.ok()) << name;
    ASSERT_EQ(lines.size(), 4u) << name;
    EXPECT_EQ(lines[0], (std::pair<uint64_t, std::string>{1, "a"}));
    EXPECT_EQ(lines[1], (std::pair<uint64_t, std::string>{2, "bb"}));
    EXPECT_EQ(lines[2], (std::pair<uint64_t, std::string>{3, ""}));
    EXPECT_EQ(lines[3], (std::pair<uint64_t, std::string>{4, "ccc"}));
  }
}

TEST(LoaderInputFileTest, LongLinesAndWholeFiles) {
  TempDir dir;
  std::string big(3 << 20, 'x');  // longer than the read buffer
  std::string path = dir.Write("big.gz", "first\n" + big + "\nlast\n");
  Status s;
  auto lines = ReadLines(path, &s);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1].second, big);
  EXPECT_EQ(lines[2], (std::pair<uint64_t, std::string>{3, "last"}));

  auto f = InputFile::Open(path);
  ASSERT_TRUE(f.ok());
  std::string_view first;
  ASSERT_TRUE((*f)->NextLine(&first));
  std::string rest;
  ASSERT_TRUE((*f)->ReadRest(&rest).ok());
  EXPECT_EQ(rest, big + "\nlast\n");
  EXPECT_GT((*f)->consumed_bytes(), 0u);
}

TEST(LoaderInputFileTest, TruncatedGzipIsAnError) {
  TempDir dir;
  std::string content;
  for (int i = 0; i < 20000; i++) content += "line " + std::to_string(i * 7919) + "\n";
  std::string path = dir.Write("t.ndjson.gz", content);
  fs::resize_file(path, fs::file_size(path) / 2);
  Status s;
  ReadLines(path, &s);
  EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
  EXPECT_FALSE(InputFile::Open(dir.path() + "/missing").ok());
}

// --- the loader's parsing side, without a database -------------------------------------

class RecordingSink : public BatchSink {
 public:
  explicit RecordingSink(std::vector<Batch>* batches,
                         std::unordered_map<std::string, std::string> stored = {})
      : batches_(batches), stored_(std::move(stored)) {}
  Status Write(std::shared_ptr<Batch> batch) override {
    batches_->push_back(*batch);
    for (const auto& w : batch->writes) {
      auto& c = outcome_.by_type[w.resource.type];
      (w.is_delete ? c.deleted : c.loaded)++;
    }
    return Status::OK();
  }
  Status Drain() override { return Status::OK(); }
  Status FindStoredIds(const std::vector<std::string>& ids,
                       std::unordered_map<std::string, std::string>* types) override {
    for (const auto& id : ids) {
      auto it = stored_.find(id);
      if (it != stored_.end()) (*types)[id] = it->second;
    }
    return Status::OK();
  }
  const BatchOutcome& outcome() const override { return outcome_; }

 private:
  std::vector<Batch>* batches_;
  std::unordered_map<std::string, std::string> stored_;
  BatchOutcome outcome_;
};

struct LoadRun {
  std::vector<Batch> batches;
  LoadReport report;
  // Every write in order, as "Type/id" (deletions as "-Type/id").
  std::vector<std::string> Writes() const {
    std::vector<std::string> out;
    for (const auto& b : batches) {
      for (const auto& w : b.writes) {
        out.push_back((w.is_delete ? "-" : "") + w.resource.type + "/" + w.resource.id);
      }
    }
    return out;
  }
  const PendingWrite* Find(const std::string& key) const {
    const PendingWrite* found = nullptr;
    for (const auto& b : batches) {
      for (const auto& w : b.writes) {
        if (w.resource.type + "/" + w.resource.id == key) found = &w;
      }
    }
    return found;
  }
};

template <typename Body>
LoadRun Load(Body body, size_t batch_resources = 5000,
             std::unordered_map<std::string, std::string> stored = {}) {
  LoadRun run;
  LoadOptions options;
  options.batch_resources = batch_resources;
  auto loader =
      NewLoaderWithSink(options, std::make_unique<RecordingSink>(&run.batches, std::move(stored)));
  body(loader.get());
  Status s = loader->Finish(&run.report);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return run;
}

std::string Patient(const std::string& id, const std::string& extra = "") {
  return R"({"resourceType":"Patient","id":")" + id + "\"" + extra + "}";
}

TEST(LoaderPipelineTest, NdjsonRejectionsCarryFileLineAndReason) {
  TempDir dir;
  std::string path =
      dir.Write("mixed.ndjson.gz",
                Patient("p1") + "\n" +                                                       // 1
                    "{\"resourceType\":\"Patient\",\"id\":\n" +                              // 2
                    "\n" +                                                                   // 3
                    R"({"id":"x"})" + "\n" +                                                 // 4
                    R"({"resourceType":"Nonsense","id":"x"})" + "\n" +                       // 5
                    R"({"resourceType":"Patient","id":"a/b"})" + "\n" +                      // 6
                    "[1,2]\n" +                                                              // 7
                    R"({"resourceType":"Observation","id":"o1","status":"final"})" + "\n");  // 8
  LoadRun run = Load([&](Loader* l) { ASSERT_TRUE(l->AddPath(path).ok()); });
  EXPECT_EQ(run.Writes(), (std::vector<std::string>{"Patient/p1", "Observation/o1"}));
  ASSERT_EQ(run.report.rejections.size(), 5u);
  const char* expected[][2] = {{"line 2", "invalid JSON"},
                               {"line 4", "no resourceType"},
                               {"line 5", "unknown resourceType 'Nonsense'"},
                               {"line 6", "invalid id 'a/b'"},
                               {"line 7", "not a JSON object"}};
  for (size_t i = 0; i < 5; i++) {
    EXPECT_EQ(run.report.rejections[i].source, path);
    EXPECT_EQ(run.report.rejections[i].location, expected[i][0]);
    EXPECT_NE(run.report.rejections[i].reason.find(expected[i][1]), std::string::npos)
        << run.report.rejections[i].reason;
  }
  EXPECT_EQ(run.report.total_rejected(), 5u);
  EXPECT_EQ(run.report.by_type["Patient"].rejected, 1u);
  EXPECT_EQ(run.report.by_type["?"].rejected, 4u);
}

TEST(LoaderPipelineTest, BundleEntriesFailAloneAndNothingHalfLoaded) {
  TempDir dir;
  std::string path = dir.Write("b.json", R"({"resourceType":"Bundle","type":"batch","entry":[
    {"fullUrl":"urn:uuid:11111111-2222-3333-4444-555555555555",
     "resource":{"resourceType":"Patient"}},
    {"resource":{"resourceType":"Observation","id":"bad",
                 "subject":{"reference":"urn:uuid:11111111-2222-3333-4444-555555555555"},
                 "focus":[{"reference":"urn:uuid:99999999-2222-3333-4444-555555555555"}]}},
    {"resource":{"resourceType":"Observation","id":"good",
                 "subject":{"reference":"urn:uuid:11111111-2222-3333-4444-555555555555"}}},
    {"request":{"method":"DELETE","url":"Condition/c9"}},
    {"fullUrl":"x"}
  ]})");
  LoadRun run = Load([&](Loader* l) { ASSERT_TRUE(l->AddPath(path).ok()); });
  EXPECT_EQ(run.Writes(), (std::vector<std::string>{"Patient/11111111-2222-3333-4444-555555555555",
                                                    "Observation/good", "-Condition/c9"}));
  const PendingWrite* good = run.Find("Observation/good");
  ASSERT_NE(good, nullptr);
  EXPECT_NE(good->resource.tail.find("Patient/11111111-2222-3333-4444-555555555555"),
            std::string::npos);
  ASSERT_EQ(run.report.rejections.size(), 2u);
  EXPECT_EQ(run.report.rejections[0].location, "entry 1");
  EXPECT_NE(run.report.rejections[0].reason.find("urn:uuid:99999999"), std::string::npos);
  EXPECT_EQ(run.report.rejections[1].location, "entry 4");
  EXPECT_EQ(run.report.by_type["Observation"].rejected, 1u);
}

TEST(LoaderPipelineTest, SharedResourcesLastCopyWinsAndIdenticalCopiesCollapse) {
  TempDir dir;
  auto bundle = [](const std::string& org_extra, const std::string& patient) {
    return R"({"resourceType":"Bundle","type":"transaction","entry":[
      {"fullUrl":"urn:uuid:00000000-0000-0000-0000-00000000000a",
       "resource":{"resourceType":"Organization","id":"00000000-0000-0000-0000-00000000000a")" +
           org_extra + R"(}},
      {"fullUrl":"urn:uuid:)" +
           patient + R"(",
       "resource":{"resourceType":"Patient","id":")" +
           patient + R"(",
       "managingOrganization":{"reference":"urn:uuid:00000000-0000-0000-0000-00000000000a"}}}]})";
  };
  dir.Write("a.json", bundle("", "00000000-0000-0000-0000-000000000001"));
  dir.Write("b.json", bundle("", "00000000-0000-0000-0000-000000000002"));
  dir.Write("c.json", bundle(R"(,"name":"full copy")", "00000000-0000-0000-0000-000000000003"));
  dir.Write("notes.txt", "not an input");
  LoadRun run = Load([&](Loader* l) { ASSERT_TRUE(l->AddPath(dir.path()).ok()); });
  std::vector<std::string> writes = run.Writes();
  ASSERT_EQ(writes.size(), 4u);
  EXPECT_EQ(writes.back(), "Organization/00000000-0000-0000-0000-00000000000a");
  EXPECT_NE(run.Find(writes.back())->resource.tail.find("full copy"), std::string::npos);
  EXPECT_EQ(run.report.by_type["Organization"].unchanged, 2u);  // superseded copies
  EXPECT_EQ(run.report.by_type["Organization"].loaded, 1u);
  EXPECT_EQ(run.report.total_rejected(), 0u);
}

TEST(LoaderPipelineTest, RepeatedTypeIdInOneBatchIsWrittenInOrder) {
  LoadRun run = Load([&](Loader* l) {
    ASSERT_TRUE(l->AddResourceJson(Patient("p1"), "api", 1).ok());
    ASSERT_TRUE(l->AddResourceJson(Patient("p1"), "api", 2).ok());  // identical: collapses
    ASSERT_TRUE(l->AddResourceJson(Patient("p2"), "api", 3).ok());
    ASSERT_TRUE(l->AddResourceJson(Patient("p1", R"(,"gender":"male")"), "api", 4).ok());
    ASSERT_TRUE(l->Delete("Patient", "p1").ok());
    ASSERT_TRUE(l->Delete("Patient", "no/such").ok());  // rejected, not fatal
  });
  ASSERT_EQ(run.batches.size(), 3u);  // p1 repeated twice with different content -> 3 batches
  EXPECT_EQ(run.Writes(),
            (std::vector<std::string>{"Patient/p1", "Patient/p2", "Patient/p1", "-Patient/p1"}));
  EXPECT_EQ(run.report.by_type["Patient"].unchanged, 1u);
  EXPECT_EQ(run.report.by_type["Patient"].rejected, 1u);
}

TEST(LoaderPipelineTest, BatchesAreBoundedByCount) {
  LoadRun run = Load(
      [&](Loader* l) {
        for (int i = 0; i < 10; i++) {
          ASSERT_TRUE(l->AddResourceJson(Patient("p" + std::to_string(i)), "api", i + 1).ok());
        }
      },
      3);
  ASSERT_EQ(run.batches.size(), 4u);
  EXPECT_EQ(run.batches[0].writes.size(), 3u);
  EXPECT_EQ(run.batches[3].writes.size(), 1u);
}

TEST(LoaderPipelineTest, BareResourceWaitsForBundlesOfTheSameLoad) {
  TempDir dir;
  // The Group comes first on the command line; its member is defined by a later Bundle, a
  // second member only by a stored resource, a third by nothing.
  std::string group = dir.Write("group.json", R"({"resourceType":"Group","id":"g1","type":"person",
    "actual":true,"identifier":[{"value":"urn:uuid:d9f31445-f448-48c0-af57-295c005e07df"}],
    "member":[{"entity":{"reference":"urn:uuid:00000000-0000-0000-0000-000000000001"}},
              {"entity":{"reference":"urn:uuid:00000000-0000-0000-0000-000000000002"}}]})");
  std::string orphan = dir.Write("orphan.json", R"({"resourceType":"Observation","id":"o",
    "subject":{"reference":"urn:uuid:00000000-0000-0000-0000-000000000009"}})");
  std::string bundle = dir.Write("bundle.json", R"({"resourceType":"Bundle","type":"collection",
    "entry":[{"fullUrl":"urn:uuid:00000000-0000-0000-0000-000000000001",
              "resource":{"resourceType":"Patient","id":"00000000-0000-0000-0000-000000000001"}}]})");
  LoadRun run = Load(
      [&](Loader* l) {
        ASSERT_TRUE(l->AddPaths({group, orphan, bundle}).ok());
      },
      5000, {{"00000000-0000-0000-0000-000000000002", "Patient"}});
  const PendingWrite* g = run.Find("Group/g1");
  ASSERT_NE(g, nullptr);
  ASSERT_EQ(g->members.size(), 2u);
  EXPECT_EQ(g->members[0].patient_id, "00000000-0000-0000-0000-000000000001");
  EXPECT_EQ(g->members[1].patient_id, "00000000-0000-0000-0000-000000000002");
  EXPECT_EQ(g->resource.tail.find("\"reference\":\"urn:uuid"), std::string::npos);
  ASSERT_EQ(run.report.rejections.size(), 1u);
  EXPECT_EQ(run.report.rejections[0].source, orphan);
  EXPECT_NE(run.report.rejections[0].reason.find("urn:uuid:00000000-0000-0000-0000-000000000009"),
            std::string::npos);
  EXPECT_EQ(run.Find("Observation/o"), nullptr);
}

TEST(LoaderPipelineTest, DeletionsFile) {
  TempDir dir;
  std::string path = dir.Write(
      "del.ndjson",
      R"({"resourceType":"Patient","id":"p1"})"
      "\n"
      R"({"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE","url":"Observation/o1"}},{"request":{"method":"DELETE","url":"Observation?code=x"}}]})"
      "\n");
  LoadRun run = Load([&](Loader* l) { ASSERT_TRUE(l->AddDeletionsFile(path).ok()); });
  EXPECT_EQ(run.Writes(), (std::vector<std::string>{"-Patient/p1", "-Observation/o1"}));
  ASSERT_EQ(run.report.rejections.size(), 1u);
  EXPECT_EQ(run.report.rejections[0].location, "line 2 entry 1");
}

TEST(LoaderPipelineTest, SingleLineJsonAndCompactNdjsonWithJsonName) {
  TempDir dir;
  std::string one = dir.Write("one.json", Patient("p1") + "\n");
  std::string two =
      dir.Write("two.json", "\xEF\xBB\xBF" + Patient("p2") + "\n" + Patient("p3") + "\n");
  LoadRun run = Load([&](Loader* l) { ASSERT_TRUE(l->AddPaths({one, two}).ok()); });
  EXPECT_EQ(run.Writes(), (std::vector<std::string>{"Patient/p1", "Patient/p2", "Patient/p3"}));
}

TEST(LoaderPipelineTest, MissingPathIsAnError) {
  LoadRun run = Load([&](Loader* l) {
    Status s = l->AddPath("/nonexistent/input.ndjson");
    EXPECT_EQ(s.code(), Status::Code::kIOError);
  });
}

}  // namespace
}  // namespace fhirbulk
