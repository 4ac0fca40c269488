#include "export/ndjson_writer.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

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

  NdjsonWriterOptions Options(int64_t max_resources, int64_t max_bytes) {
    NdjsonWriterOptions o;
    o.dir = dir_;
    o.prefix = "Observation.7";
    o.temp_suffix = ".tmp.w1-t0";
    o.max_resources = max_resources;
    o.max_bytes = max_bytes;
    o.buffer_bytes = 4096;
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

}  // namespace
}  // namespace fhirbulk
