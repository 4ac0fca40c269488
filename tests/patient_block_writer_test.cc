#include "worker/patient_block_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_gzip.h"

namespace fhirbulk {
namespace {

class PatientBlockWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fhirbulk-blocks-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  NdjsonWriterOptions Options(int64_t max_lines, int64_t max_bytes = 1 << 20, int gzip = 0) {
    NdjsonWriterOptions o;
    o.dir = dir_;
    o.type = "Patient";
    o.unit_no = 3;
    o.worker_id = "w1-t0";
    o.max_resources = max_lines;
    o.max_bytes = max_bytes;
    o.buffer_bytes = 64;  // small: moves and splits meet flushed and buffered bytes
    o.gzip_level = gzip;
    return o;
  }

  std::vector<std::string> Lines(const std::string& name) {
    std::ifstream in(dir_ + "/" + name);
    std::vector<std::string> out;
    std::string line;
    while (std::getline(in, line)) out.push_back(line);
    return out;
  }

  static std::string GunzipFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return Gunzip(ss.str());
  }

  static std::string R(const std::string& type, const std::string& id) {
    return "{\"resourceType\":\"" + type + "\",\"id\":\"" + id + "\"}";
  }

  std::string dir_;
};

TEST_F(PatientBlockWriterTest, HeaderShape) {
  EXPECT_EQ(PatientBlockHeader("p1"),
            "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"header\","
            "\"valueReference\":{\"reference\":\"Patient/p1\"}}]}");
}

TEST_F(PatientBlockWriterTest, BlocksShareAFileWhileTheyFit) {
  PatientBlockWriter w(Options(100));
  ASSERT_TRUE(w.Append("a", R("Patient", "a")).ok());
  ASSERT_TRUE(w.Append("a", R("Observation", "o1")).ok());
  ASSERT_TRUE(w.Append("b", R("Patient", "b")).ok());
  ASSERT_TRUE(w.Seal().ok());
  ASSERT_TRUE(w.Publish().ok());
  ASSERT_EQ(w.files().size(), 1u);
  EXPECT_EQ(w.files()[0].name, "Patient.3.1.ndjson");
  EXPECT_EQ(w.files()[0].resources, 3);  // headers are not counted
  EXPECT_EQ(w.total_resources(), 3);
  std::vector<std::string> lines = Lines("Patient.3.1.ndjson");
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0], PatientBlockHeader("a"));
  EXPECT_EQ(lines[1], R("Patient", "a"));
  EXPECT_EQ(lines[3], PatientBlockHeader("b"));
  EXPECT_EQ(w.continues_in()[0], "");
  EXPECT_EQ(static_cast<int64_t>(std::filesystem::file_size(dir_ + "/Patient.3.1.ndjson")),
            w.files()[0].bytes);
}

TEST_F(PatientBlockWriterTest, ABlockThatDoesNotFitMovesToTheNextFile) {
  PatientBlockWriter w(Options(5));
  ASSERT_TRUE(w.Append("a", R("Patient", "a")).ok());     // header + 1
  ASSERT_TRUE(w.Append("b", R("Patient", "b")).ok());     // header + 1: 4 lines
  ASSERT_TRUE(w.Append("b", R("Condition", "c1")).ok());  // 5
  ASSERT_TRUE(w.Append("b", R("Condition", "c2")).ok());  // 6: b moves on
  ASSERT_TRUE(w.Seal().ok());
  ASSERT_TRUE(w.Publish().ok());
  ASSERT_EQ(w.files().size(), 2u);
  EXPECT_EQ(Lines("Patient.3.1.ndjson"),
            (std::vector<std::string>{PatientBlockHeader("a"), R("Patient", "a")}));
  EXPECT_EQ(Lines("Patient.3.2.ndjson"),
            (std::vector<std::string>{PatientBlockHeader("b"), R("Patient", "b"),
                                      R("Condition", "c1"), R("Condition", "c2")}));
  EXPECT_EQ(w.files()[0].resources, 1);
  EXPECT_EQ(w.files()[1].resources, 3);
  EXPECT_EQ(w.continues_in(), (std::vector<std::string>{"", ""}));
  EXPECT_EQ(static_cast<int64_t>(std::filesystem::file_size(dir_ + "/Patient.3.1.ndjson")),
            w.files()[0].bytes);
}

