// util/daemon.h: the worker's config file, connection file, log sink, pid file and
// systemd notification.

#include "util/daemon.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "test_temp_dir.h"

namespace fhirbulk {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ReadOptionsFileTest, LinesBecomeFlags) {
  TestTempDir dir("daemon_test");
  std::string path = dir.Write("w.conf",
                               "# a comment\n"
                               "\n"
                               "  db-file = /etc/fhir-bulk/conninfo  \n"
                               "export-dir \"/var/lib/with space\"\n"
                               "--threads=4\n"
                               "once\n"
                               "log-format=json\r\n");
  auto args = ReadOptionsFile(path);
  ASSERT_TRUE(args.ok()) << args.status().ToString();
  std::vector<std::string> want = {"--db-file=/etc/fhir-bulk/conninfo",
                                   "--export-dir=/var/lib/with space", "--threads=4", "--once",
                                   "--log-format=json"};
  EXPECT_EQ(*args, want);
}

TEST(ReadOptionsFileTest, ErrorsNameTheLine) {
  TestTempDir dir("daemon_test");
  auto args = ReadOptionsFile(dir.Write("bad.conf", "threads = 2\n= 3\n"));
  ASSERT_FALSE(args.ok());
  EXPECT_NE(args.status().message().find("bad.conf:2"), std::string::npos)
      << args.status().message();
  EXPECT_FALSE(ReadOptionsFile(dir.path() + "/missing.conf").ok());
}

TEST(ReadValueFileTest, TrimsLikeNginx) {
  TestTempDir dir("daemon_test");
  auto v = ReadValueFile(dir.Write("conninfo", "\n  host=db password=x y \n\n"));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, "host=db password=x y");
  EXPECT_FALSE(ReadValueFile(dir.Write("big", std::string(70000, 'x'))).ok());
}

TEST(LogSinkTest, JsonLinesParseAndReopenFollowsRotation) {
  TestTempDir dir("daemon_test");
  std::string path = dir.path() + "/w.log";
  LogSink log("fhir-bulk worker", path, LogFormat::kJson);
  ASSERT_TRUE(log.Open().ok());
  log.Info("quote \" backslash \\ newline \n tab \t bell \x07 done");
  log.Error("second");
  std::istringstream lines(ReadAll(path));
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    ASSERT_FALSE(d.HasParseError()) << line;
    ASSERT_TRUE(d.IsObject());
    EXPECT_TRUE(d.HasMember("time") && d["time"].IsString());
    EXPECT_STREQ(d["program"].GetString(), "fhir-bulk worker");
    if (n == 0) {
      EXPECT_STREQ(d["level"].GetString(), "info");
      EXPECT_STREQ(d["msg"].GetString(), "quote \" backslash \\ newline \n tab \t bell \x07 done");
    } else {
      EXPECT_STREQ(d["level"].GetString(), "error");
    }
    n++;
  }
  EXPECT_EQ(n, 2);

  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0027, 0u) << "not group-writable, nothing for others";

  // logrotate moves the file; Reopen creates a new one, and text lines go there.
  ASSERT_EQ(std::rename(path.c_str(), (path + ".1").c_str()), 0);
  ASSERT_TRUE(log.Reopen(path, LogFormat::kText).ok());
  log.Info("after");
  std::string text = ReadAll(path);
  EXPECT_NE(text.find(" fhir-bulk worker: after\n"), std::string::npos) << text;
  EXPECT_EQ(ReadAll(path + ".1").find("after"), std::string::npos);

  // A path that cannot be opened keeps the current file.
  EXPECT_FALSE(log.Reopen(dir.path() + "/no/such/dir/w.log", LogFormat::kText).ok());
  log.Info("still here");
  EXPECT_NE(ReadAll(path).find("still here"), std::string::npos);
}

TEST(PidFileTest, WrittenAndRemoved) {
  TestTempDir dir("daemon_test");
  std::string path = dir.path() + "/w.pid";
  {
    auto pid = PidFile::Create(path);
    ASSERT_TRUE(pid.ok()) << pid.status().ToString();
    EXPECT_EQ(ReadAll(path), std::to_string(::getpid()) + "\n");
  }
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "removed by the destructor";
  {
    auto pid = PidFile::Create(path);
    ASSERT_TRUE(pid.ok());
    // Another instance took the path over: not ours to remove.
    std::ofstream(path) << "1\n";
  }
  EXPECT_EQ(ReadAll(path), "1\n");
  EXPECT_FALSE(PidFile::Create(dir.path() + "/no/such/dir/w.pid").ok());
}

TEST(SdNotifyTest, SendsToNotifySocket) {
  TestTempDir dir("daemon_test");
  std::string path = dir.path() + "/notify.sock";
  int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)), 0);

  ::unsetenv("NOTIFY_SOCKET");  // NOLINT(concurrency-mt-unsafe): single-threaded test
  EXPECT_TRUE(SdNotify("READY=1").ok()) << "without systemd: nothing to do";
  // NOLINTNEXTLINE(concurrency-mt-unsafe): single-threaded test
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  EXPECT_TRUE(SdNotify("READY=1").ok());
  char buf[64] = {0};
  ssize_t n = ::recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "READY=1");
  // NOLINTNEXTLINE(concurrency-mt-unsafe): single-threaded test
  ::setenv("NOTIFY_SOCKET", "relative/path", 1);
  EXPECT_FALSE(SdNotify("READY=1").ok());
  ::unsetenv("NOTIFY_SOCKET");  // NOLINT(concurrency-mt-unsafe): single-threaded test
  ::close(fd);
}

}  // namespace
}  // namespace fhirbulk
