// FileDownloader (client/file_download.h) against a scripted server on loopback: fresh
// downloads, resumes (206, a 200 instead, a 206 for another range, 416), transient failures
// (retried through the retry loop), refused links (refreshed once), complete files of an
// earlier run. The waits are shortened through the policy, not skipped.

#include "client/file_download.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "client/display.h"
#include "client/http_client.h"
#include "client/interrupt.h"
#include "scripted_server.h"
#include "test_temp_dir.h"

namespace fhirbulk {
namespace client {
namespace {

const std::string kLine1 = R"({"resourceType":"Patient","id":"p1"})"
                           "\n";
const std::string kLine2 = R"({"resourceType":"Patient","id":"p2"})"
                           "\n";
const std::string kFile = kLine1 + kLine2;

// Links: /a, and /b once the manifest is "re-fetched".
class Links : public LinkSource {
 public:
  explicit Links(ScriptedServer* server) : server_(server) {}
  Result<std::string> Current(const FileJob&) override { return server_->url("/a"); }
  Result<std::string> Refresh(const FileJob&, const std::string& failed_url) override {
    ++refreshes;
    if (failed_url == server_->url("/b")) return Status::NotFound("no fresh link");
    return server_->url("/b");
  }
  int refreshes = 0;

 private:
  ScriptedServer* server_;
};

class ClientDownloadTest : public ::testing::Test {
 protected:
  ClientDownloadTest() : dir_("client_download"), display_(false, true) {
    job_.section = "output";
    job_.item.type = "Patient";
    job_.item.count = 2;
    job_.name = "Patient.1.ndjson";
    job_.path = dir_.path() + "/Patient.1.ndjson";
    policy_.retry = RetryPolicy::ForOthers(2);
    policy_.retry.initial_backoff_seconds = 0.01;
    policy_.retry.min_wait_seconds = 0.01;
    policy_.retry.max_retry_after_seconds = 0.01;
  }

  FileOutcome Download(ScriptedServer* server, Links* links = nullptr) {
    Links own(server);
    HttpOptions options;
    options.connect_timeout_seconds = 5;
    HttpClient http(options);
    FileDownloader d(&http, nullptr, links != nullptr ? links : &own, &display_, &interrupt_,
                     policy_);
    return d.Download(job_);
  }

  std::string Slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  bool Exists(const std::string& path) { return std::filesystem::exists(path); }
  std::string Part() { return job_.path + ".part"; }