TEST_F(PatientBlockWriterTest, ABlockLargerThanAFileSpansFilesWithItsHeaderRepeated) {
  PatientBlockWriter w(Options(3));
  for (int i = 0; i < 5; i++) {
    ASSERT_TRUE(w.Append("a", R("Observation", "o" + std::to_string(i))).ok());
  }
  ASSERT_TRUE(w.Append("b", R("Patient", "b")).ok());
  ASSERT_TRUE(w.Seal().ok());
  ASSERT_TRUE(w.Publish().ok());
  ASSERT_EQ(w.files().size(), 4u);
  EXPECT_EQ(Lines("Patient.3.1.ndjson"),
            (std::vector<std::string>{PatientBlockHeader("a"), R("Observation", "o0"),
                                      R("Observation", "o1")}));
  EXPECT_EQ(Lines("Patient.3.2.ndjson"),
            (std::vector<std::string>{PatientBlockHeader("a"), R("Observation", "o2"),
                                      R("Observation", "o3")}));
  EXPECT_EQ(Lines("Patient.3.3.ndjson"),
            (std::vector<std::string>{PatientBlockHeader("a"), R("Observation", "o4")}));
  EXPECT_EQ(Lines("Patient.3.4.ndjson"),
            (std::vector<std::string>{PatientBlockHeader("b"), R("Patient", "b")}));
  EXPECT_EQ(w.continues_in(),
            (std::vector<std::string>{"Patient.3.2.ndjson", "Patient.3.3.ndjson", "", ""}));
  EXPECT_EQ(w.total_resources(), 6);
}

TEST_F(PatientBlockWriterTest, ByteLimitMovesAndSplitsToo) {
  const int64_t header = static_cast<int64_t>(PatientBlockHeader("a").size()) + 1;
  const int64_t line = static_cast<int64_t>(R("Observation", "o0").size()) + 1;
  PatientBlockWriter w(Options(1000, header + 2 * line));
  ASSERT_TRUE(w.Append("a", R("Observation", "o0")).ok());
  ASSERT_TRUE(w.Append("b", R("Observation", "o1")).ok());  // no room for b's header: new file
  ASSERT_TRUE(w.Append("b", R("Observation", "o2")).ok());
  ASSERT_TRUE(w.Append("b", R("Observation", "o3")).ok());  // b alone too big: spans
  ASSERT_TRUE(w.Seal().ok());
  ASSERT_TRUE(w.Publish().ok());
  ASSERT_EQ(w.files().size(), 3u);
  EXPECT_EQ(w.continues_in()[1], "Patient.3.3.ndjson");
  for (const NdjsonFile& f : w.files()) EXPECT_LE(f.bytes, header + 2 * line) << f.name;
}

TEST_F(PatientBlockWriterTest, UnattachedRowsGetFilesWithoutHeaders) {
  PatientBlockWriter w(Options(2));
  ASSERT_TRUE(w.Append("a", R("Patient", "a")).ok());
  ASSERT_TRUE(w.Append("", R("Practitioner", "x1")).ok());
  ASSERT_TRUE(w.Append("", R("Practitioner", "x2")).ok());
  ASSERT_TRUE(w.Append("", R("Organization", "y1")).ok());
  ASSERT_TRUE(w.Seal().ok());
  ASSERT_TRUE(w.Publish().ok());
  ASSERT_EQ(w.files().size(), 3u);
  EXPECT_EQ(Lines("Patient.3.2.ndjson"),
            (std::vector<std::string>{R("Practitioner", "x1"), R("Practitioner", "x2")}));
  EXPECT_EQ(Lines("Patient.3.3.ndjson"), (std::vector<std::string>{R("Organization", "y1")}));
  EXPECT_EQ(w.continues_in(), (std::vector<std::string>{"", "", ""}));
}

TEST_F(PatientBlockWriterTest, GzipTwinsHoldTheFinalBytesAndCancelRemovesEverything) {
  {
    PatientBlockWriter w(Options(5, 1 << 20, 1));
    ASSERT_TRUE(w.Append("a", R("Patient", "a")).ok());
    ASSERT_TRUE(w.Append("b", R("Patient", "b")).ok());
    ASSERT_TRUE(w.Append("b", R("Condition", "c1")).ok());
    ASSERT_TRUE(w.Append("b", R("Condition", "c2")).ok());  // b moves: file 1 truncated
    ASSERT_TRUE(w.Seal().ok());
    ASSERT_TRUE(w.Publish().ok());
    for (const char* name : {"Patient.3.1.ndjson", "Patient.3.2.ndjson"}) {
      std::ifstream plain(dir_ + "/" + name);
      std::stringstream ss;
      ss << plain.rdbuf();
      EXPECT_EQ(GunzipFile(dir_ + "/" + name + ".gz"), ss.str()) << name;
    }
  }
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directory(dir_);
  {
    PatientBlockWriter w(Options(5, 1 << 20, 1));
    ASSERT_TRUE(w.Append("a", R("Patient", "a")).ok());
    ASSERT_TRUE(w.Seal().ok());
    w.Cancel();
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir_));
}

}  // namespace
}  // namespace fhirbulk
