// FileDownloader (client/file_download.h) against a scripted server on loopback: fresh
// downloads, resumes (206, a 200 instead, a 206 for another range, 416), transient failures
// (retried through the retry loop), refused links (refreshed once), complete files of an
// earlier run. The waits are shortened through the policy, not skipped.

#include "client/file_download.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/display.h"
#include "client/http_client.h"
#include "client/interrupt.h"
#include "test_temp_dir.h"

namespace fhirbulk {
namespace client {
namespace {

// Answers one request per connection with the next canned response, in order; records the
// request heads. Connection: close on every answer, so each request is a new connection.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::vector<std::string> responses)
      : responses_(responses.begin(), responses.end()) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    EXPECT_EQ(listen(fd_, 8), 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedServer() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (true) {
      std::string response;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (responses_.empty()) return;
        response = responses_.front();
        responses_.pop_front();
      }
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = read(c, buf, sizeof(buf));
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(request);
      }
      size_t off = 0;
      while (off < response.size()) {
        ssize_t n = send(c, response.data() + off, response.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      close(c);
    }
  }

  std::mutex mu_;
  std::deque<std::string> responses_;
  std::vector<std::string> requests_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

std::string Http(int code, const std::string& body, const std::string& headers = "") {
  return "HTTP/1.1 " + std::to_string(code) +
         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n" +
         headers + "\r\n" + body;
}

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
