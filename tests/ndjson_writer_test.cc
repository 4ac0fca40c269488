#include "worker/ndjson_writer.h"
#include "export/job_dir.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "test_gzip.h"

namespace fhirbulk {
namespace {

class NdjsonWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fhirbulk-ndjson-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Without gzip twins unless asked: most tests are about the plain files.
  NdjsonWriterOptions Options(int64_t max_resources, int64_t max_bytes, int gzip_level = 0) {
    NdjsonWriterOptions o;
    o.dir = dir_;
    o.type = "Observation";
    o.unit_no = 7;
    o.worker_id = "w1-t0";
    o.max_resources = max_resources;
    o.max_bytes = max_bytes;
    o.buffer_bytes = 4096;
    o.gzip_level = gzip_level;
    return o;
  }

  std::set<std::string> Listing() {
    std::set<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      names.insert(e.path().filename().string());
    }
    return names;
  }

  std::string Read(const std::string& name) {
    std::ifstream in(dir_ + "/" + name);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::string dir_;
};

TEST(DeflaterTest, RoundTripsAnyChunkingAndIsReusable) {
  std::string input;
  for (int i = 0; i < 20000; i++)
    input += "{\"id\":\"" + std::to_string(i * 7919 % 10007) + "\"}\n";
  for (int level : {1, 6, 9}) {
    Deflater d;
    for (int round = 0; round < 2; round++) {  // Init again after Finish: a new stream
      ASSERT_TRUE(d.Init(level).ok());
      std::string gz;
      int sink_calls = 0;
      auto sink = [&](const char* data, size_t n) {
        sink_calls++;
        EXPECT_GT(n, 0u);
        gz.append(data, n);
        return Status::OK();
      };
      for (size_t pos = 0; pos < input.size(); pos += 1 + pos % 5000) {
        ASSERT_TRUE(d.Compress(std::string_view(input).substr(pos, 1 + pos % 5000), sink).ok());
      }
      ASSERT_TRUE(d.Finish(sink).ok());
      EXPECT_EQ(Gunzip(gz), input) << "level " << level;
      EXPECT_LT(gz.size(), input.size() / 3);
      EXPECT_GE(sink_calls, 1);
      EXPECT_FALSE(d.Compress("x", sink).ok()) << "finished";
    }
  }
  Deflater empty;
  ASSERT_TRUE(empty.Init(1).ok());
  std::string gz;
  ASSERT_TRUE(empty
                  .Finish([&](const char* data, size_t n) {
                    gz.append(data, n);
                    return Status::OK();
                  })
                  .ok());
  EXPECT_EQ(Gunzip(gz), "");
  EXPECT_FALSE(Deflater().Init(0).ok());
  EXPECT_FALSE(Deflater().Init(10).ok());
}

TEST(DeflaterTest, SinkErrorsAreReturned) {
  Deflater d;
  ASSERT_TRUE(d.Init(1).ok());
  auto failing = [](const char*, size_t) { return Status::IOError("disk full"); };
  std::string noise;
  for (int i = 0; i < 200000; i++) noise.push_back(static_cast<char>((i * 2654435761u) >> 13));
  Status s = d.Compress(noise, failing);  // larger than the output buffer: the sink runs
  if (s.ok()) s = d.Finish(failing);
  EXPECT_EQ(s.code(), Status::Code::kIOError);
  EXPECT_FALSE(d.Finish(failing).ok());
}

TEST_F(NdjsonWriterTest, SplitsByCountAndPublishesAtomically) {
  NdjsonWriter w(Options(2, 1 << 20));
  for (int i = 1; i <= 5; i++) ASSERT_TRUE(w.Append("{\"n\":" + std::to_string(i) + "}").ok());
  ASSERT_TRUE(w.Seal().ok());
  // Sealed but not published: only temp names exist.
  EXPECT_EQ(Listing(), (std::set<std::string>{"Observation.7.1.ndjson.tmp.w1-t0",
                                              "Observation.7.2.ndjson.tmp.w1-t0",
                                              "Observation.7.3.ndjson.tmp.w1-t0"}));
  ASSERT_EQ(w.files().size(), 3u);
  EXPECT_EQ(w.files()[0].resources, 2);
  EXPECT_EQ(w.files()[2].resources, 1);
  EXPECT_EQ(w.files()[0].bytes, 16);  // two lines of 7 bytes + \n
  EXPECT_EQ(w.total_resources(), 5);
  ASSERT_TRUE(w.Publish().ok());
  EXPECT_EQ(Listing(), (std::set<std::string>{"Observation.7.1.ndjson", "Observation.7.2.ndjson",
                                              "Observation.7.3.ndjson"}));
  EXPECT_EQ(Read("Observation.7.1.ndjson"), "{\"n\":1}\n{\"n\":2}\n");
  EXPECT_EQ(Read("Observation.7.3.ndjson"), "{\"n\":5}\n");
}

TEST_F(NdjsonWriterTest, SplitsByBytesAndGivesLongLinesTheirOwnFile) {
  NdjsonWriter w(Options(1000, 10));
  ASSERT_TRUE(w.Append("aaaa").ok());                // 5 bytes
  ASSERT_TRUE(w.Append("bbbb").ok());                // 10: still fits
  ASSERT_TRUE(w.Append("cccc").ok());                // would be 15: new file
  ASSERT_TRUE(w.Append(std::string(30, 'x')).ok());  // longer than the limit: own file
  ASSERT_TRUE(w.Append("dd").ok());
  ASSERT_TRUE(w.Seal().ok());
  ASSERT_TRUE(w.Publish().ok());
  ASSERT_EQ(w.files().size(), 4u);
  EXPECT_EQ(Read("Observation.7.1.ndjson"), "aaaa\nbbbb\n");
  EXPECT_EQ(Read("Observation.7.2.ndjson"), "cccc\n");
  EXPECT_EQ(Read("Observation.7.3.ndjson"), std::string(30, 'x') + "\n");
  EXPECT_EQ(Read("Observation.7.4.ndjson"), "dd\n");
  for (const NdjsonFile& f : w.files()) EXPECT_LE(f.bytes, 31);
}

TEST_F(NdjsonWriterTest, LinesLargerThanTheBufferAreWrittenWhole) {
  NdjsonWriter w(Options(10, 1 << 20));
  std::string big(10000, 'z');  // buffer is 4096
  ASSERT_TRUE(w.Append("a").ok());
  ASSERT_TRUE(w.Append(big).ok());
  ASSERT_TRUE(w.Append("b").ok());
  ASSERT_TRUE(w.Seal().ok());
  ASSERT_TRUE(w.Publish().ok());
  EXPECT_EQ(Read("Observation.7.1.ndjson"), "a\n" + big + "\nb\n");
}

TEST_F(NdjsonWriterTest, CancelAndDestructorDeleteTempFiles) {
  {
    NdjsonWriter w(Options(1, 1 << 20));
    ASSERT_TRUE(w.Append("1").ok());
    ASSERT_TRUE(w.Append("2").ok());
    EXPECT_EQ(Listing().size(), 2u);
    w.Cancel();
    EXPECT_TRUE(Listing().empty());
    EXPECT_FALSE(w.Append("3").ok());
  }
  {
    NdjsonWriter w(Options(1, 1 << 20));
    ASSERT_TRUE(w.Append("1").ok());
    ASSERT_TRUE(w.Seal().ok());
  }  // sealed, never published
  EXPECT_TRUE(Listing().empty());
}

TEST_F(NdjsonWriterTest, NoLinesNoFiles) {
  NdjsonWriter w(Options(10, 100));
  ASSERT_TRUE(w.Seal().ok());
  ASSERT_TRUE(w.Publish().ok());
  EXPECT_TRUE(w.files().empty());
  EXPECT_TRUE(Listing().empty());
}

TEST_F(NdjsonWriterTest, MissingDirectoryIsAnIOError) {
  NdjsonWriterOptions o = Options(10, 100);
  o.dir = dir_ + "/gone";
  NdjsonWriter w(o);
  Status s = w.Append("x");
  EXPECT_EQ(s.code(), Status::Code::kIOError);
  EXPECT_NE(s.message().find("Observation.7.1.ndjson"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find(dir_), std::string::npos) << "no server paths in messages";
}

TEST_F(NdjsonWriterTest, FailedRenameUndoesThePublish) {
  NdjsonWriter w(Options(1, 1 << 20));
  ASSERT_TRUE(w.Append("1").ok());
  ASSERT_TRUE(w.Append("2").ok());
  ASSERT_TRUE(w.Seal().ok());
  // The second temp file vanishes (e.g. a janitor on another host): Publish fails and
  // takes back the first rename.
  ASSERT_EQ(::unlink((dir_ + "/Observation.7.2.ndjson.tmp.w1-t0").c_str()), 0);
  EXPECT_EQ(w.Publish().code(), Status::Code::kIOError);
  EXPECT_TRUE(Listing().empty());
}

TEST_F(NdjsonWriterTest, GzipTwinOfEveryPartDecompressesToThePlainBytes) {
  NdjsonWriterOptions o = Options(1000, 3000, /*gzip_level=*/1);
  NdjsonWriter w(o);
  std::string expected;
  for (int i = 0; i < 200; i++) {
    std::string line = "{\"resourceType\":\"Observation\",\"id\":\"" + std::to_string(i) + "\"}";
    if (i == 77) line = std::string(9000, 'q');  // larger than the buffer and the file limit
    ASSERT_TRUE(w.Append(line).ok());
  }
  ASSERT_TRUE(w.Seal().ok());
  std::set<std::string> temps, finals;
  for (const NdjsonFile& f : w.files()) {
    temps.insert(f.name + ".tmp.w1-t0");
    temps.insert(f.name + ".gz.tmp.w1-t0");
    finals.insert(f.name);
    finals.insert(f.name + ".gz");
  }
  ASSERT_GE(w.files().size(), 3u);
  EXPECT_EQ(Listing(), temps) << "sealed: twins under temp names too";
  ASSERT_TRUE(w.Publish().ok());
  EXPECT_EQ(Listing(), finals);
  int64_t total = 0;
  for (const NdjsonFile& f : w.files()) {
    const std::string plain = Read(f.name);
    EXPECT_EQ(static_cast<int64_t>(plain.size()), f.bytes) << "bytes count the plain file";
    EXPECT_EQ(Gunzip(Read(f.name + ".gz")), plain) << f.name;
    total += f.bytes;
  }
  EXPECT_EQ(total, w.total_bytes());
  EXPECT_EQ(Gunzip(Read("Observation.7.1.ndjson.gz"))
                .rfind("{\"resourceType\":\"Observation\",\"id\":\"0\"}\n", 0),
            0u);
}

TEST_F(NdjsonWriterTest, GzipTwinSpansManyBuffers) {
  NdjsonWriterOptions o = Options(1 << 30, 1 << 30, /*gzip_level=*/6);
  NdjsonWriter w(o);  // 4 KB buffers: hundreds of Compress calls on one stream
  for (int i = 0; i < 50000; i++) {
    ASSERT_TRUE(w.Append("{\"n\":" + std::to_string(i * 31 % 9973) + "}").ok());
  }
  ASSERT_TRUE(w.Seal().ok());
  ASSERT_TRUE(w.Publish().ok());
  ASSERT_EQ(w.files().size(), 1u);
  const std::string plain = Read("Observation.7.1.ndjson");
  EXPECT_EQ(static_cast<int64_t>(plain.size()), w.total_bytes());
  EXPECT_EQ(Gunzip(Read("Observation.7.1.ndjson.gz")), plain);
}

TEST_F(NdjsonWriterTest, CancelAndDestructorDeleteTheTwins) {
  {
    NdjsonWriter w(Options(1, 1 << 20, 1));
    ASSERT_TRUE(w.Append("1").ok());
    ASSERT_TRUE(w.Append("2").ok());
    EXPECT_EQ(Listing(),
              (std::set<std::string>{
                  "Observation.7.1.ndjson.tmp.w1-t0", "Observation.7.1.ndjson.gz.tmp.w1-t0",
                  "Observation.7.2.ndjson.tmp.w1-t0", "Observation.7.2.ndjson.gz.tmp.w1-t0"}));
    w.Cancel();
    EXPECT_TRUE(Listing().empty());
  }
  {
    NdjsonWriter w(Options(1, 1 << 20, 1));
    ASSERT_TRUE(w.Append("1").ok());
    ASSERT_TRUE(w.Append("2").ok());
    ASSERT_TRUE(w.Seal().ok());
  }  // sealed, never published
  EXPECT_TRUE(Listing().empty());
  {
    NdjsonWriter w(Options(100000, 1 << 20, 1));
    for (int i = 0; i < 5000; i++) ASSERT_TRUE(w.Append("a line of some length").ok());
  }  // destroyed while writing
  EXPECT_TRUE(Listing().empty());
}

TEST_F(NdjsonWriterTest, LevelZeroWritesNoTwins) {
  NdjsonWriter w(Options(2, 1 << 20, 0));
  for (int i = 0; i < 3; i++) ASSERT_TRUE(w.Append("x").ok());
  ASSERT_TRUE(w.Seal().ok());
  ASSERT_TRUE(w.Publish().ok());
  EXPECT_EQ(Listing(), (std::set<std::string>{"Observation.7.1.ndjson", "Observation.7.2.ndjson"}));
}

TEST_F(NdjsonWriterTest, FailedTwinRenameUndoesThePublish) {
  NdjsonWriter w(Options(1, 1 << 20, 1));
  ASSERT_TRUE(w.Append("1").ok());
  ASSERT_TRUE(w.Append("2").ok());
  ASSERT_TRUE(w.Seal().ok());
  ASSERT_EQ(::unlink((dir_ + "/Observation.7.2.ndjson.gz.tmp.w1-t0").c_str()), 0);
  Status s = w.Publish();
  EXPECT_EQ(s.code(), Status::Code::kIOError);
  EXPECT_NE(s.message().find("Observation.7.2.ndjson.gz"), std::string::npos) << s.message();
  EXPECT_TRUE(Listing().empty());
}

TEST(ExportFileNameTest, Parses) {
  auto f = ParseExportFileName("Observation.12.3.ndjson");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->type, "Observation");
  EXPECT_EQ(f->unit_no, 12);
  EXPECT_EQ(f->seq, 3);
  EXPECT_FALSE(f->temp);
  f = ParseExportFileName("Bundle.4.1.ndjson.tmp.host-1-ab12-t0");
  ASSERT_TRUE(f.has_value());
  EXPECT_TRUE(f->temp);
  EXPECT_EQ(f->unit_no, 4);
  EXPECT_FALSE(ParseExportFileName("Observation.x.1.ndjson"));
  EXPECT_FALSE(ParseExportFileName("Observation.1.1.json"));
  EXPECT_FALSE(ParseExportFileName("Observation.1.1.ndjson.tmp"));
  EXPECT_FALSE(ParseExportFileName(".1.1.ndjson"));
  EXPECT_FALSE(ParseExportFileName("manifest.json"));
}

TEST(ExportFileNameTest, ParsesGzipTwins) {
  auto f = ParseExportFileName("Observation.12.3.ndjson.gz");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->type, "Observation");
  EXPECT_EQ(f->unit_no, 12);
  EXPECT_EQ(f->seq, 3);
  EXPECT_TRUE(f->gzip);
  EXPECT_FALSE(f->temp);
  f = ParseExportFileName("Bundle.4.1.ndjson.gz.tmp.host-1-ab12-t0");
  ASSERT_TRUE(f.has_value());
  EXPECT_TRUE(f->gzip);
  EXPECT_TRUE(f->temp);
  EXPECT_EQ(f->unit_no, 4);
  f = ParseExportFileName("Bundle.4.1.ndjson.tmp.host-1-ab12-t0");
  ASSERT_TRUE(f.has_value());
  EXPECT_FALSE(f->gzip);
  EXPECT_FALSE(ParseExportFileName("Observation.1.1.ndjson.gzip"));
  EXPECT_FALSE(ParseExportFileName("Observation.1.1.ndjson.gz.tmp"));
  EXPECT_FALSE(ParseExportFileName("Observation.1.1.ndjson.gz.gz"));
  EXPECT_FALSE(ParseExportFileName("Observation.1.1.ndjsonx"));
  EXPECT_FALSE(ParseExportFileName("Observation.1.1.gz"));
}

}  // namespace
}  // namespace fhirbulk