  TestTempDir dir_;
  Display display_;
  Interrupt interrupt_;
  FileJob job_;
  DownloadPolicy policy_;
};

TEST_F(ClientDownloadTest, AFreshDownloadIsValidatedAndRenamedWhenWhole) {
  ScriptedServer server({Http(200, kFile)});
  FileOutcome out = Download(&server);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(Slurp(job_.path), kFile);
  EXPECT_FALSE(Exists(Part()));
  EXPECT_EQ(out.bytes, kFile.size());
  EXPECT_EQ(out.validation.good_lines(), 2);
  EXPECT_EQ(out.requests, 1);
  EXPECT_EQ(out.resumed_from, 0u);
  EXPECT_EQ(server.requests()[0].find("Range:"), std::string::npos);
}

TEST_F(ClientDownloadTest, TransientFailuresAreRetriedThenGivenUpOn) {
  {
    ScriptedServer server(
        {Http(503, "busy", "Retry-After: 0\r\n"), Http(500, ""), Http(200, kFile)});
    FileOutcome out = Download(&server);
    ASSERT_TRUE(out.status.ok()) << out.status.ToString();
    EXPECT_EQ(out.requests, 3);
    EXPECT_EQ(Slurp(job_.path), kFile);
  }
  std::filesystem::remove(job_.path);
  {
    ScriptedServer server({Http(503, ""), Http(503, ""), Http(503, "")});
    FileOutcome out = Download(&server);
    EXPECT_EQ(out.status.code(), Status::Code::kUnavailable);
    EXPECT_EQ(
        out.status.message().rfind("gave up after 3 attempts: GET Patient.1.ndjson: HTTP 503", 0),
        0u)
        << out.status.message();
    EXPECT_FALSE(Exists(job_.path));
  }
}

TEST_F(ClientDownloadTest, APartialFileIsResumedWithARange) {
  dir_.Write("Patient.1.ndjson.part", kLine1);
  ScriptedServer server(
      {Http(206, kLine2,
            "Content-Range: bytes " + std::to_string(kLine1.size()) + "-" +
                std::to_string(kFile.size() - 1) + "/" + std::to_string(kFile.size()) + "\r\n")});
  FileOutcome out = Download(&server);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(Slurp(job_.path), kFile);
  EXPECT_EQ(out.resumed_from, kLine1.size());
  EXPECT_EQ(out.validation.good_lines(), 2);
  EXPECT_NE(server.requests()[0].find("Range: bytes=" + std::to_string(kLine1.size()) + "-"),
            std::string::npos);
}

TEST_F(ClientDownloadTest, AWholeFileInsteadOfTheRangeStartsOver) {
  dir_.Write("Patient.1.ndjson.part", kLine1);
  ScriptedServer server({Http(200, kFile)});
  FileOutcome out = Download(&server);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(Slurp(job_.path), kFile) << "not the first line twice";
  EXPECT_EQ(out.validation.good_lines(), 2);
}

TEST_F(ClientDownloadTest, A206ForAnotherRangeStartsOverWithoutARange) {
  dir_.Write("Patient.1.ndjson.part", kLine1);
  ScriptedServer server({Http(206, kFile,
                              "Content-Range: bytes 0-" + std::to_string(kFile.size() - 1) + "/" +
                                  std::to_string(kFile.size()) + "\r\n"),
                         Http(200, kFile)});
  FileOutcome out = Download(&server);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(Slurp(job_.path), kFile);
  ASSERT_EQ(server.requests().size(), 2u);
  EXPECT_EQ(server.requests()[1].find("Range:"), std::string::npos);
}

TEST_F(ClientDownloadTest, A416SaysWhetherThePartialFileIsWhole) {
  dir_.Write("Patient.1.ndjson.part", kFile);
  {
    ScriptedServer server(
        {Http(416, "", "Content-Range: bytes */" + std::to_string(kFile.size()) + "\r\n")});
    FileOutcome out = Download(&server);
    ASSERT_TRUE(out.status.ok()) << out.status.ToString();
    EXPECT_EQ(Slurp(job_.path), kFile);
    EXPECT_EQ(out.requests, 1);
  }
  std::filesystem::remove(job_.path);
  dir_.Write("Patient.1.ndjson.part", kFile + kLine1);  // longer than the file
  {
    ScriptedServer server(
        {Http(416, "", "Content-Range: bytes */" + std::to_string(kFile.size()) + "\r\n"),
         Http(200, kFile)});
    FileOutcome out = Download(&server);
    ASSERT_TRUE(out.status.ok()) << out.status.ToString();
    EXPECT_EQ(Slurp(job_.path), kFile);
    EXPECT_EQ(out.requests, 2);
  }
}

TEST_F(ClientDownloadTest, ARefusedLinkIsRefreshedOnce) {
  {
    ScriptedServer server({Http(404, ""), Http(200, kFile)});
    Links links(&server);
    FileOutcome out = Download(&server, &links);
    ASSERT_TRUE(out.status.ok()) << out.status.ToString();
    EXPECT_EQ(links.refreshes, 1);
    ASSERT_EQ(server.requests().size(), 2u);
    EXPECT_EQ(server.requests()[1].rfind("GET /b ", 0), 0u) << server.requests()[1];
  }
  std::filesystem::remove(job_.path);
  {
    ScriptedServer server({Http(410, ""), Http(404, "")});
    Links links(&server);
    FileOutcome out = Download(&server, &links);
    EXPECT_EQ(out.status.code(), Status::Code::kNotFound);
    EXPECT_EQ(links.refreshes, 1) << "once: the fresh link is refused too";
  }
}

TEST_F(ClientDownloadTest, AFileOfAnEarlierRunIsCheckedFromDisk) {
  dir_.Write("Patient.1.ndjson", kFile);
  ScriptedServer server({});
  FileOutcome out = Download(&server);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_TRUE(out.from_earlier_run);
  EXPECT_EQ(out.requests, 0);
  EXPECT_EQ(out.validation.good_lines(), 2);
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(ClientDownloadTest, AnInterruptStopsTheDownload) {
  interrupt_.Trigger();
  ScriptedServer server({});
  FileOutcome out = Download(&server);
  EXPECT_EQ(out.status.code(), Status::Code::kAborted);
  EXPECT_EQ(out.requests, 0);
  EXPECT_TRUE(Exists(Part())) << "the .part stays for a later resume";
}

}  // namespace
}  // namespace client
}  // namespace fhirbulk
