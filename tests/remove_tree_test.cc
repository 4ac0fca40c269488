// RemoveTree removes a job's directory even while another thread adds and removes files in it
// (a unit of the same job still writing, or cleaning up its own partial file): a failed job's
// directory must not stay behind with its owner file (t/24 saw it once under load).

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "test_temp_dir.h"
#include "worker/planner.h"

namespace fhirbulk {
namespace {

TEST(RemoveTreeTest, RemovesATreeWhoseFilesChangeMeanwhile) {
  TestTempDir tmp("remove-tree");
  for (int round = 0; round < 20; round++) {
    const std::string dir = tmp.path() + "/job" + std::to_string(round);
    ASSERT_TRUE(std::filesystem::create_directory(dir));
    for (int i = 0; i < 300; i++)
      tmp.Write("job" + std::to_string(round) + "/f" + std::to_string(i), "x");
    tmp.Write("job" + std::to_string(round) + "/.owner", "client");
    // The churn: files appear and vanish while the tree is removed.
    std::atomic<bool> stop{false};
    std::thread churn([&] {
      for (int n = 0; !stop.load(); n++) {
        const std::string p = dir + "/Patient.tmp." + std::to_string(n % 8);
        int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) ::close(fd);
        ::unlink(p.c_str());
      }
    });
    const bool removed = RemoveTree(dir);
    stop = true;
    churn.join();
    EXPECT_TRUE(removed) << dir;
    EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
  }
}

TEST(RemoveTreeTest, AMissingTreeIsRemovedAlready) {
  TestTempDir tmp("remove-tree");
  EXPECT_TRUE(RemoveTree(tmp.path() + "/none"));
}

}  // namespace
}  // namespace fhirbulk
